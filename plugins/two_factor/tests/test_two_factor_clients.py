"""Clients with an account: they set up an app on their own page beside their bookings (or
through the API), and then their login page asks for the code; a business may require it."""

from __future__ import annotations

import re

import pytest
from two_factor_kit import STEP, code_at, error_code

from bookwell.core.testing import STAFF_PASSWORD, api_login, create_user, csrf_token_of

EMAIL = "carla@example.com"
PAGE = "/book/salon/two_factor/"


@pytest.fixture
def carla(app, tenant, clock, bookwell_cli) -> int:
    """Carla, a client with an account, at a business whose clients may have accounts."""
    opened = bookwell_cli("tenants", "set", "salon", "--client-accounts")
    assert opened.exit_code == 0, opened.output
    with app.app_context():
        return create_user(
            app,
            tenant_id=tenant.tenant_id,
            email=EMAIL,
            role="client",
            password=STAFF_PASSWORD,
            now=clock(),
            name="Carla",
        ).id


def client_login(app, answer: str | None = None):
    """The client login page, and its further step when ``answer`` is given."""
    browser = app.test_client()
    form = browser.get("/book/salon/account/login")
    first = browser.post(
        "/book/salon/account/login",
        data={"csrf_token": csrf_token_of(form), "email": EMAIL, "password": STAFF_PASSWORD},
    )
    if answer is None:
        return first, browser
    step = browser.post(
        "/book/salon/account/login/step",
        data={"csrf_token": csrf_token_of(first), "answer": answer, "field": "otp"},
    )
    return step, browser


def test_a_client_sets_it_up_on_their_page_then_logs_in_with_a_code(
    app, carla, enable_plugin, clock, outbox
):
    enable_plugin("two_factor")
    signed_in, browser = client_login(app)
    assert signed_in.status_code == 302  # clients need not use it: in at once
    page = browser.get(PAGE)
    assert page.status_code == 200 and "<svg" in page.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page.text).group(1)
    done = browser.post(
        f"{PAGE}confirm", data={"csrf_token": csrf_token_of(page), "code": code_at(secret, clock)}
    )
    assert done.status_code == 200 and "two-factor-on" in done.text
    assert outbox(kind="two_factor.enrolled")[0].to == EMAIL
    clock.advance(seconds=STEP)
    asked, _ = client_login(app)
    assert asked.status_code == 200 and "6-digit code" in asked.text
    wrong, _ = client_login(app, "000000")
    assert wrong.status_code == 401
    right, _ = client_login(app, code_at(secret, clock))
    assert right.status_code == 302


def test_the_client_page_is_for_signed_in_clients_only(app, carla, enable_plugin, staff_member):
    enable_plugin("two_factor")
    assert app.test_client().get(PAGE).status_code == 302  # to the login page
    assert staff_member.pages.get(PAGE).status_code == 302  # staff use their own page


def test_a_business_may_require_it_of_clients(app, carla, enable_plugin, clock):
    enable_plugin("two_factor", required_roles=["owner", "manager", "client"])
    answer = api_login(app, EMAIL)
    assert answer.status_code == 200 and answer.json["scope"] == "enroll_totp"
    assert answer.json["code"] == "otp_enrollment_required"
    token = {"Authorization": f"Bearer {answer.json['token']}"}
    http = app.test_client()
    started = http.post("/api/v1/tenants/salon/me/totp", headers=token)
    secret = re.search(r"secret=([A-Z2-7]+)", started.json["otpauth_uri"]).group(1)
    confirmed = http.post(
        "/api/v1/tenants/salon/me/totp/confirm",
        headers=token,
        json={"code": code_at(secret, clock)},
    )
    assert confirmed.status_code == 200
    clock.advance(seconds=STEP)
    assert error_code(api_login(app, EMAIL)) == "otp_required"
    assert api_login(app, EMAIL, otp=code_at(secret, clock)).json["scope"] == "tenant:salon"
