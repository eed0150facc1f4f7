"""ctx.secrets: each tenant's own key, wrapped by the instance's key ring. What a plugin
encrypts comes back only for its tenant and only unaltered, digests are stable per tenant, a
database dump opens nothing, and the ring keeps sealed values readable across a rotation."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
import threading
from pathlib import Path

import pytest
from conftest import Business, booking_body
from cryptography.fernet import Fernet
from sqlalchemy import event, func, select, update

from bookwell.core.context import make_context
from bookwell.core.context.secrets import SecretUnreadable
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db, keys, sealing
from bookwell.core.storage.models import PluginStoreEntry, Tenant, TenantKey
from bookwell.core.testing import open_business
from bookwell.hooks import Manifest, Refusal, hookimpl

KEY_A = "instance-key-A-3vJ8qLw0ZtY2"
KEY_B = "instance-key-B-Xm4Rk7pN1cQe"
SALON = "/api/v1/tenants/salon/bookings"
SPA = "/api/v1/tenants/spa/bookings"
TUESDAY_10 = "2027-03-02T10:00:00+01:00"
GUIDE = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()

# What the plugin below saw, and the digests of the clients it refuses (per test: see `fresh`).
RECORDED: list[tuple[str, str, str]] = []
BLOCKED: set[str] = set()


class Blocklist:
    """Refuses the clients whose e-mail's digest is listed; keeps each booker's address
    encrypted (here in RECORDED; a real plugin would put it in ctx.store)."""

    MANIFEST = Manifest("blocklist", "Blocklist", "Refuses listed clients.", "1.0", "test", "tests")

    @hookimpl
    def before_confirm(ctx):
        email = ctx.booking.client_email
        digest = ctx.secrets.digest(email)
        if digest in BLOCKED:
            return Refusal("This client cannot book online.", "client_blocked")
        RECORDED.append((ctx.tenant.slug, ctx.secrets.encrypt(email.encode()), digest))
        return None


@pytest.fixture(autouse=True)
def fresh():
    RECORDED.clear()
    BLOCKED.clear()


@pytest.fixture
def app(make_app):
    return make_app(ENCRYPTION_KEY=KEY_A, EXTRA_PLUGINS=[Blocklist], DATABASE_POOL_SIZE=20)


@pytest.fixture
def spa(app, business, clock) -> Business:
    """A second business, bookable, beside ``business``."""
    return open_business(app, clock(), slug="spa", name="Spa")


@pytest.fixture
def another_process(make_app):
    """Another app on the same database and key, as another worker process would be."""
    return lambda key=KEY_A: make_app(ENCRYPTION_KEY=key)


def secrets_of(app, tenant_id, clock):
    """``ctx.secrets`` as a plugin gets it: a hook's context bound to the plugin."""
    with app.app_context():
        tenant = db.session().get(Tenant, tenant_id)
        return make_context(tenant, clock()).for_plugin("blocklist").secrets


def key_rows(app) -> list[TenantKey]:
    with db.fresh_session(app) as session:
        return list(session.scalars(select(TenantKey).order_by(TenantKey.tenant_id)))


# --- through a real hook -------------------------------------------------------------------------


def test_a_guard_encrypts_and_looks_clients_up_by_digest(app, business, spa, clock):
    with app.app_context():
        for tenant_id in (business.tenant_id, spa.tenant_id):
            plugin_changes.enable(app, tenant_id, "blocklist", {}, clock())
    BLOCKED.add(secrets_of(app, business.tenant_id, clock).digest("eve@example.com"))
    client = app.test_client()

    ann = client.post(SALON, json=booking_body(business, TUESDAY_10))
    assert ann.status_code == 201, ann.json
    eve = client.post(SALON, json=booking_body(business, "2027-03-02T11:00:00+01:00", name="Eve"))
    assert eve.status_code == 403 and eve.json["error"]["code"] == "client_blocked"
    # The digest is the salon's: the same client is a stranger to the spa's list.
    assert client.post(SPA, json=booking_body(spa, TUESDAY_10, name="Eve")).status_code == 201

    (salon, token, _), (spa_slug, spa_token, spa_digest) = RECORDED
    assert (salon, spa_slug) == ("salon", "spa")
    assert secrets_of(app, business.tenant_id, clock).decrypt(token) == b"ann@example.com"
    assert secrets_of(app, spa.tenant_id, clock).decrypt(spa_token) == b"eve@example.com"
    assert spa_digest not in BLOCKED
    with pytest.raises(ValueError):
        secrets_of(app, spa.tenant_id, clock).decrypt(token)
    assert [row.tenant_id for row in key_rows(app)] == [business.tenant_id, spa.tenant_id]


def test_the_guides_example_keeps_a_seed_and_spends_a_recovery_code_once(app, business, clock):
    section = GUIDE.split("\n## Secrets: `ctx.secrets`\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"^```python\n(.*?)^```", section, re.M | re.S)
    example: dict = {}
    exec(compile(code, "docs/plugins.md, ctx.secrets", "exec"), example)  # noqa: S102
    with app.app_context():
        tenant = db.session().get(Tenant, business.tenant_id)
        ctx = make_context(tenant, clock()).for_plugin("blocklist")  # the real ctx.store

    def stored() -> str:
        """Every key and value the plugin has in the database, as a dump would show them."""
        rows = select(PluginStoreEntry.key, PluginStoreEntry.value)
        with db.fresh_session(app) as session:
            return json.dumps([list(row) for row in session.execute(rows)])

    seed = example["enrol"](ctx, 7)
    assert example["seed_of"](ctx, 7) == seed and example["seed_of"](ctx, 8) is None
    assert seed.hex() not in stored() and base64.b64encode(seed).decode() not in stored()
    example["add_recovery_code"](ctx, 7, "kq7m-x2p9-zt4w")
    assert "kq7m-x2p9-zt4w" not in stored() and "KQ7M-X2P9-ZT4W" not in stored()
    use = example["use_recovery_code"]
    assert not use(ctx, 8, "KQ7M-X2P9-ZT4W")  # someone else's code
    assert use(ctx, 7, " kq7m-x2p9-zt4w ")
    assert not use(ctx, 7, "KQ7M-X2P9-ZT4W")  # spent


# --- encrypt, decrypt, digest ------------------------------------------------------------------


def test_what_is_encrypted_comes_back_and_tokens_are_fresh_text(
    app, business, clock, another_process
):
    secrets = secrets_of(app, business.tenant_id, clock)
    data = bytes(range(256))
    first, second = secrets.encrypt(data), secrets.encrypt(data)
    assert first != second  # a fresh nonce each time: equal secrets do not look equal
    assert first.isascii() and first.startswith("bws1.") and data.hex() not in first
    assert secrets.decrypt(first) == secrets.decrypt(second) == data
    assert secrets.decrypt(secrets.encrypt(b"")) == b""
    assert secrets.decrypt(secrets.encrypt(bytearray(b"seed"))) == b"seed"
    # Another process (another app on the same database and key) reads it too.
    assert secrets_of(another_process(), business.tenant_id, clock).decrypt(first) == data


@pytest.mark.parametrize("wrong", ["text", None, 42, ["b"]])
def test_only_bytes_are_encrypted_and_a_refusal_changes_nothing(app, business, clock, wrong):
    secrets = secrets_of(app, business.tenant_id, clock)
    with pytest.raises(TypeError, match="bytes"):
        secrets.encrypt(wrong)
    if not isinstance(wrong, str):
        with pytest.raises(TypeError):
            secrets.digest(wrong)
    with pytest.raises(TypeError):
        secrets.decrypt(b"bws1.AAAA")
    assert key_rows(app) == []  # no key was made for a call that was refused


def test_an_altered_token_is_refused_wherever_it_was_changed(app, business, clock):
    secrets = secrets_of(app, business.tenant_id, clock)
    token = secrets.encrypt(b"a TOTP seed")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    altered = []
    for index in range(len("bws1."), len(token)):
        replacement = alphabet[(alphabet.index(token[index]) + 1) % len(alphabet)]
        altered.append(token[:index] + replacement + token[index + 1 :])
    altered += [
        token[:-1],
        token[:-4],
        token + "A",
        token + "=",
        token.replace("bws1.", "bws2."),
        token[len("bws1.") :],
        token.replace("-", "+").replace("_", "/"),
        "bws1.",
        "bws1.!!!!",
        "",
    ]
    altered = [text for text in altered if text != token]
    for text in altered:
        with pytest.raises(SecretUnreadable):
            secrets.decrypt(text)
    assert issubclass(SecretUnreadable, ValueError)
    assert secrets.decrypt(token) == b"a TOTP seed"


def test_another_tenants_token_is_refused(app, business, spa, clock):
    salon, other = secrets_of(app, business.tenant_id, clock), secrets_of(app, spa.tenant_id, clock)
    with pytest.raises(ValueError, match="another business"):
        other.decrypt(salon.encrypt(b"salon's"))
    with pytest.raises(ValueError):
        salon.decrypt(other.encrypt(b"spa's"))


def test_digests_are_stable_keyed_and_the_tenants_own(app, business, spa, clock, another_process):
    salon = secrets_of(app, business.tenant_id, clock)
    digest = salon.digest("ann@example.com")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert salon.digest("ann@example.com") == digest
    elsewhere = secrets_of(another_process(), business.tenant_id, clock)
    assert elsewhere.digest("ann@example.com") == digest
    assert salon.digest("Ann@example.com") != digest  # exact text: normalise before hashing
    assert secrets_of(app, spa.tenant_id, clock).digest("ann@example.com") != digest
    assert hashlib.sha256(b"ann@example.com").hexdigest() != digest  # keyed, not a plain hash


# --- what the database holds ---------------------------------------------------------------------


def test_a_database_dump_reveals_neither_the_secret_nor_the_tenants_key(
    app, business, clock, database_url
):
    if not database_url.startswith("sqlite"):
        pytest.skip("reads the SQLite file as an attacker with a copy of it would")
    plaintext = b"4111-1111-1111-1111 MARKER-7c1e"
    token = secrets_of(app, business.tenant_id, clock).encrypt(plaintext)
    with db.write_transaction(app) as session:  # where a plugin's ctx.store would keep it
        session.add(
            PluginStoreEntry(
                tenant_id=business.tenant_id,
                plugin="blocklist",
                key="card",
                value=json.dumps(token),
                updated_at=clock(),
            )
        )
    data_key = keys.data_key(app, business.tenant_id)
    db.engine_of(app).dispose()

    dump = dump_every_table(database_url.removeprefix("sqlite:///"))
    assert token in dump and key_rows(app)[0].wrapped_key in dump  # the dump is complete
    assert plaintext.decode() not in dump and "MARKER-7c1e" not in dump
    for spelling in (
        data_key.hex(),
        base64.b64encode(data_key).decode(),
        base64.urlsafe_b64encode(data_key).decode(),
        data_key.decode("latin-1"),
    ):
        assert spelling not in dump
    assert KEY_A not in dump


def dump_every_table(path: str) -> str:
    """Every value of every table, as text, read with nothing but sqlite3."""
    connection = sqlite3.connect(path)
    try:
        listed = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        values = []
        for (table,) in listed.fetchall():
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        values.append(value.decode("latin-1"))
                    elif value is not None:
                        values.append(str(value))
        return "\n".join(values)
    finally:
        connection.close()


def test_a_wrapped_key_moved_to_another_tenants_row_does_not_open(
    app, business, spa, clock, another_process
):
    salon_token = secrets_of(app, business.tenant_id, clock).encrypt(b"salon's")
    spa_token = secrets_of(app, spa.tenant_id, clock).encrypt(b"spa's")
    salon_row = key_rows(app)[0]
    with db.write_transaction(app) as session:
        session.execute(
            update(TenantKey)
            .where(TenantKey.tenant_id == spa.tenant_id)
            .values(wrapped_key=salon_row.wrapped_key)
        )
    restarted = another_process()  # one that has not cached the spa's key
    spa_secrets = secrets_of(restarted, spa.tenant_id, clock)
    for attempt in (
        lambda: spa_secrets.decrypt(salon_token),
        lambda: spa_secrets.decrypt(spa_token),
        lambda: spa_secrets.encrypt(b"more"),
    ):
        with pytest.raises(keys.TenantKeyUnavailable, match="altered, or belongs to another"):
            attempt()
    # An instance's problem, not a bad token: a plugin catching ValueError does not swallow it.
    assert not issubclass(keys.TenantKeyUnavailable, ValueError)
    assert secrets_of(restarted, business.tenant_id, clock).decrypt(salon_token) == b"salon's"


# --- making the key once -------------------------------------------------------------------------


def test_simultaneous_first_use_in_several_processes_makes_one_key(
    app, business, clock, another_process
):
    apps = [app, another_process(), another_process()]
    callers = 9
    start = threading.Barrier(callers)
    tokens, errors = [], []

    def first_use(index):
        secrets = secrets_of(apps[index % len(apps)], business.tenant_id, clock)
        start.wait()
        try:
            tokens.append(secrets.encrypt(f"caller {index}".encode()))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=first_use, args=(index,)) for index in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(key_rows(app)) == 1
    assert len({keys.data_key(each, business.tenant_id) for each in apps}) == 1
    reader = secrets_of(another_process(), business.tenant_id, clock)
    assert sorted(reader.decrypt(token) for token in tokens) == sorted(
        f"caller {index}".encode() for index in range(callers)
    )


def test_a_key_made_by_another_process_meanwhile_is_the_one_kept(
    app, business, clock, another_process
):
    """The loser of the race read "no key", then finds one when it inserts: it keeps that."""
    other = another_process()
    made_by_other = []

    def other_process_first(connection, cursor, statement, parameters, context, many):
        if "FROM tenant_keys" in statement and not made_by_other:
            made_by_other.append(keys.data_key(other, business.tenant_id))

    engine = db.engine_of(app)
    event.listen(engine, "after_cursor_execute", other_process_first)
    try:
        ours = keys.data_key(app, business.tenant_id)
    finally:
        event.remove(engine, "after_cursor_execute", other_process_first)
    assert made_by_other == [ours]
    assert len(key_rows(app)) == 1


def test_unwrapped_keys_are_cached_per_process_a_bounded_number(
    app, business, spa, clock, monkeypatch
):
    monkeypatch.setattr(keys, "CACHED_TENANTS", 1)
    reads = []

    def count(connection, cursor, statement, parameters, context, many):
        if "FROM tenant_keys" in statement:
            reads.append(statement)

    secrets_of(app, business.tenant_id, clock).encrypt(b"x")
    engine = db.engine_of(app)
    event.listen(engine, "before_cursor_execute", count)
    try:
        secrets_of(app, business.tenant_id, clock).encrypt(b"x")
        assert reads == []  # cached: no read
        secrets_of(app, spa.tenant_id, clock).encrypt(b"x")  # pushes the salon's out (bound: 1)
        reads.clear()
        secrets_of(app, business.tenant_id, clock).encrypt(b"x")
        assert len(reads) == 1
    finally:
        event.remove(engine, "before_cursor_execute", count)


# --- the key ring and sealing --------------------------------------------------------------------


def test_the_ring_is_read_from_comma_separated_keys_first_one_current():
    assert keys.parse_ring(f" {KEY_B} ,\t{KEY_A} ") == (KEY_B, KEY_A)
    assert keys.parse_ring([KEY_B, KEY_A]) == (KEY_B, KEY_A)  # a list, from config.toml
    ring = keys.KeyRing.from_config(f"{KEY_B},{KEY_A}")
    assert ring.current == keys.KeyRing.from_config(KEY_B).current
    assert len(keys.KeyRing.from_config(f"{KEY_A},{KEY_A}").keys) == 1


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (f"{KEY_B},,{KEY_A}", "number 2 of 3"),
        (f",{KEY_A}", "number 1 of 2"),
        (f"{KEY_A}, ", "number 2 of 2"),
    ],
)
def test_an_empty_entry_in_the_ring_stops_the_app_without_showing_a_key(make_app, value, where):
    with pytest.raises(keys.KeyRingError, match=where) as refused:
        make_app(ENCRYPTION_KEY=value)
    assert KEY_A not in str(refused.value) and KEY_B not in str(refused.value)


def test_sealed_values_stay_readable_across_a_rotation(another_process):
    old = another_process(KEY_A)
    sealed_under_a = sealing.seal("remembered answer", old)
    # The derivation sealing always had (SHA-256 of the key's text), written by hand.
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(KEY_A.encode()).digest()))
    sealed_before_rings = legacy.encrypt(b"older still").decode()

    rotating = another_process(f"{KEY_B},{KEY_A}")
    assert sealing.unseal(sealed_under_a, rotating) == "remembered answer"
    assert sealing.unseal(sealed_before_rings, rotating) == "older still"
    sealed_under_b = sealing.seal("new answer", rotating)
    with pytest.raises(sealing.Unsealable):
        sealing.unseal(sealed_under_b, old)  # sealed with the new, first key

    rotated = another_process(KEY_B)
    assert sealing.unseal(sealed_under_b, rotated) == "new answer"
    assert sealing.unseal(sealing.reseal(sealed_under_a, rotating), rotated) == "remembered answer"
    assert sealing.reseal(sealed_under_b, rotating) is None  # already under the current key
    with pytest.raises(sealing.Unsealable):
        sealing.unseal(sealed_under_a, rotated)


def test_rewrapping_changes_the_wrapping_never_the_key(app, business, clock, another_process):
    secrets = secrets_of(app, business.tenant_id, clock)
    token, digest = secrets.encrypt(b"seed"), secrets.digest("ann@example.com")
    rotating = another_process(f"{KEY_B},{KEY_A}")
    ring = keys.ring_of(rotating)
    before = key_rows(app)[0].wrapped_key
    with db.write_transaction(rotating) as session:
        done = keys.rewrap(session, ring, business.tenant_id, clock())
    assert done.previous == keys.ring_of(app).current.fingerprint
    assert done.current == ring.current.fingerprint
    (row,) = key_rows(app)
    assert row.wrapped_key != before and row.rewrapped_at == clock()
    with db.write_transaction(rotating) as session:
        assert keys.rewrap(session, ring, business.tenant_id, clock()) is None  # nothing to do
        assert keys.status(session, ring) == keys.RingStatus(
            1, ((ring.keys[0].fingerprint, 1), (ring.keys[1].fingerprint, 0)), 0
        )

    after = secrets_of(another_process(KEY_B), business.tenant_id, clock)
    assert after.decrypt(token) == b"seed" and after.digest("ann@example.com") == digest
    with db.fresh_session(app) as session:
        assert session.scalar(select(func.count()).select_from(TenantKey)) == 1
