"""Logins a guard lets through with a restricted scope (``Refusal.grant_scope``): the API's answer,
the token that opens only the routes marked with its scope (core's password change for
``password_change``, a plugin's views through ``require_api_user(slug, scope=...)``) and answers
403 with the refusal's code everywhere else, the password change that lifts ``password_change``,
the pages that never start such a session, and ``require_api_user`` itself."""

from __future__ import annotations

import json

import pytest
from conftest import STAFF_PASSWORD, add_staff_and_a_rival, csrf_token_of
from flask import Blueprint, jsonify
from flask_login import current_user
from sqlalchemy import select

from bookwell.core.access import sessions
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, AuthSession, User
from bookwell.core.web import session_cookies
from bookwell.hooks import Manifest, Refusal, hookimpl
from bookwell.hooks.pages import plugin_context, require_api_user

NEW_PASSWORD = "a brand new passphrase"


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


class Enrolment:
    """Lets an account without an authenticator in only to enrol one, through its own view."""

    MANIFEST = manifest("enrolment")
    enrolled: set = set()

    @hookimpl
    def before_login(ctx):
        if ctx.login.user_id in Enrolment.enrolled:
            return None
        return Refusal(
            "Set up your authenticator app before you continue.",
            code="otp_enrollment_required",
            grant_scope="enroll_totp",
            details={"enrol_at": f"/api/v1/tenants/{ctx.tenant.slug}/enrolment/"},
        )

    @hookimpl
    def routes():
        api = Blueprint("enrolment_api", __name__)

        @api.post("/api/v1/tenants/<slug>/enrolment/")
        def enrol(slug):
            caller = require_api_user(slug, scope="enroll_totp")
            Enrolment.enrolled.add(caller.user.id)
            actor = plugin_context(slug).actor
            return jsonify(
                actor=actor.email if actor else None,
                email=caller.user.email,
                role=caller.user.role,
                tenant=caller.tenant.slug,
                scope=caller.scope,
            )

        @api.get("/api/v1/tenants/<slug>/enrolment/status")
        def status(slug):
            caller = require_api_user(slug)
            return jsonify(enrolled=caller.user.id in Enrolment.enrolled, scope=caller.scope)

        @api.get("/api/v1/tenants/<slug>/enrolment/whoami")
        def whoami(slug):
            # A view that forgot require_api_user: a restricted caller is nobody to it.
            return jsonify(signed_in=current_user.is_authenticated)

        @api.get("/book/<slug>/enrolment/")
        def page(slug):
            require_api_user(slug)
            return "a bearer is never read outside /api/"

        return api


class PasswordPolicy:
    """Makes the accounts in ``must_change`` change their password before anything else."""

    MANIFEST = manifest("password-policy")
    must_change: set = set()

    @hookimpl
    def before_login(ctx):
        if ctx.login.user_id not in PasswordPolicy.must_change:
            return None
        return Refusal(
            "Your business tightened its password rules: choose a new password.",
            code="password_change_required",
            grant_scope="password_change",
        )

    @hookimpl
    def before_password_set(ctx):
        if ctx.login is None:  # a new password, not the check of the old one at a login
            PasswordPolicy.must_change.discard(ctx.actor.id)


class OneTimeCode:
    MANIFEST = manifest("one-time-code")

    @hookimpl
    def before_login(ctx):
        if ctx.login.answers.get("otp") == "123456":
            return None
        return Refusal(
            "Enter the code.", code="otp_required", challenge={"field": "otp", "label": "Code"}
        )


class PlainNo:
    MANIFEST = manifest("plain-no")

    @hookimpl
    def before_login(ctx):
        return Refusal("Not today.", code="not_today")


class SloppyScope:
    """Grants scopes core cannot store: not lowercase words, or too long with the code."""

    MANIFEST = manifest("sloppy-scope")
    scope = "Enroll TOTP!"

    @hookimpl
    def before_login(ctx):
        return Refusal("Sloppy.", code="sloppy", grant_scope=SloppyScope.scope)


# The last registered runs first: the password policy's refusal comes before the enrolment's.
PLUGINS = [SloppyScope, PlainNo, OneTimeCode, Enrolment, PasswordPolicy]


@pytest.fixture(autouse=True)
def fresh_plugins():
    Enrolment.enrolled.clear()
    PasswordPolicy.must_change.clear()


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=PLUGINS)


@pytest.fixture
def staff(app, business, clock):
    """owner@ and receptionist@ of salon; spa@, the owner of a second business."""
    add_staff_and_a_rival(app, business, clock(), ["owner", "receptionist"])
    with db.fresh_session(app) as session:
        return {
            row.email: row.id
            for row in session.scalars(select(User).where(User.email.like("%@example.com")))
        }


@pytest.fixture
def enable(app, business, clock):
    def switch_on(name, tenant_id=None):
        with app.app_context():
            plugin_changes.enable(app, tenant_id or business.tenant_id, name, {}, clock())

    return switch_on


def log_in(client, email="owner@example.com", password=STAFF_PASSWORD, slug="salon", **extra):
    return client.post(
        f"/api/v1/tenants/{slug}/auth/login", json={"email": email, "password": password, **extra}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored_scope(app, token: str) -> str | None:
    with db.fresh_session(app) as session:
        return session.scalars(
            select(AuthSession.scope).where(AuthSession.secret_hash == sessions.digest(token))
        ).one()


def bookings_today(client, token):
    return client.get(
        "/api/v1/tenants/salon/bookings?from=2027-03-01&to=2027-03-01", headers=bearer(token)
    )


def change_password(client, token, current=STAFF_PASSWORD, new=NEW_PASSWORD):
    return client.post(
        "/api/v1/auth/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(token),
    )


# --- the restricted login -----------------------------------------------------------------------


def test_a_restricted_login_answers_its_token_its_scope_and_why(app, business, staff, enable):
    enable("enrolment")
    response = log_in(app.test_client())
    assert response.status_code == 200
    body = response.json
    assert body["scope"] == "enroll_totp"
    assert body["code"] == "otp_enrollment_required"
    assert body["message"] == "Set up your authenticator app before you continue."
    assert body["details"] == {"enrol_at": "/api/v1/tenants/salon/enrolment/"}
    assert body["role"] == "owner"
    assert body["expires_at"] == "2027-03-01T20:00:00+00:00"
    assert [refusal["code"] for refusal in body["refusals"]] == ["otp_enrollment_required"]
    # The code is stored with the session, for every 403 the token will get.
    assert stored_scope(app, body["token"]) == "enroll_totp:otp_enrollment_required"
    with db.fresh_session(app) as session:
        details = session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == "login.succeeded")
        ).one()
    assert json.loads(details)["scope"] == "enroll_totp"
    # Kept in the clear: a refusal's code is no secret, whatever its key looks like.
    assert json.loads(details)["restricted_by"] == "otp_enrollment_required"


def test_a_restricted_token_gets_403_with_its_code_everywhere_else(app, business, staff, enable):
    enable("enrolment")
    client = app.test_client()
    token = log_in(client).json["token"]
    refused = [
        bookings_today(client, token),  # core's staff API
        client.get("/api/v1/auth/sessions", headers=bearer(token)),
        change_password(client, token),  # open to password_change only
        client.get("/api/v1/tenants/salon/services", headers=bearer(token)),  # even public ones
        client.get("/api/v1/tenants/salon/enrolment/status", headers=bearer(token)),  # unmarked
    ]
    for response in refused:
        assert response.status_code == 403, response.request.path
        assert response.json["error"]["code"] == "otp_enrollment_required"
    # To a plugin view that did not ask require_api_user, a restricted caller is nobody.
    whoami = client.get("/api/v1/tenants/salon/enrolment/whoami", headers=bearer(token))
    assert whoami.json == {"signed_in": False}
    # Pages never read a bearer: the staff pages still want a login.
    page = client.get("/admin/salon/", headers=bearer(token))
    assert page.status_code == 302 and page.location.endswith("/admin/salon/login")
    # Nothing was changed by the refused password change.
    assert log_in(client, password=NEW_PASSWORD).status_code == 401


def test_the_view_marked_with_its_scope_opens_and_lifts_the_restriction(
    app, business, staff, enable
):
    enable("enrolment")
    client = app.test_client()
    token = log_in(client).json["token"]
    enrolled = client.post("/api/v1/tenants/salon/enrolment/", headers=bearer(token))
    assert enrolled.status_code == 200
    assert enrolled.json == {
        # plugin_context's actor is the caller require_api_user let through, restricted or not.
        "actor": "owner@example.com",
        "email": "owner@example.com",
        "role": "owner",
        "tenant": "salon",
        "scope": "enroll_totp",
    }
    # The plugin's restriction ends at the next login, which its guard now lets through.
    full = log_in(client).json
    assert full["scope"] == "tenant:salon" and "code" not in full
    assert stored_scope(app, full["token"]) is None
    assert bookings_today(client, full["token"]).status_code == 200
    # A full token passes both the marked and the unmarked views.
    status = client.get("/api/v1/tenants/salon/enrolment/status", headers=bearer(full["token"]))
    assert status.json == {"enrolled": True, "scope": None}
    again = client.post("/api/v1/tenants/salon/enrolment/", headers=bearer(full["token"]))
    assert again.status_code == 200 and again.json["scope"] is None


def test_a_restricted_token_may_log_out(app, business, staff, enable):
    enable("enrolment")
    client = app.test_client()
    token = log_in(client).json["token"]
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 200
    ended = client.post("/api/v1/tenants/salon/enrolment/", headers=bearer(token))
    assert ended.status_code == 401


# --- password_change ----------------------------------------------------------------------------


def test_changing_the_password_makes_the_same_token_full(app, business, staff, enable):
    enable("password-policy")
    PasswordPolicy.must_change.add(staff["owner@example.com"])
    client = app.test_client()
    other = log_in(client, email="owner@example.com").json["token"]
    login = log_in(client).json
    assert (login["scope"], login["code"]) == ("password_change", "password_change_required")
    token = login["token"]
    assert bookings_today(client, token).json["error"]["code"] == "password_change_required"

    wrong = change_password(client, token, current="not the password")
    assert wrong.status_code == 403 and wrong.json["error"]["code"] == "invalid_credentials"
    changed = change_password(client, token)
    assert changed.status_code == 200
    assert changed.json == {
        "status": "changed",
        "other_sessions_ended": 1,
        "api_keys_revoked": 0,
        "session": "full",
        "scope": "tenant:salon",
    }
    assert stored_scope(app, token) is None
    assert bookings_today(client, token).status_code == 200
    assert bookings_today(client, other).status_code == 401  # ended with the old password
    assert log_in(client, password=NEW_PASSWORD).json["scope"] == "tenant:salon"


def test_after_the_password_change_the_next_restriction_takes_its_turn(
    app, business, staff, enable
):
    enable("password-policy")
    enable("enrolment")
    PasswordPolicy.must_change.add(staff["owner@example.com"])
    client = app.test_client()
    login = log_in(client).json
    # Both guards restrict: the first one's scope is the token's, both are listed.
    assert login["scope"] == "password_change"
    assert [refusal["code"] for refusal in login["refusals"]] == [
        "password_change_required",
        "otp_enrollment_required",
    ]
    token = login["token"]
    changed = change_password(client, token).json
    assert (changed["session"], changed["scope"], changed["code"]) == (
        "restricted",
        "enroll_totp",
        "otp_enrollment_required",
    )
    assert stored_scope(app, token) == "enroll_totp:otp_enrollment_required"
    assert bookings_today(client, token).json["error"]["code"] == "otp_enrollment_required"
    assert change_password(client, token, NEW_PASSWORD, "yet another passphrase").status_code == (
        403
    )
    assert client.post("/api/v1/tenants/salon/enrolment/", headers=bearer(token)).status_code == 200
    assert log_in(client, password=NEW_PASSWORD).json["scope"] == "tenant:salon"


def test_a_guard_that_asks_for_more_after_the_change_ends_the_token(app, business, staff, enable):
    enable("password-policy")
    PasswordPolicy.must_change.add(staff["owner@example.com"])
    client = app.test_client()
    token = log_in(client).json["token"]
    enable("one-time-code")
    changed = change_password(client, token)
    assert changed.status_code == 200
    assert changed.json["status"] == "changed"
    assert (changed.json["session"], changed.json["code"]) == ("ended", "otp_required")
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 401
    # The new password stands; the login asks for the code, as any login would.
    assert log_in(client, password=NEW_PASSWORD).json["error"]["code"] == "otp_required"
    assert log_in(client, password=NEW_PASSWORD, otp="123456").json["scope"] == "tenant:salon"


# --- when there is no grant ---------------------------------------------------------------------


def test_a_refusal_without_a_grant_refuses_the_login(app, business, staff, enable):
    enable("enrolment")
    enable("plain-no")
    response = log_in(app.test_client())
    assert response.status_code == 401
    assert "token" not in response.json
    assert {refusal["code"] for refusal in response.json["error"]["refusals"]} == {
        "not_today",
        "otp_enrollment_required",
    }


def test_a_grant_beside_a_challenge_is_the_challenge(app, business, staff, enable):
    enable("enrolment")
    enable("one-time-code")
    response = log_in(app.test_client())
    assert response.status_code == 401
    assert response.json["error"]["challenge"] == {"field": "otp", "label": "Code"}


@pytest.mark.parametrize(
    "scope", ["Enroll TOTP!", "enroll_a_very_long_scope_name_indeed_x"], ids=["words", "length"]
)
def test_a_scope_core_cannot_store_refuses_the_login(
    app, business, staff, enable, scope, monkeypatch
):
    monkeypatch.setattr(SloppyScope, "scope", scope)
    enable("sloppy-scope")
    response = log_in(app.test_client())
    assert response.status_code == 401
    assert response.json["error"]["code"] == "sloppy"
    with db.fresh_session(app) as session:
        assert session.scalars(select(AuthSession.id)).all() == []


# --- the pages ----------------------------------------------------------------------------------


def test_the_pages_start_no_restricted_session_and_say_why(app, business, staff, enable):
    enable("enrolment")
    client = app.test_client()
    page = client.get("/admin/salon/login")
    response = client.post(
        "/admin/salon/login",
        data={
            "csrf_token": csrf_token_of(page),
            "email": "owner@example.com",
            "password": STAFF_PASSWORD,
        },
    )
    assert response.status_code == 403
    assert "Set up your authenticator app before you continue." in response.text
    assert session_cookies.COOKIE not in response.headers.get("Set-Cookie", "")
    assert client.get("/admin/salon/").status_code == 302
    with db.fresh_session(app) as session:
        assert session.scalars(select(AuthSession.id)).all() == []


def test_a_restricted_browser_session_is_nobody_on_the_pages(app, business, staff, clock):
    with db.write_transaction(app) as writer:
        owner = writer.get(User, staff["owner@example.com"])
        _, secret = sessions.start(
            writer,
            owner,
            kind="browser",
            limits=sessions.Limits(30, 60),
            now=clock(),
            ip=None,
            user_agent=None,
            scope="enroll_totp:otp_enrollment_required",
        )
    client = app.test_client()
    client.set_cookie(session_cookies.COOKIE, secret)
    for path in ("/admin/salon/", "/admin/salon/sessions"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.location.endswith("/admin/salon/login")


# --- require_api_user ---------------------------------------------------------------------------


def test_require_api_user_wants_a_bearer_of_this_business(app, business, staff, enable, clock):
    enable("enrolment")
    spa_id = None
    with db.fresh_session(app) as session:
        spa_id = session.scalars(
            select(User.tenant_id).where(User.email == "spa@example.com")
        ).one()
    enable("enrolment", tenant_id=spa_id)
    Enrolment.enrolled.update(staff.values())
    client = app.test_client()
    status = "/api/v1/tenants/salon/enrolment/status"

    nobody = client.get(status)
    assert nobody.status_code == 401
    assert nobody.headers["WWW-Authenticate"] == 'Bearer realm="bookwell"'
    assert client.get(status, headers=bearer("bws_not-a-real-token")).status_code == 401

    rival = log_in(client, email="spa@example.com", slug="spa").json["token"]
    elsewhere = client.get(status, headers=bearer(rival))
    assert elsewhere.status_code == 404
    assert elsewhere.json["error"]["code"] == "not_found"
    at_home = client.get("/api/v1/tenants/spa/enrolment/status", headers=bearer(rival))
    assert at_home.status_code == 200

    receptionist = log_in(client, email="receptionist@example.com").json["token"]
    assert client.get(status, headers=bearer(receptionist)).json == {
        "enrolled": True,
        "scope": None,
    }
    with db.write_transaction(app) as writer:
        _, key = sessions.create_api_key(
            writer, writer.get(User, staff["owner@example.com"]), clock()
        )
    assert client.get(status, headers=bearer(key)).status_code == 200
    # Outside /api/ no bearer is read (a cookie would be, without CSRF protection).
    assert client.get("/book/salon/enrolment/", headers=bearer(key)).status_code == 401


def test_a_restricted_token_expires_like_any_other(app, business, staff, enable, clock):
    enable("enrolment")
    client = app.test_client()
    token = log_in(client).json["token"]
    clock.advance(minutes=31)
    response = client.post("/api/v1/tenants/salon/enrolment/", headers=bearer(token))
    assert response.status_code == 401
