"""Restricted browser sessions: a login a guard lets through with ``grant_scope`` and
``continue_at`` starts a session on the pages that opens only its page (a plugin's view that
accepts its scope through ``require_staff``/``require_account`` with ``login_scope``), the
log-outs and the login pages; every other page answers 303 to ``continue_at``. Without
``continue_at`` the pages refuse the login with its message, as before.

And the password at login: once found right, it is held to the current ``before_password_set``
rules; one they refuse restricts the login to ``password_change`` (``password_change_required``)
on the API and on every login page (whose ``continue_at`` is the side's change-password page),
and a guard that crashes refuses the login."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import STAFF_PASSWORD, add_staff_and_a_rival
from flask import Blueprint, abort, request
from flask_login import current_user
from sqlalchemy import select

from bookwell.core.access.users import create_user
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuthSession, Tenant, User
from bookwell.core.web import session_cookies
from bookwell.hooks import Manifest, Refusal, hookimpl
from bookwell.hooks.pages import (
    csrf_form,
    plugin_context,
    render_staff_page,
    require_account,
    require_staff,
)

TEMPLATES = Path(__file__).parent / "plugin_pages"
NEW_PASSWORD = "a much longer passphrase than before"
SUPPORT = "help@bookwell.example"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


class Gate:
    """Lets an account in only to enrol, on the plugin's own page of its side."""

    MANIFEST = manifest("gate")
    passed: set = set()
    page: str | None = "mine"  # "mine", None (no continue_at) or a path of its own

    @hookimpl
    def before_login(ctx):
        if ctx.login.user_id in Gate.passed:
            return None
        side = "book" if ctx.login.role == "client" else "admin"
        continue_at = Gate.page
        if continue_at == "mine":
            continue_at = f"/{side}/{ctx.tenant.slug}/gate/enrol"
        return Refusal(
            "Set up your authenticator app before you continue.",
            code="otp_enrollment_required",
            grant_scope="enroll_totp",
            continue_at=continue_at,
        )

    @hookimpl
    def routes():
        pages = Blueprint("gate_pages", __name__, template_folder=str(TEMPLATES))

        @pages.route("/admin/<slug>/gate/enrol", methods=["GET", "POST"])
        def staff_enrol(slug):
            page = require_staff(slug, login_scope="enroll_totp")
            form = csrf_form()
            if request.method == "POST":
                if not form.validate_on_submit():
                    abort(400)
                Gate.passed.add(page.user.id)
            actor = plugin_context(slug).actor
            notes = [f"actor {actor.email}", f"current_user {current_user.email}"]
            return render_staff_page(page, "notes/admin.html", form=form, notes=notes)

        @pages.get("/admin/<slug>/gate/settings")
        def settings(slug):
            require_staff(slug, "plugins.manage", login_scope="enroll_totp")
            return "the owner's settings"

        @pages.get("/admin/<slug>/gate/report")
        def report(slug):
            require_staff(slug)  # no login_scope: a restricted session does not pass
            return "report"

        @pages.get("/book/<slug>/gate/enrol")
        def account_enrol(slug):
            page = require_account(slug, login_scope="enroll_totp")
            return f"enrol {page.user.email} ({page.user.role}) of {page.tenant.slug}"

        @pages.get("/book/<slug>/gate/mine")
        def mine(slug):
            page = require_account(slug)
            return f"mine {page.user.email}"

        @pages.get("/book/<slug>/gate/public")
        def public(slug):
            return "anyone may read this"

        return pages


class LongPasswords:
    """A password rule: at least 25 characters (the staff's is 21)."""

    MANIFEST = manifest("long-passwords")

    @hookimpl
    def before_password_set(ctx, password):
        if len(password) < 25:
            return Refusal("At least 25 characters.", code="password_too_short", field="password")
        return None


class BrokenRule:
    MANIFEST = manifest("broken-rule")

    @hookimpl
    def before_password_set(ctx, password):
        if ctx.login is not None:
            raise RuntimeError("the rule's list could not be read")
        return None


class OneTimeCode:
    MANIFEST = manifest("code")

    @hookimpl
    def before_login(ctx):
        if ctx.login.answers.get("otp") == "123456":
            return None
        return Refusal(
            "Enter the code.", code="otp_required", challenge={"field": "otp", "label": "Code"}
        )


PLUGINS = [Gate, LongPasswords, BrokenRule, OneTimeCode]
PASSWORD_PAGES = {
    "staff": "/admin/<slug>/password",
    "client": "/book/<slug>/account/password",
    "support": "/support/password",
}


# The change-password form, as a browser fills it in.
CHANGE = {"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}


@pytest.fixture(autouse=True)
def fresh_plugins():
    Gate.passed.clear()
    Gate.page = "mine"


def build(make_app, **settings):
    return make_app(EXTRA_PLUGINS=PLUGINS, WTF_CSRF_ENABLED=False, **settings)


@pytest.fixture
def app(make_app):
    return build(make_app)


@pytest.fixture
def people(app, business, clock):
    """owner@ and receptionist@ of salon, its verified client ann@, spa's owner spa@, and
    platform support; all with the staff's password."""
    add_staff_and_a_rival(app, business, clock(), ["owner", "receptionist"])
    with app.app_context():
        create_user(
            app,
            tenant_id=business.tenant_id,
            email="ann@example.com",
            role="client",
            password=STAFF_PASSWORD,
            now=clock(),
        )
        create_user(
            app, tenant_id=None, email=SUPPORT, role="support", password=STAFF_PASSWORD, now=clock()
        )
    with db.write_transaction(app) as writer:
        writer.get(Tenant, business.tenant_id).client_accounts = True
    with db.fresh_session(app) as session:
        return {row.email: row.id for row in session.scalars(select(User))}


@pytest.fixture
def enable(app, business, clock):
    def switch_on(name):
        with app.app_context():
            plugin_changes.enable(app, business.tenant_id, name, {}, clock())

    return switch_on


DOORS = {
    "staff": ("owner@example.com", "/admin/salon/login", "/admin/salon/"),
    "client": ("ann@example.com", "/book/salon/account/login", "/book/salon/account/"),
    "support": (SUPPORT, "/support/login", "/support/"),
}


def page_log_in(client, who="staff", password=STAFF_PASSWORD):
    email, url, _ = DOORS[who]
    return client.post(url, data={"email": email, "password": password})


def api_log_in(client, email="owner@example.com", password=STAFF_PASSWORD, **extra):
    return client.post(
        "/api/v1/tenants/salon/auth/login", json={"email": email, "password": password, **extra}
    )


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def live_scopes(app) -> list[str | None]:
    with db.fresh_session(app) as session:
        rows = session.scalars(
            select(AuthSession)
            .where(AuthSession.revoked_at.is_(None), AuthSession.kind == "browser")
            .order_by(AuthSession.id)
        ).all()
        return [row.scope for row in rows]


def assert_sent_to(response, path):
    assert response.status_code == 303, (response.request.path, response.status_code)
    assert response.location == path


# --- a plugin's restriction with continue_at ----------------------------------------------------


def test_a_staff_login_lands_on_continue_at_and_only_there(app, people, enable):
    enable("gate")
    client = app.test_client()
    landed = page_log_in(client)
    assert_sent_to(landed, "/admin/salon/gate/enrol")
    assert live_scopes(app) == ["enroll_totp:otp_enrollment_required"]

    page = client.get("/admin/salon/gate/enrol")
    assert page.status_code == 200
    # The person is current_user there, and plugin_context's actor; the message is shown and
    # the staff menu is not (every entry would only send them back here).
    assert "actor owner@example.com" in page.text
    assert "current_user owner@example.com" in page.text
    assert "Set up your authenticator app before you continue." in page.text
    assert 'aria-label="Staff pages"' not in page.text
    assert 'action="/admin/salon/logout"' in page.text

    for path in (
        "/admin/salon/",
        "/admin/salon/sessions",
        "/admin/salon/marketplace",
        "/admin/salon/gate/report",  # a plugin page whose require_staff has no login_scope
        "/book/salon/",
        "/book/salon/gate/public",  # a plugin's public page
        "/book/salon/account/",
        "/support/",
    ):
        assert_sent_to(client.get(path), "/admin/salon/gate/enrol")
    assert_sent_to(client.post("/admin/salon/services/new", data={}), "/admin/salon/gate/enrol")
    # Static files and the login page stay open; the API never reads the cookie.
    assert client.get("/static/bookwell.css").status_code == 200
    assert client.get("/admin/salon/login").status_code == 200
    assert client.get("/api/v1/auth/sessions").status_code == 401


def test_the_restricted_person_keeps_their_role_on_pages_that_accept_the_scope(app, people, enable):
    enable("gate")
    owner, receptionist = app.test_client(), app.test_client()
    page_log_in(owner)
    assert owner.get("/admin/salon/gate/settings").text == "the owner's settings"
    receptionist.post(
        "/admin/salon/login",
        data={"email": "receptionist@example.com", "password": STAFF_PASSWORD},
    )
    assert receptionist.get("/admin/salon/gate/settings").status_code == 403


def test_doing_what_the_scope_asks_and_logging_in_again_lifts_it(app, people, enable):
    enable("gate")
    client = app.test_client()
    page_log_in(client)
    assert client.post("/admin/salon/gate/enrol", data={}).status_code == 200
    # The next login, from the same browser: a full session, and the restricted one is over.
    again = page_log_in(client)
    assert again.status_code == 302 and again.location == "/admin/salon/"
    assert live_scopes(app) == [None]
    assert client.get("/admin/salon/").status_code == 200
    assert client.get("/admin/salon/gate/report").text == "report"
    # A full session passes require_staff whatever login_scope says.
    assert client.get("/admin/salon/gate/enrol").status_code == 200
    assert client.get("/admin/salon/gate/settings").status_code == 200


def test_a_restricted_session_may_log_out(app, people, enable):
    enable("gate")
    client = app.test_client()
    page_log_in(client)
    cookie = client.get_cookie(session_cookies.COOKIE).value
    out = client.post("/admin/salon/logout")
    assert out.status_code == 302 and out.location == "/admin/salon/login"
    assert live_scopes(app) == []
    replay = app.test_client()
    replay.set_cookie(session_cookies.COOKIE, cookie)
    assert replay.get("/admin/salon/gate/enrol").status_code == 302  # to the login page


def test_a_client_login_lands_on_its_own_page(app, people, enable):
    enable("gate")
    client = app.test_client()
    assert_sent_to(page_log_in(client, "client"), "/book/salon/gate/enrol")
    page = client.get("/book/salon/gate/enrol")
    assert page.text == "enrol ann@example.com (client) of salon"
    for path in ("/book/salon/account/", "/book/salon/gate/mine", "/admin/salon/", "/book/salon/"):
        assert_sent_to(client.get(path), "/book/salon/gate/enrol")
    assert client.post("/book/salon/account/logout").status_code == 302
    assert live_scopes(app) == []


def test_require_account_lets_in_any_account_of_the_business_and_nobody_else(app, people, enable):
    enable("gate")
    Gate.passed.update(people.values())
    staff, client, rival, nobody = (app.test_client() for _ in range(4))
    page_log_in(staff)
    page_log_in(client, "client")
    rival.post("/admin/spa/login", data={"email": "spa@example.com", "password": STAFF_PASSWORD})
    assert staff.get("/book/salon/gate/mine").text == "mine owner@example.com"
    assert client.get("/book/salon/gate/mine").text == "mine ann@example.com"
    # Full sessions pass whatever login_scope says.
    assert client.get("/book/salon/gate/enrol").status_code == 200
    assert rival.get("/book/salon/gate/mine").status_code == 404
    to_login = nobody.get("/book/salon/gate/mine")
    assert to_login.status_code == 302 and to_login.location == "/book/salon/account/login"


def test_without_continue_at_the_pages_refuse_with_the_message(app, people, enable):
    enable("gate")
    Gate.page = None
    client = app.test_client()
    response = page_log_in(client)
    assert response.status_code == 403
    assert "Set up your authenticator app before you continue." in response.text
    assert live_scopes(app) == []
    # The API still answers with a restricted token.
    assert api_log_in(client).json["scope"] == "enroll_totp"


@pytest.mark.parametrize(
    "elsewhere",
    ["https://evil.example/enrol", "//evil.example/enrol", "/admin/salon/no-such-page", "enrol"],
)
def test_a_continue_at_that_is_no_page_of_this_site_counts_as_none(app, people, enable, elsewhere):
    enable("gate")
    Gate.page = elsewhere
    response = page_log_in(app.test_client())
    assert response.status_code == 403
    assert live_scopes(app) == []


# --- the password at login ------------------------------------------------------------------------


def test_a_password_the_rules_refuse_gets_a_password_change_token(app, people, enable):
    enable("long-passwords")
    client = app.test_client()
    other = api_log_in(client, password=STAFF_PASSWORD)  # one more, to see it end
    body = api_log_in(client).json
    assert (body["scope"], body["code"]) == ("password_change", "password_change_required")
    assert "At least 25 characters." in body["message"]
    assert body["details"] == {"rules": ["At least 25 characters."]}
    assert [(item["plugin"], item["code"]) for item in body["refusals"]] == [
        ("long-passwords", "password_too_short")
    ]
    token = body["token"]
    bookings = client.get("/api/v1/tenants/salon/bookings", headers=bearer(token))
    assert bookings.status_code == 403
    assert bookings.json["error"]["code"] == "password_change_required"

    # The new password is held to the rules too; then the same token becomes full.
    short = client.post(
        "/api/v1/auth/password",
        json={"current_password": STAFF_PASSWORD, "new_password": "still too short"},
        headers=bearer(token),
    )
    assert short.status_code == 422
    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(token),
    )
    assert changed.status_code == 200
    assert (changed.json["session"], changed.json["scope"]) == ("full", "tenant:salon")
    assert changed.json["other_sessions_ended"] == 1
    assert client.get("/api/v1/auth/sessions", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/auth/sessions", headers=bearer(other.json["token"])).status_code == (
        401
    )
    assert api_log_in(client, password=NEW_PASSWORD).json["scope"] == "tenant:salon"


def test_the_password_comes_before_a_guards_restriction(app, people, enable):
    enable("long-passwords")
    enable("gate")
    client = app.test_client()
    body = api_log_in(client).json
    assert body["scope"] == "password_change"
    assert [item["code"] for item in body["refusals"]] == [
        "password_too_short",
        "otp_enrollment_required",
    ]
    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(body["token"]),
    ).json
    assert (changed["session"], changed["scope"]) == ("restricted", "enroll_totp")


def test_a_further_step_keeps_the_passwords_restriction(app, people, enable):
    enable("long-passwords")
    enable("code")
    client = app.test_client()
    assert api_log_in(client).json["error"]["code"] == "otp_required"
    assert api_log_in(client, otp="123456").json["scope"] == "password_change"

    first = page_log_in(client)
    assert first.status_code == 200 and "Code" in first.text
    step = client.post("/admin/salon/login/step", data={"answer": "123456", "field": "otp"})
    assert_sent_to(step, "/admin/salon/password")
    assert live_scopes(app) == ["password_change:password_change_required"]


@pytest.mark.parametrize("door", ["api", "staff", "client", "support"])
def test_a_rule_that_crashes_refuses_the_login(make_app, app, people, enable, door):
    enable("broken-rule")
    if door == "support":
        app = build(make_app, SUPPORT_PLUGINS={"broken-rule": {}})
    client = app.test_client()
    if door == "api":
        response = api_log_in(client)
        assert response.json["error"]["code"] == "plugin_failed"
    else:
        response = page_log_in(client, door)
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    with db.fresh_session(app) as session:
        assert session.scalars(select(AuthSession.id)).all() == []


@pytest.mark.parametrize("door", ["staff", "client", "support"])
def test_every_login_page_sends_an_outdated_password_to_its_change_page(
    make_app, app, people, enable, door
):
    enable("long-passwords")
    if door == "support":
        app = build(make_app, SUPPORT_PLUGINS={"long-passwords": {}})
    email, _, home = DOORS[door]
    change = {
        "staff": "/admin/salon/password",
        "client": "/book/salon/account/password",
        "support": "/support/password",
    }[door]
    client = app.test_client()
    assert_sent_to(page_log_in(client, door), change)
    page = client.get(change)
    assert page.status_code == 200 and 'name="current_password"' in page.text
    assert_sent_to(client.get(home), change)

    done = client.post(change, data=CHANGE)
    assert done.status_code == 302 and done.location == home
    assert live_scopes(app) == [None]
    assert client.get(home).status_code == 200
    # The next login with the new password is full at once.
    relogin = page_log_in(app.test_client(), door, password=NEW_PASSWORD)
    assert relogin.status_code == 302 and relogin.location == home


def test_after_the_password_page_the_next_restriction_takes_its_page(app, people, enable):
    enable("long-passwords")
    enable("gate")
    client = app.test_client()
    assert_sent_to(page_log_in(client), "/admin/salon/password")
    done = client.post("/admin/salon/password", data=CHANGE)
    assert_sent_to(done, "/admin/salon/gate/enrol")
    assert live_scopes(app) == ["enroll_totp:otp_enrollment_required"]
    assert_sent_to(client.get("/admin/salon/"), "/admin/salon/gate/enrol")
    assert_sent_to(client.get("/admin/salon/password"), "/admin/salon/gate/enrol")


@pytest.mark.parametrize("then", ["code", "gate without a page"])
def test_after_the_password_page_a_guard_that_wants_more_ends_the_session(
    app, people, enable, then
):
    enable("long-passwords")
    client = app.test_client()
    assert_sent_to(page_log_in(client), "/admin/salon/password")
    if then == "code":
        enable("code")
    else:
        Gate.page = None
        enable("gate")
    done = client.post("/admin/salon/password", data=CHANGE)
    assert done.status_code == 302 and done.location == "/admin/salon/login"
    assert live_scopes(app) == []
    to_login = client.get("/admin/salon/")
    assert to_login.status_code == 302 and to_login.location == "/admin/salon/login"
