"""Platform support's accounts belong to no business, yet the plugins the operator switched on
for them keep state and secrets about them: ``ctx.store`` and ``ctx.secrets`` are then the
instance's own, and ``ctx.audit`` writes to the platform's trail."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from conftest import STAFF_PASSWORD, csrf_token_of
from sqlalchemy import select

from bookwell.core import audit
from bookwell.core.access import users
from bookwell.core.context import store as plugin_store
from bookwell.core.context.secrets import TenantSecrets
from bookwell.core.storage import db, keys
from bookwell.core.storage.models import AuditEntry, PlatformPluginStoreEntry
from bookwell.core.testing import open_business
from bookwell.hooks import Manifest, Refusal, Setting, hookimpl


class StoredLockout:
    """The guide's lockout (docs/plugins.md "A lockout"), its count in ``ctx.store``."""

    MANIFEST = Manifest(
        "stored_lockout",
        "Stored lockout",
        "Locks an address after too many attempts.",
        "1.0",
        "test",
        "tests",
        (Setting("attempts", "int", 2, "Attempts", min=1, max=100),),
    )

    @staticmethod
    def keys(email):
        address = hashlib.sha256(email.encode()).hexdigest()
        return f"tries:{address}", f"locked:{address}"

    @hookimpl
    def before_password_check(ctx, settings):
        tries, lock = StoredLockout.keys(ctx.login.email)
        if ctx.store.get(lock) is None:
            made = ctx.store.increment(tries, expires_at=ctx.now + timedelta(hours=1))
            if made <= settings["attempts"]:
                return None
            until = ctx.now + timedelta(minutes=15)
            if ctx.store.compare_and_set(lock, None, until.isoformat(), expires_at=until):
                ctx.store.delete(tries)
                ctx.audit("locked", f"login:{ctx.login.email}", {"until": until.isoformat()})
        return Refusal("Locked for a while.", code="locked")

    @hookimpl
    def after_login(ctx):
        # A secret about the account, kept as a second factor's seed would be.
        ctx.store.set("seed", ctx.secrets.encrypt(b"JBSWY3DPEHPK3PXP"))


SUPPORT = "help@bookwell.example"


def support_login(app, password=STAFF_PASSWORD):
    client = app.test_client()
    page = client.get("/support/login")
    return client.post(
        "/support/login",
        data={"csrf_token": csrf_token_of(page), "email": SUPPORT, "password": password},
    )


def support_app(make_app, clock, **settings):
    app = make_app(
        EXTRA_PLUGINS=[StoredLockout], SUPPORT_PLUGINS={"stored_lockout": {}}, **settings
    )
    with app.app_context():
        users.create_user(
            app, tenant_id=None, email=SUPPORT, role="support", password=STAFF_PASSWORD, now=clock()
        )
    return app


def test_a_support_login_locks_through_the_instance_store_and_audits_on_the_platform_trail(
    make_app, clock
):
    app = support_app(make_app, clock)
    for _ in range(2):
        assert support_login(app, password="not the password").status_code == 401
    locked = support_login(app)  # the right password, but the store says locked
    assert locked.status_code == 401 and "Locked for a while." in locked.text

    with db.fresh_session(app) as session:
        rows = session.scalars(select(PlatformPluginStoreEntry)).all()
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "plugin.stored_lockout.locked")
        ).one()
        assert audit.verify_chain(session, audit.PLATFORM_CHAIN).ok
    assert {row.plugin for row in rows} == {"stored_lockout"}
    # The trail names the account by pseudonym, never by its address.
    assert entry.tenant_id is None and entry.subject.startswith("login:person:")
    assert SUPPORT not in entry.subject

    # The lock lifts with time (ctx.now, not the wall clock).
    clock.advance(minutes=16)
    assert support_login(app).status_code == 302


def test_support_secrets_use_the_instance_key_which_rotation_rewraps(make_app, clock):
    app = support_app(make_app, clock)
    assert support_login(app).status_code == 302
    with app.app_context():
        shelf = plugin_store.PlatformStore(app, "stored_lockout", clock())
        token = shelf.get("seed")
        with db.fresh_session(app) as session:
            before = keys.platform_key_wrapped_by(session)
    assert token and "JBSWY3DPEHPK3PXP" not in token
    assert TenantSecrets(app, keys.PLATFORM).decrypt(token) == b"JBSWY3DPEHPK3PXP"
    assert before == keys.ring_of(app).current.fingerprint
    # Bound to the instance: a business's key cannot open it.
    business = open_business(app, clock())
    with pytest.raises(ValueError):
        TenantSecrets(app, business.tenant_id).decrypt(token)


def test_the_platform_store_is_the_plugins_own(make_app, clock):
    app = make_app()
    with app.app_context():
        ours = plugin_store.PlatformStore(app, "one", clock())
        theirs = plugin_store.PlatformStore(app, "two", clock())
        ours.set("k", 1)
        assert theirs.get("k") is None
        assert ours.increment("k") == 2
        assert theirs.compare_and_set("k", None, "x") and theirs.get("k") == "x"
        assert ours.get("k") == 2


def test_rotation_rewraps_the_instance_key_and_its_secrets_still_open(make_app, clock):
    app = make_app()
    with app.app_context():
        token = TenantSecrets(app, keys.PLATFORM).encrypt(b"seed")
        old = keys.ring_of(app)
        ring = keys.KeyRing(["new-ring-key-0123456789abcdef0123456789abcdef", *old_texts(app)])
        with db.write_transaction(app) as session:
            done = keys.rewrap(session, ring, keys.PLATFORM, clock())
        with db.fresh_session(app) as session:
            assert keys.platform_key_wrapped_by(session) == ring.current.fingerprint
    assert done is not None and done.previous == old.current.fingerprint
    # A process that holds only the new key reads the re-wrapped key from the database.
    later = make_app(ENCRYPTION_KEY="new-ring-key-0123456789abcdef0123456789abcdef")
    with later.app_context():
        assert TenantSecrets(later, keys.PLATFORM).decrypt(token) == b"seed"


def old_texts(app):
    return keys.parse_ring(app.config["ENCRYPTION_KEY"])
