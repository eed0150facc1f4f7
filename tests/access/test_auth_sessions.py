"""Sessions and tokens: a new session at every login, revoked at logout, idle and absolute
timeouts (tightened by plugins), a password change ending the other sessions, a user's own list
of sessions, Authorization: Bearer as the only way in, and API keys from the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import CHEAP_HASHING, csrf_token_of
from sqlalchemy import func, select

from bookwell.core import create_app
from bookwell.core.access import client_accounts, sessions, users
from bookwell.core.cli import instance as cli_instance
from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import ApiKey, AuditEntry, AuthSession, Tenant, User
from bookwell.hooks import Manifest, SessionLimits, Setting, hookimpl

PASSWORD = "correct horse battery staple"
SESSIONS = "/api/v1/auth/sessions"
LOGOUT = "/api/v1/auth/logout"
CHANGE_PASSWORD = "/api/v1/auth/password"
STAFF_BOOKINGS = "/api/v1/tenants/salon/bookings?from=2027-03-01&to=2027-03-07"


def manifest(name: str, *settings: Setting) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests", settings)


class ShortSessions:
    """Asks for the session timeouts in its settings (0: no opinion)."""

    MANIFEST = manifest(
        "short-sessions",
        Setting("idle", "int", 0, "Idle minutes", min=0, max=10_000),
        Setting("absolute", "int", 0, "Absolute minutes", min=0, max=10_000),
    )

    @hookimpl
    def session_limits(settings):
        return SessionLimits(
            idle_minutes=settings["idle"] or None, absolute_minutes=settings["absolute"] or None
        )


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=[ShortSessions])


@pytest.fixture
def people(app, business, clock):
    """An owner and a receptionist of 'salon'; their user ids by e-mail."""
    ids = {}
    with app.app_context():
        for email, role in (("owner@example.com", "owner"), ("desk@example.com", "receptionist")):
            ids[email] = users.create_user(
                app,
                tenant_id=business.tenant_id,
                email=email,
                role=role,
                password=PASSWORD,
                now=clock(),
            ).id
    return ids


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run(tmp_path, database_url, clock, monkeypatch):
    """``bookwell --instance TMP ...`` in-process on the test's database (cheap hashing, the
    test's clock)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    for variable in ("BOOKWELL_SECRET_KEY", "BOOKWELL_INSTANCE"):
        monkeypatch.delenv(variable, raising=False)
    built = []

    def build(config=None):
        built.append(
            create_app({**(config or {}), "PASSWORD_HASHING": CHEAP_HASHING, "CLOCK": clock})
        )
        return built[-1]

    monkeypatch.setattr(cli_instance, "create_app", build)

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(
            main, ["--instance", str(tmp_path / "instance"), *args], input=input
        )

    yield invoke
    for app in built:
        db.engine_of(app).dispose()


def log_in(client, email="owner@example.com", password=PASSWORD, slug="salon", **extra):
    return client.post(
        f"/api/v1/tenants/{slug}/auth/login",
        json={"email": email, "password": password},
        **extra,
    )


def token_of(client, email="owner@example.com", password=PASSWORD) -> str:
    response = log_in(client, email, password)
    assert response.status_code == 200, response.json
    return response.json["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def works(client, token: str) -> bool:
    """Whether ``token`` still opens the API (401 when it does not; nothing else expected)."""
    status = client.get(SESSIONS, headers=bearer(token)).status_code
    assert status in (200, 401), status
    return status == 200


def enable(app, tenant_id, clock, name, **settings):
    with app.app_context():
        plugin_changes.enable(app, tenant_id, name, settings, clock())


# --- a new session at every login ---------------------------------------------------------------


def test_each_login_starts_a_new_session_with_a_token_never_given_before(client, people):
    tokens = [token_of(client) for _ in range(5)]
    assert len(set(tokens)) == 5
    assert all(works(client, token) for token in tokens)
    assert len(client.get(SESSIONS, headers=bearer(tokens[0])).json) == 5


def test_a_token_presented_at_login_is_never_the_one_given_back(client, people):
    before = token_of(client)
    response = log_in(client, headers=bearer(before))
    assert response.status_code == 200
    after = response.json["token"]
    assert after != before
    # The new session is its own: ending the old one leaves it alone.
    assert client.post(LOGOUT, headers=bearer(before)).status_code == 200
    assert not works(client, before)
    assert works(client, after)


def test_only_a_hash_of_the_token_is_stored(app, client, people):
    token = token_of(client)
    with db.engine_of(app).connect() as connection:
        rows = [tuple(row) for row in connection.execute(select(AuthSession)).all()]
    assert rows and not any(token in str(value) for row in rows for value in row)


# --- logout -------------------------------------------------------------------------------------


def test_logout_revokes_the_token(client, people):
    token = token_of(client)
    assert client.post(LOGOUT, headers=bearer(token)).json == {"status": "logged_out"}
    assert client.get(SESSIONS, headers=bearer(token)).status_code == 401
    assert client.get(STAFF_BOOKINGS, headers=bearer(token)).status_code == 401
    assert client.post(LOGOUT, headers=bearer(token)).status_code == 401


def test_logging_in_again_does_not_revive_a_revoked_session(client, people):
    revoked = token_of(client)
    client.post(LOGOUT, headers=bearer(revoked))
    fresh = token_of(client)
    assert fresh != revoked
    assert works(client, fresh)
    assert not works(client, revoked)


# --- idle and absolute timeouts -----------------------------------------------------------------


def test_a_session_left_idle_for_31_minutes_is_over(client, people, clock):
    token = token_of(client)
    clock.advance(minutes=31)
    assert client.get(STAFF_BOOKINGS, headers=bearer(token)).status_code == 401
    assert not works(client, token)


def test_activity_within_30_minutes_keeps_a_session_alive(client, people, clock):
    token = token_of(client)
    for _ in range(4):
        clock.advance(minutes=29)
        assert works(client, token)
    clock.advance(minutes=31)
    assert not works(client, token)


def test_a_session_kept_active_ends_at_12_hours_all_the_same(client, people, clock):
    token = token_of(client)
    for _ in range(12 * 3 - 1):  # every 20 minutes, up to 11 h 40
        clock.advance(minutes=20)
        assert works(client, token), clock()
    clock.advance(minutes=20)  # 12 h after the login
    assert client.get(STAFF_BOOKINGS, headers=bearer(token)).status_code == 401
    assert not works(client, token)


def test_a_session_limits_plugin_tightens_the_idle_timeout(app, client, people, business, clock):
    enable(app, business.tenant_id, clock, "short-sessions", idle=5)
    token = token_of(client)
    clock.advance(minutes=4)
    assert works(client, token)
    clock.advance(minutes=6)
    assert not works(client, token)


def test_a_session_limits_plugin_tightens_the_absolute_timeout(
    app, client, people, business, clock
):
    enable(app, business.tenant_id, clock, "short-sessions", absolute=60)
    response = log_in(client)
    assert response.json["expires_at"] == "2027-03-01T09:00:00+00:00"
    token = response.json["token"]
    for _ in range(2):
        clock.advance(minutes=20)
        assert works(client, token)
    clock.advance(minutes=20)
    assert not works(client, token)


def test_a_session_limits_plugin_cannot_loosen_the_defaults(app, client, people, business, clock):
    enable(app, business.tenant_id, clock, "short-sessions", idle=120, absolute=48 * 60)
    response = log_in(client)
    assert response.json["expires_at"] == "2027-03-01T20:00:00+00:00"
    clock.advance(minutes=31)
    assert not works(client, response.json["token"])


def test_session_limits_apply_to_their_tenant_only(app, client, people, business, clock):
    with app.app_context():
        from bookwell.core.booking.tenants import create_tenant

        with db.write_transaction(app) as session:
            spa = create_tenant(session, "spa", name="Spa", timezone="UTC", now=clock()).id
    enable(app, spa, clock, "short-sessions", idle=5)
    token = token_of(client)
    clock.advance(minutes=10)
    assert works(client, token)


# --- a password change --------------------------------------------------------------------------


def test_a_password_change_ends_the_other_sessions_but_not_the_current_one(client, people):
    current, other, another = token_of(client), token_of(client), token_of(client)
    colleague = token_of(client, "desk@example.com")
    response = client.post(
        CHANGE_PASSWORD,
        json={"current_password": PASSWORD, "new_password": "a brand new password"},
        headers=bearer(current),
    )
    assert response.status_code == 200
    assert response.json == {"status": "changed", "other_sessions_ended": 2, "api_keys_revoked": 0}
    assert works(client, current)
    assert not works(client, other)
    assert not works(client, another)
    assert works(client, colleague)  # another user's sessions are theirs
    assert log_in(client).status_code == 401
    assert log_in(client, password="a brand new password").status_code == 200


def test_a_password_change_needs_the_current_password(client, people):
    current, other = token_of(client), token_of(client)
    response = client.post(
        CHANGE_PASSWORD,
        json={"current_password": "not the password", "new_password": "a brand new password"},
        headers=bearer(current),
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "invalid_credentials"
    assert works(client, other)
    assert log_in(client).status_code == 200


def test_a_password_change_follows_the_password_rules(client, people):
    current, other = token_of(client), token_of(client)
    response = client.post(
        CHANGE_PASSWORD,
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(current),
    )
    assert response.status_code == 422
    assert response.json["error"]["fields"]["new_password"] == ["Use at least 8 characters."]
    assert works(client, other)
    assert log_in(client).status_code == 200


def test_a_password_change_is_audited_without_the_password(app, client, people):
    current = token_of(client)
    client.post(
        CHANGE_PASSWORD,
        json={"current_password": PASSWORD, "new_password": "a brand new password"},
        headers=bearer(current),
    )
    with db.engine_of(app).connect() as connection:
        entries = connection.execute(
            select(AuditEntry.action, AuditEntry.details).where(
                AuditEntry.action == "user.password_changed"
            )
        ).all()
    assert len(entries) == 1
    assert "brand new" not in entries[0].details and PASSWORD not in entries[0].details


def api_keys(app, clock, user_id: int, count: int) -> list[str]:
    with db.write_transaction(app) as writer:
        user = writer.get(User, user_id)
        return [sessions.create_api_key(writer, user, clock())[1] for _ in range(count)]


def test_a_password_change_revokes_the_users_api_keys_and_says_how_many(app, client, people, clock):
    mine = api_keys(app, clock, people["owner@example.com"], 2)
    colleagues = api_keys(app, clock, people["desk@example.com"], 1)
    assert all(works(client, key) for key in mine + colleagues)
    current = token_of(client)
    response = client.post(
        CHANGE_PASSWORD,
        json={"current_password": PASSWORD, "new_password": "a brand new password"},
        headers=bearer(current),
    )
    assert response.status_code == 200
    assert response.json == {"status": "changed", "other_sessions_ended": 0, "api_keys_revoked": 2}
    assert not any(works(client, key) for key in mine)
    assert works(client, colleagues[0])  # another user's keys are theirs
    assert works(client, current)
    with db.engine_of(app).connect() as connection:
        revoked = connection.execute(
            select(AuditEntry.subject, AuditEntry.details).where(
                AuditEntry.action == "api_key.revoked"
            )
        ).all()
        changed = connection.scalar(
            select(AuditEntry.details).where(AuditEntry.action == "user.password_changed")
        )
    assert sorted(row.subject for row in revoked) == sorted(f"api_key:{key[:12]}" for key in mine)
    assert [json.loads(row.details)["reason"] for row in revoked] == ["password_changed"] * 2
    assert json.loads(changed)["api_access_revoked"] == 2


def test_a_password_changed_with_an_api_key_revokes_that_key_too(app, client, people, clock):
    (key,) = api_keys(app, clock, people["owner@example.com"], 1)
    response = client.post(
        CHANGE_PASSWORD,
        json={"current_password": PASSWORD, "new_password": "a brand new password"},
        headers=bearer(key),
    )
    assert response.status_code == 200
    assert response.json["api_keys_revoked"] == 1
    assert not works(client, key)


def test_a_refused_password_change_revokes_no_key(app, client, people, clock):
    (key,) = api_keys(app, clock, people["owner@example.com"], 1)
    for new_password in ("short", None):
        response = client.post(
            CHANGE_PASSWORD,
            json={
                "current_password": "not the password" if new_password is None else PASSWORD,
                "new_password": new_password or "a brand new password",
            },
            headers=bearer(token_of(client)),
        )
        assert response.status_code in (403, 422)
    assert works(client, key)


@pytest.mark.parametrize(
    ("keys", "line"), [(2, "2 API keys were revoked."), (1, "1 API key was revoked."), (0, None)]
)
def test_a_clients_password_reset_revokes_their_api_keys_and_the_page_says_so(
    app, client, business, clock, keys, line
):
    """One rule for every password change: a reset through the client's link too."""
    with db.write_transaction(app) as writer:
        writer.get(Tenant, business.tenant_id).client_accounts = True
    with app.app_context():
        ann = users.create_user(
            app,
            tenant_id=business.tenant_id,
            email="ann@example.com",
            role="client",
            password=PASSWORD,
            now=clock(),
        )
    made = api_keys(app, clock, ann.id, keys)
    with db.write_transaction(app) as writer:
        secret = client_accounts.issue(
            writer, writer.get(User, ann.id), client_accounts.RESET_PASSWORD, clock()
        )
    path = f"/book/salon/account/reset/{secret}"
    form = client.get(path)
    assert form.status_code == 200
    done = client.post(
        path,
        data={
            "csrf_token": csrf_token_of(form),
            "password": "a brand new password",
            "confirm": "a brand new password",
        },
    )
    assert done.status_code == 200 and "Password changed" in done.text
    if line:
        assert line in done.text
    else:
        assert "API key" not in done.text
    assert not any(works(client, key) for key in made)


# --- a user's own sessions ----------------------------------------------------------------------


def test_a_user_lists_their_own_active_sessions(client, people):
    first = token_of(client)
    ended = token_of(client)
    current = log_in(client, headers={"User-Agent": "pytest-agent"}).json["token"]
    token_of(client, "desk@example.com")
    client.post(LOGOUT, headers=bearer(ended))

    listed = client.get(SESSIONS, headers=bearer(current))
    assert listed.status_code == 200
    sessions = listed.json
    assert len(sessions) == 2
    assert [session["current"] for session in sessions].count(True) == 1
    mine = next(session for session in sessions if session["current"])
    assert mine["user_agent"] == "pytest-agent"
    assert mine["expires_at"] == "2027-03-01T20:00:00+00:00"
    assert {"id", "kind", "created_at", "last_seen_at", "expires_at", "ip"} <= set(mine)
    ids = {session["id"] for session in client.get(SESSIONS, headers=bearer(first)).json}
    assert ids == {session["id"] for session in sessions}


def test_sessions_past_their_timeout_are_not_listed(client, people, clock):
    token_of(client)
    clock.advance(minutes=20)
    current = token_of(client)
    clock.advance(minutes=15)  # the first is 35 minutes idle, the second 15
    listed = client.get(SESSIONS, headers=bearer(current)).json
    assert [session["current"] for session in listed] == [True]


def test_a_user_ends_one_of_their_sessions(client, people):
    current, other = token_of(client), token_of(client)
    other_id = next(
        session["id"]
        for session in client.get(SESSIONS, headers=bearer(other)).json
        if session["current"]
    )
    response = client.post(f"{SESSIONS}/{other_id}/revoke", headers=bearer(current))
    assert response.status_code == 200
    assert not works(client, other)
    assert works(client, current)
    listed = client.get(SESSIONS, headers=bearer(current)).json
    assert other_id not in {session["id"] for session in listed}
    assert client.post(f"{SESSIONS}/{other_id}/revoke", headers=bearer(current)).status_code == 404


def test_a_user_cannot_end_another_users_session(client, people):
    mine = token_of(client)
    theirs = token_of(client, "desk@example.com")
    their_id = client.get(SESSIONS, headers=bearer(theirs)).json[0]["id"]
    response = client.post(f"{SESSIONS}/{their_id}/revoke", headers=bearer(mine))
    assert response.status_code == 404
    assert works(client, theirs)
    assert client.post(f"{SESSIONS}/999999/revoke", headers=bearer(mine)).status_code == 404


def browser_session(app, clock, user_id) -> tuple[int, str]:
    """A session as the login pages start one (kind "browser"): its id and its cookie secret."""
    with db.write_transaction(app) as writer:
        row, secret = sessions.start(
            writer,
            writer.get(User, user_id),
            kind="browser",
            limits=sessions.Limits(30, 12 * 60),
            now=clock(),
            ip=None,
            user_agent="a browser",
        )
        return row.id, secret


def test_a_password_change_through_the_api_ends_the_users_browser_sessions_too(
    app, client, people, clock
):
    browser_id, _ = browser_session(app, clock, people["owner@example.com"])
    current = token_of(client)
    listed = {session["id"] for session in client.get(SESSIONS, headers=bearer(current)).json}
    assert browser_id in listed
    client.post(
        CHANGE_PASSWORD,
        json={"current_password": PASSWORD, "new_password": "a brand new password"},
        headers=bearer(current),
    )
    with db.engine_of(app).connect() as connection:
        revoked_at = connection.scalar(
            select(AuthSession.revoked_at).where(AuthSession.id == browser_id)
        )
    assert revoked_at is not None


def test_a_user_ends_their_browser_session_through_the_api(app, client, people, clock):
    browser_id, _ = browser_session(app, clock, people["owner@example.com"])
    current = token_of(client)
    assert (
        client.post(f"{SESSIONS}/{browser_id}/revoke", headers=bearer(current)).status_code == 200
    )
    listed = {session["id"] for session in client.get(SESSIONS, headers=bearer(current)).json}
    assert browser_id not in listed


# --- Authorization: Bearer only -----------------------------------------------------------------


def test_no_token_is_a_401(client, people):
    assert client.get(SESSIONS).status_code == 401
    assert client.get(STAFF_BOOKINGS).status_code == 401


def test_a_token_in_a_cookie_authenticates_nothing(client, people):
    token = token_of(client)
    for name in ("bookwell_session", "session", "token", "Authorization"):
        client.set_cookie(name, token)
    assert client.get(SESSIONS).status_code == 401
    assert client.get(STAFF_BOOKINGS).status_code == 401


def test_a_token_in_the_query_string_authenticates_nothing(client, people):
    token = token_of(client)
    for name in ("token", "access_token", "bearer", "api_key"):
        assert client.get(f"{SESSIONS}?{name}={token}").status_code == 401
        assert client.get(f"{STAFF_BOOKINGS}&{name}={token}").status_code == 401


def test_a_browser_session_secret_is_not_an_api_token(app, client, people, clock):
    _, secret = browser_session(app, clock, people["owner@example.com"])
    assert client.get(SESSIONS, headers=bearer(secret)).status_code == 401
    assert client.get(STAFF_BOOKINGS, headers=bearer(secret)).status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "Basic b3duZXJAZXhhbXBsZS5jb206Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==",
        "Bearer",
        "Bearer ",
        "Token {token}",
        "{token}",
        "Bearer {token}x",
        "Bearer bws_not-a-real-token",
    ],
)
def test_anything_but_a_valid_bearer_token_is_a_401(client, people, header):
    token = token_of(client)
    headers = {"Authorization": header.format(token=token)}
    assert client.get(SESSIONS, headers=headers).status_code == 401
    assert client.get(STAFF_BOOKINGS, headers=headers).status_code == 401
    assert works(client, token)


def test_the_bearer_scheme_is_case_insensitive(client, people):
    token = token_of(client)
    assert client.get(SESSIONS, headers={"Authorization": f"bearer {token}"}).status_code == 200


# --- API keys from the CLI ----------------------------------------------------------------------


def create_key(run, *arguments) -> str:
    result = run("tokens", "create", *arguments)
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key and "\n" not in key
    return key


def test_tokens_create_prints_an_api_key_that_is_stored_only_hashed(app, client, people, run):
    key = create_key(run, "--tenant", "salon", "--email", "Owner@Example.com")
    with db.engine_of(app).connect() as connection:
        rows = [tuple(row) for row in connection.execute(select(ApiKey)).all()]
    assert len(rows) == 1
    assert not any(key in str(value) for value in rows[0])
    assert client.get(STAFF_BOOKINGS, headers=bearer(key)).status_code == 200


def test_an_api_key_is_revoked_by_its_prefix(client, people, run):
    key = create_key(run, "--tenant", "salon", "--email", "owner@example.com")
    kept = create_key(run, "--tenant", "salon", "--email", "owner@example.com")
    result = run("tokens", "revoke", key[:12])
    assert result.exit_code == 0, result.output
    assert client.get(STAFF_BOOKINGS, headers=bearer(key)).status_code == 401
    assert client.get(STAFF_BOOKINGS, headers=bearer(kept)).status_code == 200
    assert run("tokens", "revoke", key[:12]).exit_code != 0  # already revoked


def test_an_api_key_is_revoked_whole(client, people, run):
    key = create_key(run, "--tenant", "salon", "--email", "owner@example.com")
    assert run("tokens", "revoke", key).exit_code == 0
    assert client.get(STAFF_BOOKINGS, headers=bearer(key)).status_code == 401


def test_tokens_create_support_makes_a_key_for_a_support_user(app, client, people, run, clock):
    with app.app_context():
        users.create_user(
            app,
            tenant_id=None,
            email="help@bookwell.example",
            role="support",
            password=PASSWORD,
            now=clock(),
        )
    key = create_key(run, "--support", "--email", "help@bookwell.example")
    assert client.get(STAFF_BOOKINGS, headers=bearer(key)).status_code == 200
    with db.engine_of(app).connect() as connection:
        actions = connection.scalars(select(AuditEntry.action)).all()
    assert "support.access" in actions


@pytest.mark.parametrize(
    "arguments",
    [
        ["--tenant", "salon", "--email", "nobody@example.com"],
        ["--support", "--email", "owner@example.com"],
        ["--tenant", "nowhere", "--email", "owner@example.com"],
        ["--email", "owner@example.com"],
        ["--tenant", "salon", "--support", "--email", "owner@example.com"],
    ],
)
def test_tokens_create_refuses_an_unknown_user_or_place(app, people, run, arguments):
    result = run("tokens", "create", *arguments)
    assert result.exit_code != 0
    with db.engine_of(app).connect() as connection:
        assert connection.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_an_api_key_lists_sessions_but_cannot_log_out(client, people, run):
    key = create_key(run, "--tenant", "salon", "--email", "owner@example.com")
    session_token = token_of(client)
    assert client.get(SESSIONS, headers=bearer(key)).status_code == 200
    response = client.post(LOGOUT, headers=bearer(key))
    assert response.status_code == 400
    assert client.get(STAFF_BOOKINGS, headers=bearer(key)).status_code == 200
    assert works(client, session_token)


def test_a_tokens_revoke_of_an_unknown_key_fails(people, run):
    assert run("tokens", "revoke", "bwk_nothing1").exit_code != 0
    assert run("tokens", "revoke", "bwk_" + "x" * 40).exit_code != 0


def test_a_stricter_session_limit_enabled_later_ends_existing_sessions(make_app, business, clock):
    from bookwell.core.access.users import create_user
    from bookwell.core.pluginhost import changes as plugin_changes
    from bookwell.hooks import Manifest, SessionLimits, hookimpl

    class QuickLogoff:
        MANIFEST = Manifest("quick-logoff", "Quick logoff", "5 idle minutes.", "1", "test", "t")

        @hookimpl
        def session_limits(ctx):
            return SessionLimits(idle_minutes=5)

    app = make_app(EXTRA_PLUGINS=[QuickLogoff])
    with app.app_context():
        create_user(
            app,
            tenant_id=business.tenant_id,
            email="o@example.com",
            role="owner",
            password="correct horse battery",
            now=clock(),
        )
    client = app.test_client()
    token = client.post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "o@example.com", "password": "correct horse battery"},
    ).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "quick-logoff", {}, clock())
    clock.advance(minutes=4)
    assert client.get("/api/v1/auth/sessions", headers=bearer).status_code == 200
    clock.advance(minutes=6)
    assert client.get("/api/v1/auth/sessions", headers=bearer).status_code == 401
