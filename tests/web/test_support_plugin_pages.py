"""A plugin's pages for platform support: served under ``/support/<plugin>/`` only while the
operator lists the plugin in ``SUPPORT_PLUGINS``; ``require_support`` lets in the signed-in
support user (a session restricted to its ``login_scope`` too) and sends anyone else to the
support login; ``plugin_context(None)`` is the instance's context, in a view and in a command."""

from __future__ import annotations

import click
import pytest
from conftest import STAFF_PASSWORD, add_staff_and_a_rival
from flask import Blueprint, abort, request
from sqlalchemy import select

from bookwell.core.access.users import create_user
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, AuthSession
from bookwell.hooks import Manifest, Refusal, Setting, hookimpl
from bookwell.hooks.pages import csrf_form, plugin_context, plugin_settings, require_support

SUPPORT = "help@bookwell.example"
SCOPE = "enroll_totp"


class Desk:
    """Sends support logins to its own page until they pressed its button there."""

    MANIFEST = Manifest(
        "desk",
        "Desk",
        "Test plugin desk.",
        "1.0",
        "test",
        "tests",
        settings=(Setting(key="greeting", type="str", default="hello", label="Greeting"),),
    )
    gate_on = False

    @hookimpl
    def before_login(ctx):
        if not Desk.gate_on or ctx.tenant is not None or ctx.store.get("done"):
            return None
        return Refusal(
            "Press the button first.",
            code="otp_enrollment_required",
            grant_scope=SCOPE,
            continue_at="/support/desk/enrol",
        )

    @hookimpl
    def routes():
        pages = Blueprint("desk_pages", __name__)

        @pages.get("/support/desk/")
        def home():
            user = require_support()
            ctx = plugin_context(None)
            visits = ctx.store.increment("visits")
            ctx.audit("visited", f"user:{user.id}")
            greeting = plugin_settings(None)["greeting"]
            return f"{greeting} {user.email} ({user.role}); actor {ctx.actor.email}; " + (
                f"tenant {ctx.tenant}; data {ctx.data}; visits {visits}"
            )

        @pages.route("/support/desk/enrol", methods=["GET", "POST"])
        def enrol():
            user = require_support(login_scope=SCOPE)
            form = csrf_form()
            if request.method == "POST":
                if not form.validate_on_submit():
                    abort(400)
                plugin_context(None).store.set("done", True)
                return "done"
            return f"enrol {user.email}; actor {plugin_context(None).actor.email}"

        @pages.get("/support/elsewhere/desk")
        def elsewhere():
            return "a page of no business and outside the plugin's support pages"

        return pages

    @hookimpl
    def commands():
        @click.command("visits")
        def visits():
            ctx = plugin_context(None)
            click.echo(f"visits {ctx.store.get('visits')} tenant {ctx.tenant}")
            ctx.store.set("visits", 0)

        return [visits]


@pytest.fixture(autouse=True)
def gate_off():
    Desk.gate_on = False


@pytest.fixture
def bookwell_plugins():
    return [Desk]


@pytest.fixture
def bookwell_settings():
    return {"SUPPORT_PLUGINS": {"desk": {"greeting": "welcome"}}}


def build(make_app, support_plugins):
    return make_app(EXTRA_PLUGINS=[Desk], WTF_CSRF_ENABLED=False, SUPPORT_PLUGINS=support_plugins)


@pytest.fixture
def app(make_app):
    return build(make_app, {"desk": {"greeting": "welcome"}})


@pytest.fixture
def people(app, business, clock):
    add_staff_and_a_rival(app, business, clock(), ["owner"])
    with app.app_context():
        create_user(
            app, tenant_id=None, email=SUPPORT, role="support", password=STAFF_PASSWORD, now=clock()
        )


def support_browser(app):
    browser = app.test_client()
    answer = browser.post("/support/login", data={"email": SUPPORT, "password": STAFF_PASSWORD})
    return answer, browser


def test_the_signed_in_support_user_gets_the_instances_context(app, people):
    answer, browser = support_browser(app)
    assert answer.status_code == 302
    page = browser.get("/support/desk/")
    assert page.status_code == 200
    assert page.text == (
        f"welcome {SUPPORT} (support); actor {SUPPORT}; tenant None; data None; visits 1"
    )
    # The instance's store: the same counter for every support user and request.
    assert browser.get("/support/desk/").text.endswith("visits 2")
    with db.fresh_session(app) as session:
        visited = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "plugin.desk.visited")
        ).all()
    assert [entry.tenant_id for entry in visited] == [None, None]  # the platform's trail


def test_nobody_and_a_businesss_account_are_sent_to_the_support_login(app, people):
    assert app.test_client().get("/support/desk/").location == "/support/login"
    owner = app.test_client()
    owner.post(
        "/admin/salon/login", data={"email": "owner@example.com", "password": STAFF_PASSWORD}
    )
    assert owner.get("/admin/salon/").status_code == 200
    answer = owner.get("/support/desk/")
    assert answer.status_code == 302 and answer.location == "/support/login"


def test_not_listed_for_support_its_pages_do_not_exist(make_app, business, clock):
    app = build(make_app, {})
    with app.app_context():
        create_user(
            app, tenant_id=None, email=SUPPORT, role="support", password=STAFF_PASSWORD, now=clock()
        )
    answer, browser = support_browser(app)
    assert answer.status_code == 302
    assert browser.get("/support/desk/").status_code == 404
    assert browser.get("/support/desk/enrol").status_code == 404


def test_a_page_of_no_business_outside_support_pages_does_not_exist(app, people):
    _answer, browser = support_browser(app)
    assert browser.get("/support/elsewhere/desk").status_code == 404


def test_a_restricted_support_session_opens_only_the_page_of_its_scope(app, people):
    Desk.gate_on = True
    answer, browser = support_browser(app)
    assert answer.status_code == 303 and answer.location == "/support/desk/enrol"
    for elsewhere in ("/support/", "/support/password", "/support/desk/"):
        sent = browser.get(elsewhere)
        assert (sent.status_code, sent.location) == (303, "/support/desk/enrol"), elsewhere
    page = browser.get("/support/desk/enrol")
    assert page.status_code == 200
    assert page.text == f"enrol {SUPPORT}; actor {SUPPORT}"
    assert browser.post("/support/desk/enrol").text == "done"
    # Still restricted until the next login, which the guard now lets through in full.
    assert browser.get("/support/").location == "/support/desk/enrol"
    out = browser.post("/support/logout")
    assert out.status_code == 302, out.text
    answer, browser = support_browser(app)
    assert answer.status_code == 302 and answer.location == "/support/"
    assert browser.get("/support/desk/").status_code == 200
    with db.fresh_session(app) as session:
        live = session.execute(
            select(AuthSession.kind, AuthSession.scope).where(AuthSession.revoked_at.is_(None))
        ).all()
    assert [tuple(row) for row in live] == [("browser", None)]


def test_a_command_gets_the_instances_context(app, people, bookwell_cli):
    _answer, browser = support_browser(app)
    browser.get("/support/desk/")
    result = bookwell_cli("desk", "visits")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "visits 1 tenant None"
    assert browser.get("/support/desk/").text.endswith("visits 1")
