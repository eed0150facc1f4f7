"""The audit trail: one hash chain per tenant, that names the first entry anyone tampered with."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text, update

from bookwell.core import audit
from bookwell.core.booking.tenants import create_tenant
from bookwell.core.cli.audit import audit as audit_group
from bookwell.core.cli.root import main
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, AuditPerson, Tenant
from bookwell.core.testing import tampering_with_the_trail
from bookwell.hooks import Context, RequestInfo, TenantInfo

if "audit" not in main.commands:  # core/cli/root.py registers it; kept for an older core
    main.add_command(audit_group)


def record(app, clock, tenant_id, action="booking.created", subject="booking:ABCD", **extra):
    fields = {"actor": "user:1", "ip": "203.0.113.7", "details": {"n": 1}, "now": clock()}
    fields.update(extra)
    with db.write_transaction(app) as session:
        entry = audit.record(session, tenant_id=tenant_id, action=action, subject=subject, **fields)
    clock.advance(minutes=1)
    return entry


def fill(app, clock, tenant_id, count=5):
    return [
        record(app, clock, tenant_id, subject=f"booking:{number}", details={"n": number})
        for number in range(1, count + 1)
    ]


def sql(app, statement, **params):
    """Change the stored trail behind the app's back, as whoever holds the tables' owner's
    password could (on PostgreSQL the app's own role is refused: test_audit_roles.py)."""
    with tampering_with_the_trail(app) as connection:
        connection.execute(text(statement) if isinstance(statement, str) else statement, params)


def remove(app, where, **params):
    """Delete entries as a tamperer with the database's keys would: their personal rows (which
    refer to them) first."""
    sql(
        app,
        "DELETE FROM audit_personal WHERE entry_id IN "
        f"(SELECT id FROM audit_entries WHERE {where})",
        **params,
    )
    sql(app, f"DELETE FROM audit_entries WHERE {where}", **params)


def verdict(app, tenant_id=None):
    with db.write_transaction(app) as session:
        return audit.verify(session, tenant_id)


@pytest.fixture
def other(app, clock):
    """A second tenant, 'barber', with its own trail."""
    with db.write_transaction(app) as session:
        return create_tenant(session, "barber", name="Barber", timezone="UTC", now=clock()).id


# --- what an entry holds -------------------------------------------------------------------------


def test_an_entry_says_who_did_what_when_in_utc_from_where_on_what(app, clock, business):
    paris = datetime(2027, 3, 1, 9, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Paris"))
    entry = record(
        app,
        clock,
        business.tenant_id,
        action="booking.cancelled",
        subject="booking:WXYZ-2345",
        actor="client:ann@example.com",
        ip="2001:0db8:0000:0000:0000:0000:0000:0001",
        details={"reason": "ill"},
        now=paris,
    )
    with db.write_transaction(app) as session:
        stored = session.get(AuditEntry, entry.id)
        assert stored.tenant_id == business.tenant_id
        person = session.scalars(select(AuditPerson)).one()
        assert (person.email, person.tenant_id) == ("ann@example.com", business.tenant_id)
        assert stored.actor == f"client:{person.pseudonym}"
        assert stored.action == "booking.cancelled"
        assert stored.subject == "booking:WXYZ-2345"
        assert stored.ip is None  # outside the hashed entry, where an erasure can reach it
        assert audit.ip_of(session, stored) == "2001:db8::1"
        assert stored.at == datetime(2027, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
        assert stored.at.utcoffset() == timedelta(0)
        assert stored.details == '{"reason":"ill"}'


def test_entries_are_numbered_and_each_links_to_the_one_before(app, clock, business):
    entries = fill(app, clock, business.tenant_id, 4)
    assert [entry.sequence for entry in entries] == [1, 2, 3, 4]
    assert entries[0].previous_hash == "0" * 64
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.previous_hash == before.entry_hash
    assert len({entry.entry_hash for entry in entries}) == 4


def test_an_untouched_trail_verifies_and_gives_its_head(app, clock, business):
    entries = fill(app, clock, business.tenant_id, 5)
    result = verdict(app, business.tenant_id)
    assert result.ok and result.checked == 5 and result.reason is None
    assert result.head_hash == entries[-1].entry_hash


def test_an_empty_trail_verifies(app, business):
    result = verdict(app, business.tenant_id)
    assert result.ok and result.checked == 0 and result.head_hash is None


def test_details_are_stored_as_canonical_json(app, clock, business):
    instant = datetime(2027, 3, 29, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    first = record(app, clock, business.tenant_id, details={"b": 1, "a": [1, 2], "at": instant})
    second = record(app, clock, business.tenant_id, details={"at": instant, "a": (1, 2), "b": 1})
    assert (
        first.details
        == second.details
        == '{"a":[1,2],"at":"2027-03-29T08:00:00.000000+00:00","b":1}'
    )


def test_naive_instants_are_refused(app, clock, business):
    with pytest.raises(ValueError, match="naive"):
        record(app, clock, business.tenant_id, now=datetime(2027, 3, 1, 8, 0))
    with pytest.raises(ValueError, match="naive"):
        record(app, clock, business.tenant_id, details={"start": datetime(2027, 3, 1, 8, 0)})
    assert verdict(app, business.tenant_id).checked == 0


# --- secrets -------------------------------------------------------------------------------------


def test_passwords_codes_and_tokens_never_enter_the_trail(app, clock, business):
    details = {
        "password": "hunter2",
        "newPassword": "hunter3",
        "manage_token": "tok-manage-123",
        "otp": "123456",
        "code": "654321",
        "recovery-codes": ["rc-1", "rc-2"],
        "settings": {"api_key": "sk_live_abc", "Secret": "s3cr3t", "max_per_day": 4},
        "attempts": [{"login_code": "999000", "email": "ann@example.com"}],
        "headers": {"Authorization": "Bearer abc.def", "Cookie": "session=xyz"},
        "reference": "ABCD-EFGH",
        "start": "2027-03-29T08:00:00+00:00",
    }
    entry = record(app, clock, business.tenant_id, details=details)
    stored = json.loads(entry.details)
    ann = stored["attempts"][0]["email"]
    assert ann.startswith("person:")  # an address is personal data: a pseudonym stands for it
    assert stored == {
        "password": "[redacted]",
        "newPassword": "[redacted]",
        "manage_token": "[redacted]",
        "otp": "[redacted]",
        "code": "[redacted]",
        "recovery-codes": "[redacted]",
        "settings": {"api_key": "[redacted]", "Secret": "[redacted]", "max_per_day": 4},
        "attempts": [{"login_code": "[redacted]", "email": ann}],
        "headers": {"Authorization": "[redacted]", "Cookie": "[redacted]"},
        "reference": "ABCD-EFGH",
        "start": "2027-03-29T08:00:00+00:00",
    }
    with db.engine_of(app).connect() as connection:
        row = " ".join(map(str, connection.execute(text("SELECT * FROM audit_entries")).one()))
    for secret in ("hunter", "tok-manage", "123456", "654321", "rc-1", "sk_live", "s3cr3t"):
        assert secret not in row
    assert "999000" not in row and "Bearer" not in row and "xyz" not in row
    assert verdict(app, business.tenant_id).ok


def test_the_secret_test_reads_words_not_just_exact_keys():
    for key in ("password_hash", "accessToken", "client_secret", "OTP", "pin", "private-key"):
        assert audit.is_secret_key(key), key
    for key in ("reference", "service_id", "email", "reason", "start", "status", "spinner"):
        assert not audit.is_secret_key(key), key


# --- tampering -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column, value",
    [
        ("details", '{"n":99}'),
        ("action", "booking.cancelled"),
        ("actor", "user:2"),
        ("ip", "198.51.100.1"),
        ("subject", "booking:OTHER"),
        ("previous_hash", "f" * 64),
        ("entry_hash", "e" * 64),
    ],
)
def test_an_edited_entry_is_found_and_named(app, clock, business, column, value):
    fill(app, clock, business.tenant_id, 5)
    sql(
        app,
        f"UPDATE audit_entries SET {column} = :value WHERE tenant_id = :tenant AND sequence = 3",
        value=value,
        tenant=business.tenant_id,
    )
    result = verdict(app, business.tenant_id)
    assert not result.ok
    assert result.first_bad == 3 and result.checked == 2
    assert result.reason == "entry 3 was edited"


def test_an_entry_moved_in_time_is_found(app, clock, business):
    fill(app, clock, business.tenant_id, 5)
    sql(
        app,
        update(AuditEntry)
        .where(AuditEntry.sequence == 2)
        .values(at=datetime(2020, 1, 1, tzinfo=UTC)),
    )
    assert verdict(app, business.tenant_id).reason == "entry 2 was edited"


def test_a_removed_entry_is_found_and_named(app, clock, business):
    entries = fill(app, clock, business.tenant_id, 5)
    remove(app, "id = :id", id=entries[2].id)
    result = verdict(app, business.tenant_id)
    assert not result.ok and result.first_bad == 3 and result.first_bad_id is None
    assert result.reason == "entry 3 is missing (sequence gap)"


def test_removing_the_first_entries_is_found(app, clock, business):
    entries = fill(app, clock, business.tenant_id, 5)
    remove(app, "id IN (:a, :b)", a=entries[0].id, b=entries[1].id)
    result = verdict(app, business.tenant_id)
    assert result.reason == "entries 1 to 2 are missing (sequence gap)" and result.first_bad == 1


def test_removing_an_entry_and_renumbering_the_rest_is_found(app, clock, business):
    entries = fill(app, clock, business.tenant_id, 5)
    remove(app, "id = :id", id=entries[1].id)
    for entry in entries[2:]:
        sql(app, "UPDATE audit_entries SET sequence = sequence - 1 WHERE id = :id", id=entry.id)
    result = verdict(app, business.tenant_id)
    assert result.reason == "entry 2 was edited" and result.first_bad_id == entries[2].id


def forge(app, tenant_id, sequence, previous_hash, at):
    """An entry whose own hash is right, as anyone who read audit.py could write it."""
    fields = dict(
        chain=audit.chain_of(tenant_id),
        sequence=sequence,
        at=at,
        actor="user:1",
        ip=None,
        action="booking.cancelled",
        subject="booking:FORGED",
        details="{}",
        previous_hash=previous_hash,
    )
    with db.write_transaction(app) as session:
        session.add(
            AuditEntry(tenant_id=tenant_id, entry_hash=audit.entry_hash(**fields), **fields)
        )


def test_an_appended_forgery_with_a_wrong_link_is_found(app, clock, business):
    fill(app, clock, business.tenant_id, 5)
    forge(app, business.tenant_id, 6, "a" * 64, clock())
    result = verdict(app, business.tenant_id)
    assert not result.ok and result.first_bad == 6 and result.checked == 5
    assert result.reason == "entry 6 was inserted or its chain link is broken"


def test_a_forgery_slipped_in_between_is_found_by_the_entry_after_it(app, clock, business):
    entries = fill(app, clock, business.tenant_id, 5)
    for entry in reversed(entries[3:]):  # make room at 4, as a forger would
        sql(app, "UPDATE audit_entries SET sequence = sequence + 1 WHERE id = :id", id=entry.id)
    forge(app, business.tenant_id, 4, entries[2].entry_hash, entries[2].at)
    result = verdict(app, business.tenant_id)
    assert not result.ok and result.checked == 4
    assert result.reason == "entry 5 was edited" and result.first_bad_id == entries[3].id


def test_swapped_entries_are_found(app, clock, business):
    entries = fill(app, clock, business.tenant_id, 5)
    sql(app, "UPDATE audit_entries SET sequence = 100 WHERE id = :id", id=entries[1].id)
    sql(app, "UPDATE audit_entries SET sequence = 2 WHERE id = :id", id=entries[2].id)
    sql(app, "UPDATE audit_entries SET sequence = 3 WHERE id = :id", id=entries[1].id)
    result = verdict(app, business.tenant_id)
    assert not result.ok and result.first_bad == 2 and result.reason == "entry 2 was edited"


def test_a_rewritten_tail_changes_the_head_hash_an_operator_kept(app, clock, business):
    # The chain alone cannot catch a writer who recomputes every later hash, nor a removed
    # newest entry: the head hash printed by `bookwell audit verify` and kept elsewhere does.
    entries = fill(app, clock, business.tenant_id, 3)
    kept = verdict(app, business.tenant_id).head_hash
    remove(app, "id = :id", id=entries[-1].id)
    result = verdict(app, business.tenant_id)
    assert result.ok and result.head_hash != kept


# --- one chain per tenant ------------------------------------------------------------------------


def test_each_tenant_has_its_own_chain(app, clock, business, other):
    fill(app, clock, business.tenant_id, 3)
    theirs = fill(app, clock, other, 2)
    assert [entry.sequence for entry in theirs] == [1, 2]
    assert theirs[0].previous_hash == "0" * 64
    assert verdict(app, business.tenant_id).checked == 3
    assert verdict(app, other).checked == 2


def test_tampering_with_one_tenants_trail_leaves_anothers_intact(app, clock, business, other):
    fill(app, clock, business.tenant_id, 3)
    fill(app, clock, other, 3)
    sql(app, "UPDATE audit_entries SET details = '{}' WHERE tenant_id = :t", t=business.tenant_id)
    assert verdict(app, business.tenant_id).reason == "entry 1 was edited"
    assert verdict(app, other).ok


def test_an_entry_moved_to_another_tenant_is_found_in_both_trails(app, clock, business, other):
    entries = fill(app, clock, business.tenant_id, 3)
    fill(app, clock, other, 3)
    sql(app, "UPDATE audit_entries SET tenant_id = :t WHERE id = :id", t=other, id=entries[1].id)
    assert verdict(app, business.tenant_id).first_bad == 2
    assert not verdict(app, other).ok


def test_platform_events_have_a_chain_of_their_own(app, clock, business):
    fill(app, clock, business.tenant_id, 2)
    entry = record(app, clock, None, action="tenant.created", subject="tenant:salon", actor="cli")
    assert entry.chain == "platform" and entry.sequence == 1 and entry.tenant_id is None
    everything = verdict(app)
    assert everything.ok and everything.checked == 3
    assert [result.chain for result in everything.chains] == [
        "platform",
        f"tenant:{business.tenant_id}",
    ]


def test_verifying_everything_names_the_first_bad_chain(app, clock, business, other):
    fill(app, clock, business.tenant_id, 3)
    fill(app, clock, other, 3)
    remove(app, "tenant_id = :t AND sequence = 2", t=other)
    result = verdict(app)
    assert not result.ok and result.reason == "entry 2 is missing (sequence gap)"
    assert [chain.ok for chain in result.chains] == [True, False]


def test_an_audited_tenant_cannot_be_deleted_out_from_under_its_trail(app, clock, business):
    fill(app, clock, business.tenant_id, 1)
    with pytest.raises(Exception), db.write_transaction(app) as session:  # noqa: B017
        session.delete(session.get(Tenant, business.tenant_id))
        session.flush()
    assert verdict(app, business.tenant_id).checked == 1


# --- transactions and concurrency ----------------------------------------------------------------


class Boom(Exception):
    pass


def test_an_entry_about_a_change_rolls_back_with_the_change(app, clock, business):
    with pytest.raises(Boom), db.write_transaction(app) as session:
        audit.record(
            session,
            tenant_id=business.tenant_id,
            actor="user:1",
            ip=None,
            action="booking.created",
            subject="booking:GONE",
            now=clock(),
        )
        raise Boom
    assert verdict(app, business.tenant_id).checked == 0


def test_a_refusal_recorded_separately_stays_after_the_rollback(app, clock, business):
    with pytest.raises(Boom), db.write_transaction(app) as session:
        session.get(Tenant, business.tenant_id).name = "Refused"
        raise Boom  # a guard said no: the change rolls back
    entry = audit.record_separately(
        app,
        tenant_id=business.tenant_id,
        actor="client:ann@example.com",
        ip="203.0.113.7",
        action="booking.refused",
        subject="booking:new",
        details={"code": "123456", "why": "closed_on_sundays"},
        now=clock(),
    )
    assert entry.sequence == 1 and '"code":"[redacted]"' in entry.details
    assert verdict(app, business.tenant_id).checked == 1
    with db.write_transaction(app) as session:
        assert session.get(Tenant, business.tenant_id).name == "Salon"


def test_a_hook_context_says_who_where_and_when(app, clock, business):
    ctx = Context(
        tenant=TenantInfo(business.tenant_id, "salon", "Salon", "Europe/Paris"),
        now=clock(),
        actor=None,
        request=RequestInfo(ip="198.51.100.9", user_agent="test", scheme="https", path="/"),
    )
    with db.write_transaction(app) as session:
        first = audit.audit(session, ctx, "booking.created", "booking:ONE", {"token": "t"})
        second = audit.audit(
            session, ctx, "booking.cancelled", "booking:ONE", actor="client:ann@example.com"
        )
    assert (first.tenant_id, first.at) == (business.tenant_id, clock())
    with db.write_transaction(app) as session:
        assert audit.ip_of(session, session.get(AuditEntry, first.id)) == "198.51.100.9"
    assert first.actor == "anonymous" and first.details == '{"token":"[redacted]"}'
    assert second.actor.startswith("client:person:") and second.sequence == 2
    separate = audit.audit_separately(app, ctx, "booking.refused", "booking:new")
    assert separate.sequence == 3
    assert verdict(app, business.tenant_id).ok


def test_concurrent_appends_make_one_unbroken_chain(make_app, clock, business):
    app = make_app(DATABASE_POOL_SIZE=25)
    threads, errors = 20, []
    start = threading.Barrier(threads)

    def append(number):
        try:
            start.wait()
            with db.write_transaction(app) as session:
                audit.record(
                    session,
                    tenant_id=business.tenant_id,
                    actor=f"user:{number}",
                    ip=None,
                    action="booking.created",
                    subject=f"booking:{number}",
                    now=clock(),
                )
        except Exception as error:
            errors.append(error)

    workers = [threading.Thread(target=append, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    result = verdict(app, business.tenant_id)
    assert result.ok and result.checked == threads
    with db.write_transaction(app) as session:
        actors = session.scalars(select(AuditEntry.actor)).all()
    assert sorted(actors) == sorted(f"user:{n}" for n in range(threads))


# --- bookwell audit verify -----------------------------------------------------------------------


@pytest.fixture
def run(tmp_path, database_url, monkeypatch):
    """``bookwell --instance TMP ...`` in-process, on the test's database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BOOKWELL_SECRET_KEY", "test-secret")
    monkeypatch.delenv("BOOKWELL_INSTANCE", raising=False)

    def invoke(*args):
        return CliRunner().invoke(main, ["--instance", str(tmp_path / "cli"), *args])

    return invoke


def test_verify_says_an_intact_trail_is_intact(app, clock, business, run):
    entries = fill(app, clock, business.tenant_id, 12)
    result = run("audit", "verify", "--tenant", "salon")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"audit trail of salon: 12 entries, intact; head {entries[-1].entry_hash}\n"
    )


def test_verify_exits_1_naming_the_first_bad_entry(app, clock, business, run):
    fill(app, clock, business.tenant_id, 12)
    sql(app, "UPDATE audit_entries SET action = 'x' WHERE sequence IN (5, 7)")
    result = run("audit", "verify", "--tenant", "salon")
    assert result.exit_code == 1
    assert result.output == ("Error: audit trail of salon: entry 5 was edited\n")


def test_verify_checks_every_trail_without_a_tenant(app, clock, business, other, run):
    fill(app, clock, business.tenant_id, 2)
    fill(app, clock, other, 2)
    record(app, clock, None, action="tenant.created", subject="tenant:barber", actor="cli")
    result = run("audit", "verify")
    assert result.exit_code == 0, result.output
    lines = [line.split(";")[0] for line in result.output.splitlines()]
    assert lines == [
        "audit trail of the platform: 1 entry, intact",
        "audit trail of salon: 2 entries, intact",
        "audit trail of barber: 2 entries, intact",
    ]
    remove(app, "tenant_id = :t AND sequence = 1", t=other)
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert result.output == ("Error: audit trail of barber: entry 1 is missing (sequence gap)\n")


def test_verify_refuses_an_unknown_tenant(app, run):
    result = run("audit", "verify", "--tenant", "nobody")
    assert result.exit_code == 1 and result.output == "Error: no tenant with the slug 'nobody'\n"


def test_verify_on_an_empty_trail(app, business, run):
    result = run("audit", "verify")
    assert result.exit_code == 0 and result.output == "no audit entries yet\n"
    result = run("audit", "verify", "--tenant", "salon")
    assert result.output == "audit trail of salon: 0 entries, intact\n"
