"""Platform support's logins, where the operator switched two_factor on for support (the
instance's ``SUPPORT_PLUGINS``): there is no business, so the plugin must not reach for one."""

from __future__ import annotations

from bookwell.core.testing import STAFF_PASSWORD, create_user, csrf_token_of

EMAIL = "help@bookwell.example"


def support_login(app):
    browser = app.test_client()
    page = browser.get("/support/login")
    return browser.post(
        "/support/login",
        data={"csrf_token": csrf_token_of(page), "email": EMAIL, "password": STAFF_PASSWORD},
    )


def add_support(app, clock) -> None:
    with app.app_context():
        create_user(
            app, tenant_id=None, email=EMAIL, role="support", password=STAFF_PASSWORD, now=clock()
        )


def test_support_not_required_to_use_it_logs_in(make_app, clock):
    app = make_app(SUPPORT_PLUGINS={"two_factor": {"required_roles": ["owner"]}})
    add_support(app, clock)
    assert support_login(app).status_code == 302


def test_support_required_to_use_it_is_never_let_straight_in(make_app, clock):
    app = make_app(SUPPORT_PLUGINS={"two_factor": {"required_roles": ["support"]}})
    add_support(app, clock)
    answer = support_login(app)
    # Asked to set up an app first, on support's own page (a restricted session), never a
    # session straight away; test_two_factor_support_enrolment.py goes on from there.
    assert (answer.status_code, answer.location) == (303, "/support/two_factor/")
