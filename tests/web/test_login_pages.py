"""Staff and support log in through pages on the same path as the API: CSRF, challenges,
a fresh session id at every step, cookie flags, logout that really ends the session."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bookwell.core.access.users import create_user
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuthSession, Tenant, User
from bookwell.hooks import Manifest, Refusal, hookimpl

PASSWORD = "correct horse battery"


class SecondFactor:
    MANIFEST = Manifest("second-factor", "Second factor", "Asks for 123456.", "1", "test", "t")

    @hookimpl
    def before_login(ctx):
        if ctx.login.answers.get("otp") != "123456":
            return Refusal(
                "Enter the 6-digit code.",
                code="otp_required",
                status=401,
                challenge={"field": "otp", "label": "6-digit code"},
            )


@pytest.fixture
def site(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[SecondFactor])
    with app.app_context():
        for email, role, tenant_id in (
            ("owner@example.com", "owner", business.tenant_id),
            ("ann@example.com", "client", business.tenant_id),
            ("help@bookwell.example", "support", None),
        ):
            create_user(
                app, tenant_id=tenant_id, email=email, role=role, password=PASSWORD, now=clock()
            )
    return app


def csrf(client, url):
    page = client.get(url)
    assert page.status_code == 200
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)


def log_in(client, email="owner@example.com", password=PASSWORD, url="/admin/salon/login"):
    token = csrf(client, url)
    return client.post(url, data={"csrf_token": token, "email": email, "password": password})


def session_cookie(response):
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("bookwell_session=") and not header.startswith("bookwell_session=;"):
            return header
    return None


def test_a_staff_member_logs_in_and_the_cookie_is_locked_down(site):
    client = site.test_client()
    response = log_in(client)
    assert response.status_code == 302
    cookie = session_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/admin/salon/").status_code == 200


def test_over_https_the_cookie_is_secure(site):
    client = site.test_client()
    token = csrf(client, "https://localhost/admin/salon/login")
    response = client.post(
        "https://localhost/admin/salon/login",
        data={"csrf_token": token, "email": "owner@example.com", "password": PASSWORD},
    )
    assert "Secure" in session_cookie(response)


def test_a_form_without_its_csrf_token_is_refused(site):
    client = site.test_client()
    response = client.post(
        "/admin/salon/login", data={"email": "owner@example.com", "password": PASSWORD}
    )
    assert response.status_code == 422
    assert session_cookie(response) is None


def test_a_wrong_password_and_an_unknown_email_read_the_same(site):
    client = site.test_client()
    wrong = log_in(client, password="not the password")
    unknown = log_in(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    message = "The e-mail or the password is not right."
    assert message in wrong.text and message in unknown.text


def test_a_client_account_cannot_log_in_to_the_staff_pages(site):
    response = log_in(site.test_client(), email="ann@example.com")
    assert response.status_code == 401
    assert session_cookie(response) is None


def test_a_planted_session_id_is_never_the_one_after_login(site):
    client = site.test_client()
    client.set_cookie("bookwell_session", "bws_planted-by-an-attacker")
    response = log_in(client)
    assert "bws_planted-by-an-attacker" not in session_cookie(response)
    first = session_cookie(response)
    client.post("/admin/salon/logout", data={"csrf_token": csrf(client, "/admin/salon/login")})
    second = session_cookie(log_in(client))
    assert first != second


def test_logout_really_ends_the_session(site):
    client = site.test_client()
    cookie = session_cookie(log_in(client)).split(";")[0].split("=", 1)[1]
    token = csrf(client, "/admin/salon/login")
    assert client.post("/admin/salon/logout", data={"csrf_token": token}).status_code == 302
    replay = site.test_client()
    replay.set_cookie("bookwell_session", cookie)
    assert replay.get("/admin/salon/").status_code == 302  # back to the login page


def sign_in_for_logout(site, business, who):
    """A browser signed in as ``who`` (staff, support or a client), with the page that proves
    it and the logout to post."""
    if who == "client":
        with db.write_transaction(site) as writer:
            writer.get(Tenant, business.tenant_id).client_accounts = True
            ann = writer.scalar(select(User).where(User.email == "ann@example.com"))
            ann.email_verified_at = ann.created_at
    email, login_url, home, logout = {
        "staff": (
            "owner@example.com",
            "/admin/salon/login",
            "/admin/salon/",
            "/admin/salon/logout",
        ),
        "support": ("help@bookwell.example", "/support/login", "/support/", "/support/logout"),
        "client": (
            "ann@example.com",
            "/book/salon/account/login",
            "/book/salon/account/",
            "/book/salon/account/logout",
        ),
    }[who]
    client = site.test_client()
    assert log_in(client, email=email, url=login_url).status_code == 302
    assert client.get(home).status_code == 200
    return client, home, logout


def live_sessions(site) -> int:
    with db.fresh_session(site) as session:
        return len(
            session.scalars(select(AuthSession).where(AuthSession.revoked_at.is_(None))).all()
        )


@pytest.mark.parametrize("who", ["staff", "support", "client"])
@pytest.mark.parametrize("csrf_token", [None, "forged"], ids=["without-token", "wrong-token"])
def test_a_logout_without_its_csrf_token_still_ends_the_session(site, business, who, csrf_token):
    """Its cookie is cleared, so its session must end too: the old cookie opens nothing."""
    client, home, logout = sign_in_for_logout(site, business, who)
    cookie = client.get_cookie("bookwell_session").value
    assert live_sessions(site) == 1
    data = {"csrf_token": csrf_token} if csrf_token else {}
    response = client.post(logout, data=data)
    assert response.status_code == 302
    assert live_sessions(site) == 0
    replay = site.test_client()
    replay.set_cookie("bookwell_session", cookie)
    assert replay.get(home).status_code == 302  # to the login page


def test_a_logout_elsewhere_ends_the_session_its_cookie_names(site, business):
    """A client's logout posted with a staff cookie clears that cookie: it ends its session."""
    client, _, _ = sign_in_for_logout(site, business, "staff")
    with db.write_transaction(site) as writer:
        writer.get(Tenant, business.tenant_id).client_accounts = True
    assert client.post("/book/salon/account/logout").status_code == 302
    assert live_sessions(site) == 0
    assert client.get("/admin/salon/").status_code == 302


def test_a_challenge_becomes_a_further_step_with_a_fresh_secret(site, business, clock):
    with site.app_context():
        plugin_changes.enable(site, business.tenant_id, "second-factor", {}, clock())
    client = site.test_client()
    first = log_in(client)
    assert first.status_code == 200 and "6-digit code" in first.text
    assert session_cookie(first) is None
    pending = [h for h in first.headers.getlist("Set-Cookie") if h.startswith("bookwell_login=")]
    assert pending and "HttpOnly" in pending[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', first.text).group(1)
    wrong = client.post("/admin/salon/login/step", data={"csrf_token": token, "answer": "000000"})
    assert wrong.status_code == 401
    renewed = [h for h in wrong.headers.getlist("Set-Cookie") if h.startswith("bookwell_login=")]
    assert renewed and renewed[0] != pending[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', wrong.text).group(1)
    right = client.post("/admin/salon/login/step", data={"csrf_token": token, "answer": "123456"})
    assert right.status_code == 302
    assert session_cookie(right) is not None
    assert client.get("/admin/salon/").status_code == 200


def test_support_logs_in_at_its_own_page_only(site):
    client = site.test_client()
    assert log_in(client, email="help@bookwell.example").status_code == 401  # not staff
    response = log_in(client, email="help@bookwell.example", url="/support/login")
    assert response.status_code == 302
    assert client.get("/support/").status_code == 200
    # A business's read-only pages open to support (audited); its others are its staff's.
    assert client.get("/admin/salon/").status_code == 200
    assert client.get("/admin/salon/staff").status_code == 302
    assert client.get("/admin/salon/sessions").status_code == 302


def test_idle_sessions_end_after_thirty_minutes(site, clock):
    client = site.test_client()
    log_in(client)
    clock.advance(minutes=29)
    assert client.get("/admin/salon/").status_code == 200
    clock.advance(minutes=31)
    assert client.get("/admin/salon/").status_code == 302


class ViewLog:
    MANIFEST = Manifest("view-log", "View log", "Remembers views.", "1", "test", "t")
    seen: list = []

    @hookimpl
    def after_view(ctx, subject):
        ViewLog.seen.append((ctx.actor.email, subject))


def test_staff_views_of_client_details_reach_after_view(make_app, business, clock):
    from conftest import booking_body

    app = make_app(EXTRA_PLUGINS=[ViewLog])
    with app.app_context():
        create_user(
            app,
            tenant_id=business.tenant_id,
            email="owner@example.com",
            role="owner",
            password=PASSWORD,
            now=clock(),
        )
        plugin_changes.enable(app, business.tenant_id, "view-log", {}, clock())
    client = app.test_client()
    booked = client.post(
        "/api/v1/tenants/salon/bookings", json=booking_body(business, "2027-03-02T10:00:00+01:00")
    ).json
    token = client.post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "owner@example.com", "password": PASSWORD},
    ).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    ViewLog.seen.clear()
    assert (
        client.get(
            f"/api/v1/tenants/salon/bookings/{booked['reference']}", headers=bearer
        ).status_code
        == 200
    )
    assert (
        client.get(
            "/api/v1/tenants/salon/bookings?from=2027-03-01&to=2027-03-07", headers=bearer
        ).status_code
        == 200
    )
    assert ViewLog.seen == [
        ("owner@example.com", f"booking:{booked['reference']}"),
        ("owner@example.com", "bookings:2027-03-01..2027-03-07"),
    ]
