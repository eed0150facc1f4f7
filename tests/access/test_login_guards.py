"""Login guards that can do what a lockout needs: ``before_password_check`` answers before the
password is looked at (``locked`` whatever the password, no quicker than any other answer, and
an attempt reserved atomically under concurrency), ``after_login_failed`` says why, ``ctx.actor``
is whose account it is wherever someone acts, and platform support's logins run the plugins the
operator configures for the instance."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from conftest import CSRF_TOKEN, STAFF_PASSWORD, csrf_token_of
from sqlalchemy import select

from bookwell.core import audit
from bookwell.core.access import client_accounts, users
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, AuthSession, Tenant, User
from bookwell.hooks import Manifest, Refusal, SessionLimits, Setting, hookimpl

PASSWORD = "correct horse battery staple"


def manifest(name: str, *settings: Setting) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests", settings)


class Lockout:
    """Reserves every attempt before the password is checked (a lock and a counter: atomic), and
    locks the address once ``limit`` attempts have been made; a login that succeeds frees it.
    Keyed by the address, not the account, so an unknown address locks exactly like a real one."""

    MANIFEST = manifest(
        "lockout",
        Setting("limit", "int", 3, "Attempts", min=1, max=100),
        Setting("minutes", "int", 15, "Minutes locked", min=1, max=1440),
    )
    guard = threading.Lock()
    attempts: dict = {}

    @staticmethod
    def key(ctx):
        return (ctx.tenant.id if ctx.tenant else None, ctx.login.email)

    @hookimpl
    def before_password_check(ctx, settings):
        with Lockout.guard:
            made = Lockout.attempts.get(Lockout.key(ctx), 0) + 1
            Lockout.attempts[Lockout.key(ctx)] = made
        if made <= settings["limit"]:
            return None
        until = ctx.now + timedelta(minutes=settings["minutes"])
        if made == settings["limit"] + 1 and ctx.tenant is not None:
            ctx.audit("locked", f"login:{ctx.login.email}", {"until": until})
        return Refusal(
            "Too many attempts: this account is locked for a while.",
            code="locked",
            details={"locked_until": until},
        )

    @hookimpl
    def after_login(ctx):
        with Lockout.guard:
            Lockout.attempts.pop(Lockout.key(ctx), None)


class WrongCode:
    """A second factor that says ``otp_invalid`` for a wrong code and asks for one if none."""

    MANIFEST = manifest("wrong-code")

    @hookimpl
    def before_login(ctx):
        answer = ctx.login.answers.get("otp")
        if answer == "123456":
            return None
        challenge = {"field": "otp", "label": "6-digit code"}
        if answer is None:
            return Refusal("Enter the code.", code="otp_required", challenge=challenge)
        return Refusal("That code is not right.", code="otp_invalid", challenge=challenge)


class Recorder:
    """Writes down who each login and password hook saw, and where."""

    MANIFEST = manifest("recorder")
    heard: list = []

    @hookimpl
    def before_password_check(ctx):
        Recorder.heard.append(("before_password_check", ctx.login, ctx.actor, ctx.tenant))

    @hookimpl
    def before_login(ctx):
        Recorder.heard.append(("before_login", ctx.login, ctx.actor, ctx.tenant))

    @hookimpl
    def after_login(ctx):
        Recorder.heard.append(("after_login", ctx.login, ctx.actor, ctx.tenant))

    @hookimpl
    def after_login_failed(ctx, reason):
        Recorder.heard.append(("after_login_failed", reason, ctx.actor, ctx.tenant))

    @hookimpl
    def before_password_set(ctx, password):
        Recorder.heard.append(("before_password_set", password, ctx.actor, ctx.tenant))

    @hookimpl
    def session_limits(ctx):
        Recorder.heard.append(("session_limits", None, ctx.actor, ctx.tenant))
        return SessionLimits(idle_minutes=20)

    @staticmethod
    def of(hook):
        return [entry[1:] for entry in Recorder.heard if entry[0] == hook]


class CrashingCheck:
    MANIFEST = manifest("crashing-check")

    @hookimpl
    def before_password_check(ctx):
        raise RuntimeError("bug in a password-check guard")


PLUGINS = [Lockout, WrongCode, Recorder, CrashingCheck]


@pytest.fixture(autouse=True)
def fresh_plugins():
    Lockout.attempts.clear()
    Recorder.heard.clear()


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=PLUGINS)


@pytest.fixture
def enable(app, business, clock):
    def switch_on(name, **settings):
        with app.app_context():
            plugin_changes.enable(app, business.tenant_id, name, settings, clock())

    return switch_on


@pytest.fixture
def owner_id(app, business, clock) -> int:
    with app.app_context():
        return users.create_user(
            app,
            tenant_id=business.tenant_id,
            email="owner@example.com",
            role="owner",
            password=PASSWORD,
            name="Olga Owner",
            now=clock(),
        ).id


def log_in(client, email="owner@example.com", password=PASSWORD, slug="salon", **extra):
    return client.post(
        f"/api/v1/tenants/{slug}/auth/login", json={"email": email, "password": password, **extra}
    )


def sessions_count(app) -> int:
    with db.fresh_session(app) as session:
        return len(session.scalars(select(AuthSession.id)).all())


class CountingHasher:
    """argon2's own hasher, noting which hash each verification was against (thread-safe)."""

    def __init__(self, inner) -> None:
        self.inner, self.verified, self.lock = inner, [], threading.Lock()

    def verify(self, hashed, password):
        with self.lock:
            self.verified.append(hashed)
        return self.inner.verify(hashed, password)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def counting(app) -> tuple[CountingHasher, str]:
    extension = app.extensions["bookwell.passwords"]
    extension.hasher = CountingHasher(extension.hasher)
    return extension.hasher, extension.decoy_hash


def stored_hash(app, email) -> str:
    with db.fresh_session(app) as session:
        return session.scalars(select(User.password_hash).where(User.email == email)).one()


# --- before_password_check ----------------------------------------------------------------------


def test_a_locked_account_answers_locked_whatever_the_password(app, business, owner_id, enable):
    enable("lockout", limit=2, minutes=15)
    client = app.test_client()
    for _ in range(2):
        assert log_in(client, password="not the password").json["error"]["code"] == (
            "invalid_credentials"
        )
    right = log_in(client)
    wrong = log_in(client, password="not the password")
    for response in (right, wrong):
        assert response.status_code == 401
        assert "token" not in response.json
    # The same answer, byte for byte: the lock tells nothing about the password tried.
    assert right.get_data() == wrong.get_data()
    error = right.json["error"]
    assert error["code"] == "locked"
    assert error["details"] == {"locked_until": "2027-03-01T08:15:00+00:00"}  # UTC, ISO 8601
    assert error["refusals"] == [
        {
            "plugin": "lockout",
            "code": "locked",
            "message": error["message"],
            "field": None,
            "details": {"locked_until": "2027-03-01T08:15:00+00:00"},
        }
    ]
    assert sessions_count(app) == 0


def test_an_unknown_address_locks_exactly_like_a_real_one(app, business, owner_id, enable):
    enable("lockout", limit=1)
    client = app.test_client()
    log_in(client, password="nope nope nope")
    log_in(client, email="nobody@example.com", password="nope nope nope")
    known = log_in(client, password="nope nope nope")
    unknown = log_in(client, email="nobody@example.com", password="nope nope nope")
    assert known.status_code == unknown.status_code == 401
    assert known.get_data() == unknown.get_data()


def test_a_refusal_before_the_password_costs_one_verification_against_the_decoy(
    app, business, owner_id, enable
):
    enable("lockout", limit=1)
    hasher, decoy = counting(app)
    client = app.test_client()
    log_in(client, password="not the password")
    assert hasher.verified == [stored_hash(app, "owner@example.com")]
    hasher.verified.clear()
    assert log_in(client).json["error"]["code"] == "locked"
    # The password was never compared with the account's hash, yet one argon2 verification ran.
    assert hasher.verified == [decoy]


def test_twenty_simultaneous_wrong_passwords_never_evaluate_more_than_the_limit(
    make_app, business, owner_id, enable
):
    enable("lockout", limit=5)
    # A request may hold two connections at once (its reads, and a write transaction): a
    # process serving twenty requests at a time needs a pool that large.
    app = make_app(EXTRA_PLUGINS=PLUGINS, DATABASE_POOL_SIZE=20)
    hasher, _ = counting(app)
    account_hash = stored_hash(app, "owner@example.com")
    start = threading.Barrier(20)
    answers: list = []

    def attempt():
        client = app.test_client()
        start.wait()
        response = log_in(client, password="a wrong guess")
        answers.append((response.status_code, response.json["error"]["code"]))

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(answers) == 20
    assert hasher.verified.count(account_hash) == 5
    assert sorted(answers) == [(401, "invalid_credentials")] * 5 + [(401, "locked")] * 15
    assert Lockout.attempts[(business.tenant_id, "owner@example.com")] == 20


def test_before_password_check_sees_the_attempt_and_no_actor(app, business, owner_id, enable):
    enable("recorder")
    client = app.test_client()
    log_in(client, email="Owner@Example.com", otp="123456")
    log_in(client, email="nobody@example.com")
    (known, actor, tenant), (unknown, nobody, _) = Recorder.of("before_password_check")
    assert (known.email, known.user_id, known.role, dict(known.answers)) == (
        "owner@example.com",
        owner_id,
        "owner",
        {"otp": "123456"},
    )
    assert (unknown.email, unknown.user_id, unknown.role) == ("nobody@example.com", None, None)
    assert actor is None and nobody is None  # nobody is authenticated before the password
    assert tenant.slug == "salon"
    # From before_login on, the password was right: the account acts.
    (_, login_actor, _) = Recorder.of("before_login")[0]
    assert (login_actor.id, login_actor.email, login_actor.role, login_actor.tenant_id) == (
        owner_id,
        "owner@example.com",
        "owner",
        business.tenant_id,
    )


def test_a_crashing_password_check_fails_closed_with_503_and_retry_after(
    app, business, owner_id, enable
):
    enable("crashing-check")
    response = log_in(app.test_client())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.json["error"]["code"] == "plugin_failed"
    assert "bug in" not in response.get_data(as_text=True)
    assert sessions_count(app) == 0


# --- after_login_failed and the audit -----------------------------------------------------------


def test_after_login_failed_says_why_and_every_failure_is_audited(app, business, owner_id, enable):
    enable("recorder")
    enable("wrong-code")
    enable("lockout", limit=3)
    client = app.test_client()
    log_in(client, password="not the password")
    log_in(client)
    log_in(client, otp="000000")
    log_in(client)
    assert [reason for reason, _, _ in Recorder.of("after_login_failed")] == [
        "invalid_credentials",
        "otp_required",
        "otp_invalid",
        "locked",
    ]
    actors = [actor.id if actor else None for _, actor, _ in Recorder.of("after_login_failed")]
    # A wrong password or a refusal before it is checked: nobody acted; after it, the account.
    assert actors == [None, owner_id, owner_id, None]
    with db.fresh_session(app) as session:
        reasons = session.scalars(
            select(AuditEntry.details)
            .where(AuditEntry.action == "login.failed")
            .order_by(AuditEntry.id)
        ).all()
    assert [json.loads(text)["reason"] for text in reasons] == [
        "invalid_credentials",
        "otp_required",
        "otp_invalid",
        "locked",
    ]


def test_a_guard_audits_into_the_tenants_chain_which_still_verifies(
    app, business, owner_id, enable
):
    enable("lockout", limit=1)
    client = app.test_client()
    log_in(client, password="wrong password 1")
    log_in(client, password="wrong password 2")
    log_in(client, password="wrong password 3")  # locked again: audited only the first time
    with db.fresh_session(app) as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("plugin.lockout.%"))
        ).all()
        assert [(entry.action, entry.tenant_id) for entry in entries] == [
            ("plugin.lockout.locked", business.tenant_id)
        ]
        [shown] = audit.listing(
            session, business.tenant_id, audit.Filter(action="plugin.lockout.locked")
        )
        assert shown.subject.startswith("login:person:")
        assert shown.subject_email == "owner@example.com"
        assert json.loads(entries[0].details) == {"until": "2027-03-01T08:15:00.000000+00:00"}
        checked = audit.verify(session, business.tenant_id)
    assert checked.ok, checked.reason
    assert checked.checked >= 4  # user.created, two failed logins, the plugin's entry...


# --- ctx.actor wherever someone acts ------------------------------------------------------------


def test_before_password_set_sees_the_account_whose_password_it_is(
    app, business, owner_id, enable, clock
):
    enable("recorder")
    client = app.test_client()
    with db.write_transaction(app) as session:
        session.get(Tenant, business.tenant_id).client_accounts = True

    # Sign-up: the account does not exist yet; plugins see all that is known of it, id 0.
    assert (
        client.post(
            "/api/v1/tenants/salon/clients",
            json={"name": "Ann Client", "email": "Ann@Example.com", "password": "sign-up password"},
        ).status_code
        == 201
    )
    # A password change: the signed-in account.
    token = log_in(client).json["token"]
    assert (
        client.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": "a changed password"},
            headers={"Authorization": f"Bearer {token}"},
        ).status_code
        == 200
    )
    # A reset by link: the account the link is for.
    with app.app_context():
        ann = users.find_user(db.session(), business.tenant_id, "ann@example.com")
        with db.write_transaction(app) as writer:
            secret = client_accounts.issue(writer, ann, client_accounts.RESET_PASSWORD, clock())
    with app.app_context():
        tenant = db.session().get(Tenant, business.tenant_id)
        assert client_accounts.reset_password(app, tenant, secret, "a reset password", clock())
    # (A reset asks twice: before the link is used, and as the password is set.)
    seen = dict((password, actor) for password, actor, _ in Recorder.of("before_password_set"))
    # The login's check of the password it was given (ctx.actor the account too) comes first.
    assert seen.pop(PASSWORD).id == owner_id
    assert list(seen) == ["sign-up password", "a changed password", "a reset password"]
    new, changer, resetter = seen.values()
    assert (new.id, new.email, new.name, new.role, new.tenant_id) == (
        0,
        "ann@example.com",
        "Ann Client",
        "client",
        business.tenant_id,
    )
    assert (changer.id, changer.email, changer.name, changer.role) == (
        owner_id,
        "owner@example.com",
        "Olga Owner",
        "owner",
    )
    assert (resetter.id, resetter.email, resetter.role) == (ann.id, "ann@example.com", "client")


def test_session_limits_sees_whose_session_it_is(app, business, owner_id, enable):
    enable("recorder")
    token = log_in(app.test_client()).json["token"]
    assert token
    actors = {actor.id for _, actor, _ in Recorder.of("session_limits")}
    assert actors == {owner_id}
    with db.fresh_session(app) as session:
        assert session.scalars(select(AuthSession.idle_minutes)).one() == 20


# --- platform support: the instance's plugins ---------------------------------------------------


def add_support(app, clock, email="help@bookwell.example"):
    with app.app_context():
        return users.create_user(
            app, tenant_id=None, email=email, role="support", password=STAFF_PASSWORD, now=clock()
        ).id


def support_login(app, password=STAFF_PASSWORD, email="help@bookwell.example"):
    client = app.test_client()
    page = client.get("/support/login")
    return client.post(
        "/support/login",
        data={"csrf_token": csrf_token_of(page), "email": email, "password": password},
    )


def test_support_logins_run_the_plugins_the_operator_configured(make_app, clock):
    app = make_app(
        EXTRA_PLUGINS=PLUGINS,
        SUPPORT_PLUGINS={"lockout": {"limit": 2}, "recorder": {}},
    )
    support_id = add_support(app, clock)
    assert support_login(app).status_code == 302
    for _ in range(2):
        assert support_login(app, password="not the password").status_code == 401
    locked = support_login(app)  # the right password, but locked
    assert locked.status_code == 401
    assert "locked for a while" in locked.text

    (attempt, actor, tenant) = Recorder.of("before_password_check")[0]
    assert (attempt.email, attempt.user_id, actor, tenant) == (
        "help@bookwell.example",
        support_id,
        None,
        None,
    )
    assert [reason for reason, _, _ in Recorder.of("after_login_failed")] == [
        "invalid_credentials",
        "invalid_credentials",
        "locked",
    ]
    (_, actor, tenant) = Recorder.of("after_login")[0]
    assert (actor.id, actor.role, actor.tenant_id, tenant) == (support_id, "support", None, None)
    # Support's passwords and sessions answer to the same plugins.
    (password, actor, tenant) = Recorder.of("before_password_set")[0]
    assert (password, actor.id, actor.role, tenant) == (STAFF_PASSWORD, 0, "support", None)
    assert {actor.id for _, actor, _ in Recorder.of("session_limits")} == {support_id}


def test_tenants_plugins_do_not_run_for_support_nor_support_plugins_for_tenants(
    make_app, business, clock, owner_id
):
    app = make_app(EXTRA_PLUGINS=PLUGINS, SUPPORT_PLUGINS={"lockout": {"limit": 1}})
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "recorder", {}, clock())
    add_support(app, clock)
    assert support_login(app).status_code == 302
    assert Recorder.heard == []
    client = app.test_client()
    for _ in range(3):
        assert log_in(client, password="not the password").json["error"]["code"] == (
            "invalid_credentials"
        )


def test_support_plugins_may_come_from_the_environment(make_app, clock, monkeypatch):
    monkeypatch.setenv("BOOKWELL_SUPPORT_PLUGINS", json.dumps({"lockout": {"limit": 1}}))
    app = make_app(EXTRA_PLUGINS=PLUGINS)
    add_support(app, clock)
    assert support_login(app, password="not the password").status_code == 401
    assert "locked for a while" in support_login(app).text


@pytest.mark.parametrize(
    ("configured", "blamed"),
    [
        ({"lockout": {"limit": "many"}}, "lockout"),
        ({"lockout": {"no_such_setting": 1}}, "lockout"),
        ({"not-installed": {}}, "not-installed"),
        ({"lockout": 3}, "lockout"),
        ("not a table", "SUPPORT_PLUGINS"),
    ],
    ids=["bad-value", "unknown-setting", "not-installed", "not-a-table", "not-a-mapping"],
)
def test_a_bad_support_configuration_is_logged_and_refuses_support_logins(
    make_app, clock, caplog, configured, blamed
):
    add_support(make_app(EXTRA_PLUGINS=PLUGINS), clock)
    caplog.clear()
    app = make_app(EXTRA_PLUGINS=PLUGINS, SUPPORT_PLUGINS=configured)
    assert blamed in caplog.text  # logged when the app starts
    with app.app_context():
        # A broken support plugin refuses support's passwords as well (fail closed).
        with pytest.raises(users.UserError, match="not working"):
            users.create_user(
                app,
                tenant_id=None,
                email="other@bookwell.example",
                role="support",
                password=STAFF_PASSWORD,
                now=clock(),
            )
    response = support_login(app)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "not working" in response.text
    assert CSRF_TOKEN.search(response.text)  # the login page again, not a stack trace


# --- every door ---------------------------------------------------------------------------------


def post_login_form(client, url, email, password):
    page = client.get(url)
    return client.post(
        url, data={"csrf_token": csrf_token_of(page), "email": email, "password": password}
    )


def test_the_staff_and_client_login_pages_answer_the_lock_too(
    app, business, owner_id, enable, clock
):
    with db.write_transaction(app) as session:
        session.get(Tenant, business.tenant_id).client_accounts = True
    with app.app_context():
        users.create_user(
            app,
            tenant_id=business.tenant_id,
            email="ann@example.com",
            role="client",
            password=PASSWORD,
            now=clock(),
        )
    enable("lockout", limit=1)
    enable("recorder")
    doors = [
        ("/admin/salon/login", "owner@example.com"),
        ("/book/salon/account/login", "ann@example.com"),
    ]
    for url, email in doors:
        client = app.test_client()
        assert post_login_form(client, url, email, "a wrong password").status_code == 401
        locked = post_login_form(client, url, email, PASSWORD)  # the right one
        assert locked.status_code == 401, url
        assert "locked for a while" in locked.text
        assert session_cookie_of(locked) is None
    assert [reason for reason, _, _ in Recorder.of("after_login_failed")] == [
        "invalid_credentials",
        "locked",
    ] * 2


def session_cookie_of(response):
    cookies = response.headers.getlist("Set-Cookie")
    return next((cookie for cookie in cookies if cookie.startswith("bookwell_session=")), None)
