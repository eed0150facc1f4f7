"""``bookwell keys rotate|status``: the operator's rotation of BOOKWELL_ENCRYPTION_KEY, from the
key ``bookwell init`` wrote to a new one, without losing anything encrypted or sealed."""

from __future__ import annotations

import tomllib

import pytest
from click.testing import CliRunner
from conftest import booking_body
from sqlalchemy import select

from bookwell.core import create_app
from bookwell.core.cli.root import main
from bookwell.core.context.secrets import TenantSecrets
from bookwell.core.storage import db, keys
from bookwell.core.storage.models import AuditEntry, TenantKey
from bookwell.core.testing import open_business

NEW_KEY = "rotated-key-N3w-9s2LmQx7Vb"
OTHER_KEY = "another-instance-K3y-4hT8"
BOOKINGS = "/api/v1/tenants/salon/bookings"
KEY = "0b8f3c1e-key-ring-0001"  # an Idempotency-Key


@pytest.fixture
def run(tmp_path, database_url, monkeypatch):
    """Run ``bookwell --instance TMP ...`` in-process on the test's database, with
    BOOKWELL_ENCRYPTION_KEY as ``run.ring(...)`` last set it (unset: config.toml's key)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    for variable in ("BOOKWELL_SECRET_KEY", "BOOKWELL_INSTANCE", "BOOKWELL_ENCRYPTION_KEY"):
        monkeypatch.delenv(variable, raising=False)
    instance = tmp_path / "instance"

    def invoke(*args: str):
        return CliRunner().invoke(main, ["--instance", str(instance), *args])

    def ring(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("BOOKWELL_ENCRYPTION_KEY", raising=False)
        else:
            monkeypatch.setenv("BOOKWELL_ENCRYPTION_KEY", value)

    invoke.instance, invoke.ring = instance, ring
    assert invoke("init").exit_code == 0
    invoke.init_key = tomllib.loads((instance / "config.toml").read_text())["encryption_key"]
    return invoke


@pytest.fixture
def process(run, clock):
    """A process of the instance, as `bookwell serve` would start one with today's settings."""
    return lambda: create_app(
        {"INSTANCE_PATH": str(run.instance), "CLOCK": clock, "RATE_LIMITS": "off"}
    )


def succeeds(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def rows(app) -> dict[int, TenantKey]:
    with db.fresh_session(app) as session:
        return {row.tenant_id: row for row in session.scalars(select(TenantKey))}


def test_rotation_from_the_init_key_keeps_everything_readable_then_the_old_key_goes(
    run, process, clock
):
    # Under the key `bookwell init` wrote: two businesses, a secret each, a remembered answer.
    first = process()
    salon = open_business(first, clock())
    spa = open_business(first, clock(), slug="spa", name="Spa")
    seed = TenantSecrets(first, salon.tenant_id).encrypt(b"JBSWY3DPEHPK3PXP")
    digest = TenantSecrets(first, salon.tenant_id).digest("ann@example.com")
    spa_note = TenantSecrets(first, spa.tenant_id).encrypt(b"spa's note")
    body = booking_body(salon, "2027-03-02T10:00:00+01:00")
    answer = first.test_client().post(BOOKINGS, json=body, headers={"Idempotency-Key": KEY})
    assert answer.status_code == 201, answer.json

    # 1. Every process gets new,old. Nothing is lost, nothing rotated yet.
    run.ring(f"{NEW_KEY},{run.init_key}")
    report = succeeds(run("keys", "status"))
    assert "key ring: 2 keys" in report and "tenant keys: 2 (0 tenants without one yet)" in report
    assert "under the current key: 0" in report and "under older keys of the ring: 2" in report
    assert "stored answers sealed with older keys of the ring: 1" in report
    assert "still needed" in report
    assert TenantSecrets(process(), salon.tenant_id).decrypt(seed) == b"JBSWY3DPEHPK3PXP"

    # 2. Rotate: both keys re-wrapped, the answer re-sealed, each tenant audited.
    rotated = succeeds(run("keys", "rotate"))
    current = keys.ring_of(process()).current.fingerprint
    assert f"re-wrapped 2 tenant keys and re-sealed 1 stored answer with key {current}" in rotated
    assert "rotating 2 tenants" in rotated  # the progress line (a bar on a terminal)
    stored = rows(first)
    assert all(row.rewrapped_at is not None for row in stored.values())
    assert all(row.wrapped_key.startswith(f"aesgcm1:{current}:") for row in stored.values())
    with db.fresh_session(first) as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "keys.rotated"))
        audited = {(entry.tenant_id, entry.subject, entry.actor) for entry in entries}
    assert audited == {
        (salon.tenant_id, "tenant:salon", "cli"),
        (spa.tenant_id, "tenant:spa", "cli"),
    }
    assert "intact" in succeeds(run("audit", "verify"))
    report = succeeds(run("keys", "status"))
    assert "under the current key: 2" in report and "no longer needed" in report
    again = succeeds(run("keys", "rotate"))  # nothing left to do, and it says so
    assert "re-wrapped 0 tenant keys and re-sealed 0 stored answers" in again

    # 3. The old key goes: every secret, digest and remembered answer still reads.
    run.ring(NEW_KEY)
    last = process()
    assert TenantSecrets(last, salon.tenant_id).decrypt(seed) == b"JBSWY3DPEHPK3PXP"
    assert TenantSecrets(last, salon.tenant_id).digest("ann@example.com") == digest
    assert TenantSecrets(last, spa.tenant_id).decrypt(spa_note) == b"spa's note"
    replay = last.test_client().post(BOOKINGS, json=body, headers={"Idempotency-Key": KEY})
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json() == answer.get_json()
    # Without the new key, nothing opens: the keys really moved.
    run.ring(OTHER_KEY)
    with pytest.raises(keys.TenantKeyUnavailable, match="not in the ring"):
        TenantSecrets(process(), salon.tenant_id).decrypt(seed)


def test_rotating_one_tenant_leaves_the_others(run, process, clock):
    first = process()
    salon = open_business(first, clock())
    spa = open_business(first, clock(), slug="spa", name="Spa")
    for business in (salon, spa):
        TenantSecrets(first, business.tenant_id).encrypt(b"x")
    run.ring(f"{NEW_KEY},{run.init_key}")
    assert "re-wrapped 1 tenant key " in succeeds(run("keys", "rotate", "--tenant", "spa"))
    stored = rows(first)
    assert stored[salon.tenant_id].rewrapped_at is None
    assert stored[spa.tenant_id].rewrapped_at is not None
    assert "under older keys of the ring: 1" in succeeds(run("keys", "status"))
    missing = run("keys", "rotate", "--tenant", "nowhere")
    assert missing.exit_code == 1 and "no tenant with the slug 'nowhere'" in missing.output


def test_a_key_the_ring_lacks_is_named_and_the_others_still_rotate(run, process, clock):
    first = process()
    salon = open_business(first, clock())
    spa = open_business(first, clock(), slug="spa", name="Spa")
    TenantSecrets(first, salon.tenant_id).encrypt(b"x")
    run.ring(OTHER_KEY)  # the spa's key is made under a key that will be forgotten
    TenantSecrets(process(), spa.tenant_id).encrypt(b"y")

    run.ring(f"{NEW_KEY},{run.init_key}")
    report = succeeds(run("keys", "status"))
    assert "warning: 1 tenant key under keys not in the ring" in report
    failed = run("keys", "rotate")
    assert failed.exit_code == 1
    assert "re-wrapped 1 tenant key " in failed.output
    assert "1 tenant not rotated" in failed.output and "spa: " in failed.output
    assert "not in the ring" in failed.output and "Traceback" not in failed.output
    assert rows(first)[spa.tenant_id].rewrapped_at is None

    run.ring(f"{NEW_KEY},{run.init_key},{OTHER_KEY}")  # given back, at the end of the ring
    assert "re-wrapped 1 tenant key " in succeeds(run("keys", "rotate"))


@pytest.mark.parametrize("value", [f"{NEW_KEY},,{OTHER_KEY}", f"{NEW_KEY},", " , "])
def test_a_ring_with_an_empty_entry_is_one_line_that_shows_no_key(run, value):
    run.ring(value)
    for command in (("keys", "status"), ("keys", "rotate")):
        result = run(*command)
        assert result.exit_code == 1 and "empty entry (number" in result.output
        assert NEW_KEY not in result.output and OTHER_KEY not in result.output
        assert "Traceback" not in result.output and len(result.output.splitlines()) == 1


def test_status_on_a_single_key_instance(run, process, clock):
    open_business(process(), clock())
    report = succeeds(run("keys", "status"))
    assert "key ring: 1 key" in report and "tenant keys: 0 (1 tenant without one yet)" in report
    assert "needed" not in report  # nothing to drop from a ring of one
