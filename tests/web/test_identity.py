"""Flask-Login is the face of core's server-side sessions and tokens: ``current_user`` in views,
templates and plugins' pages is a frozen copy, never the account's row; one request loader finds
it (the cookie on pages, the bearer on the API, never the other way round); nothing identifies
anyone in Flask's own signed cookie; ``login_required`` sends people to the right login page."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import STAFF_PASSWORD, add_staff_and_a_rival, csrf_token_of, log_in_staff
from flask import template_rendered
from flask_login import current_user, login_required

from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage.models import User
from bookwell.core.web.identity import SignedIn
from bookwell.hooks import Manifest, UserInfo, hookimpl

BOOKINGS = "/api/v1/tenants/salon/bookings?from=2027-03-01&to=2027-03-02"


class ActorLog:
    MANIFEST = Manifest("actor-log", "Actor log", "Remembers who acts.", "1", "test", "t")
    actors: list = []

    @hookimpl
    def before_data_access(ctx, scope):
        ActorLog.actors.append(ctx.actor)


@pytest.fixture
def site(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[ActorLog])
    add_staff_and_a_rival(app, business, clock(), ["owner"])
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "actor-log", {}, clock())
    return app


def rendered(app, client, path):
    """The response and the context of every template rendered for ``path``."""
    contexts = []

    def remember(sender, template, context, **extra):
        # current_user is a proxy of the request: look through it while the request lasts.
        contexts.append({**context, "current_user": context["current_user"]._get_current_object()})

    with template_rendered.connected_to(remember, app):
        response = client.get(path)
    return response, contexts


def test_templates_see_a_frozen_copy_of_the_signed_in_user(site):
    client = log_in_staff(site, "owner@example.com")
    response, contexts = rendered(site, client, "/admin/salon/sessions")
    assert response.status_code == 200
    assert "Logged in as owner@example.com (owner)" in response.text
    page = contexts[0]
    for shown in (page["user"], page["current_user"]):
        assert type(shown) is SignedIn and not isinstance(shown, User)
        assert (shown.email, shown.role, shown.is_authenticated) == (
            "owner@example.com",
            "owner",
            True,
        )
        with pytest.raises(dataclasses.FrozenInstanceError):
            shown.role = "support"
    # The session the page is seen from is marked as this one.
    assert "this one" in response.text


def test_hooks_get_the_actor_as_a_frozen_user_info(site):
    client = log_in_staff(site, "owner@example.com")
    ActorLog.actors.clear()
    assert client.get("/admin/salon/").status_code == 200
    assert ActorLog.actors, "before_data_access was not asked"
    for actor in ActorLog.actors:
        assert type(actor) is UserInfo
        assert (actor.email, actor.role) == ("owner@example.com", "owner")


def test_flask_cookie_carries_only_the_csrf_secret(site):
    client = log_in_staff(site, "owner@example.com")
    assert client.get("/admin/salon/").status_code == 200
    assert client.get("/admin/salon/sessions").status_code == 200
    serializer = site.session_interface.get_signing_serializer(site)
    cookie = client.get_cookie(site.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    assert set(serializer.loads(cookie.value)) == {"csrf_token"}


def test_login_required_sends_each_page_to_its_own_login(site):
    client = site.test_client()
    answer = client.get("/admin/salon/")
    assert answer.status_code == 302 and answer.location.endswith("/admin/salon/login")
    answer = client.get("/support/")
    assert answer.status_code == 302 and answer.location.endswith("/support/login")
    assert client.get(BOOKINGS).status_code == 401


def test_login_required_works_on_a_plain_flask_view(site):
    """A plugin author's own view can use Flask-Login's decorator as in any Flask app."""

    @site.get("/admin/<slug>/plain-view")
    @login_required
    def plain_view(slug):
        return f"hello {current_user.email}"

    anonymous = site.test_client().get("/admin/salon/plain-view")
    assert anonymous.status_code == 302 and anonymous.location.endswith("/admin/salon/login")
    signed_in = log_in_staff(site, "owner@example.com").get("/admin/salon/plain-view")
    assert signed_in.text == "hello owner@example.com"


def test_the_cookie_never_opens_the_api_and_a_bearer_never_opens_a_page(site):
    browser = log_in_staff(site, "owner@example.com")
    assert browser.get("/admin/salon/").status_code == 200
    # The browser's cookie goes with this request, and is not read by the API.
    assert browser.get(BOOKINGS).status_code == 401

    api = site.test_client()
    token = api.post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "owner@example.com", "password": STAFF_PASSWORD},
    ).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get(BOOKINGS, headers=bearer).status_code == 200
    page = api.get("/admin/salon/", headers=bearer)
    assert page.status_code == 302 and page.location.endswith("/admin/salon/login")


def test_a_bad_bearer_is_refused_not_ignored(site):
    api = site.test_client()
    for header in ("Bearer", "Basic b3duZXI6cGFzcw==", "Bearer not-a-token"):
        answer = api.get(BOOKINGS, headers={"Authorization": header})
        assert answer.status_code == 401 and answer.json["error"]["code"] == "unauthorized"


def test_logging_out_leaves_nobody_signed_in(site):
    client = log_in_staff(site, "owner@example.com")
    page = client.get("/admin/salon/")
    assert page.status_code == 200
    out = client.post("/admin/salon/logout", data={"csrf_token": csrf_token_of(page)})
    assert out.status_code == 302
    again = client.get("/admin/salon/")
    assert again.status_code == 302 and again.location.endswith("/admin/salon/login")
