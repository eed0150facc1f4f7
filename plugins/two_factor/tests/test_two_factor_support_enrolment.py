"""Platform support enrols too: with ``support`` in the instance's ``required_roles`` (the
operator's ``SUPPORT_PLUGINS``), a support login is let in only to ``/support/two_factor/``,
where it sets up an app (QR code, key, a code to confirm, recovery codes); its next login asks
for a code, once each. The operator resets a support account with ``--support``."""

from __future__ import annotations

import re

import pyotp
import pytest
from two_factor_kit import STEP, code_at, encodes

from bookwell.core.testing import STAFF_PASSWORD, create_user, csrf_token_of

EMAIL = "help@bookwell.example"
PAGE = "/support/two_factor/"
REQUIRED = {"SUPPORT_PLUGINS": {"two_factor": {"required_roles": ["support"]}}}


@pytest.fixture
def bookwell_settings():
    return REQUIRED


@pytest.fixture
def support_user(app, clock):
    with app.app_context():
        create_user(
            app, tenant_id=None, email=EMAIL, role="support", password=STAFF_PASSWORD, now=clock()
        )


def password_step(app):
    browser = app.test_client()
    form = browser.get("/support/login")
    answer = browser.post(
        "/support/login",
        data={"csrf_token": csrf_token_of(form), "email": EMAIL, "password": STAFF_PASSWORD},
    )
    return answer, browser


def code_step(browser, asked, code):
    return browser.post(
        "/support/login/step", data={"csrf_token": csrf_token_of(asked), "answer": code}
    )


def shown_secret(page) -> str:
    found = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page.text)
    assert found, page.text[:2000]
    return found.group(1)


def enrol_on_the_page(app, clock) -> tuple[str, list[str]]:
    """A support login that must enrol, sent to the page, confirming with the app's code."""
    answer, browser = password_step(app)
    assert (answer.status_code, answer.location) == (303, PAGE)
    page = browser.get(PAGE)
    assert page.status_code == 200
    secret = shown_secret(page)
    uri = pyotp.TOTP(secret).provisioning_uri(name=EMAIL, issuer_name="Bookwell support")
    svg = re.search(r"<svg.*?</svg>", page.text, re.S).group(0)
    assert encodes(svg, uri)
    wrong = browser.post(PAGE + "confirm", data={"csrf_token": csrf_token_of(page), "code": "1"})
    assert wrong.status_code == 422 and shown_secret(wrong) == secret
    done = browser.post(
        PAGE + "confirm",
        data={"csrf_token": csrf_token_of(page), "code": code_at(secret, clock)},
    )
    assert done.status_code == 200, done.text
    assert 'id="two-factor-on"' in done.text
    codes = re.findall(r"<li><code>([A-Z2-9]{5}-[A-Z2-9]{5})</code></li>", done.text)
    assert len(codes) == 10
    # Enrolled, yet this session stays restricted: the next login, with a code, is full.
    assert browser.get("/support/").location == PAGE
    assert browser.post("/support/logout").status_code == 302
    clock.advance(seconds=STEP)
    return secret, codes


def test_a_support_user_who_must_enrol_can_do_nothing_else(app, support_user):
    answer, browser = password_step(app)
    assert (answer.status_code, answer.location) == (303, PAGE)
    for elsewhere in ("/support/", "/support/password", "/admin/salon/"):
        sent = browser.get(elsewhere)
        assert (sent.status_code, sent.location) == (303, PAGE), elsewhere
    page = browser.get(PAGE)
    assert page.status_code == 200
    assert "Set up two-step login to continue" in page.text  # the refusal's message
    assert "Bookwell support</a>" not in page.text  # no way out but the set-up


def test_enrol_on_the_page_then_log_in_with_a_code_once(app, support_user, clock):
    secret, _codes = enrol_on_the_page(app, clock)
    asked, browser = password_step(app)
    assert asked.status_code == 200 and 'name="answer"' in asked.text
    code = code_at(secret, clock)
    wrong = code_step(browser, asked, "000000")
    assert wrong.status_code == 401 and 'name="answer"' in wrong.text
    right = code_step(browser, wrong, code)
    assert (right.status_code, right.location) == (302, "/support/")
    assert browser.get("/support/").status_code == 200
    status = browser.get(PAGE)
    assert status.status_code == 200 and 'id="two-factor-status"' in status.text
    # The same code again, from another browser, is refused.
    asked, replaying = password_step(app)
    replayed = code_step(replaying, asked, code)
    assert replayed.status_code == 401
    assert "already used" in replayed.text
    assert replaying.get("/support/").status_code == 302  # to the login page: not signed in


def test_a_recovery_code_logs_support_in_once(app, support_user, clock):
    _secret, codes = enrol_on_the_page(app, clock)
    asked, browser = password_step(app)
    assert code_step(browser, asked, codes[0]).status_code == 302
    asked, again = password_step(app)
    assert code_step(again, asked, codes[0]).status_code == 401


def test_the_page_needs_a_support_user(app, support_user, owner):
    assert app.test_client().get(PAGE).location == "/support/login"


def test_not_listed_for_support_there_is_no_page(make_app, clock):
    app = make_app(SUPPORT_PLUGINS={})
    with app.app_context():
        create_user(
            app, tenant_id=None, email=EMAIL, role="support", password=STAFF_PASSWORD, now=clock()
        )
    answer, browser = password_step(app)
    assert answer.status_code == 302
    assert browser.get(PAGE).status_code == 404


def test_a_support_user_not_required_may_enrol_on_the_page(make_app, clock):
    app = make_app(SUPPORT_PLUGINS={"two_factor": {"required_roles": ["owner"]}})
    with app.app_context():
        create_user(
            app, tenant_id=None, email=EMAIL, role="support", password=STAFF_PASSWORD, now=clock()
        )
    answer, browser = password_step(app)
    assert (answer.status_code, answer.location) == (302, "/support/")
    page = browser.get(PAGE)
    secret = shown_secret(page)
    done = browser.post(
        PAGE + "confirm", data={"csrf_token": csrf_token_of(page), "code": code_at(secret, clock)}
    )
    assert done.status_code == 200 and 'id="two-factor-on"' in done.text
    clock.advance(seconds=STEP)
    asked, _browser = password_step(app)
    assert asked.status_code == 200 and 'name="answer"' in asked.text  # now asked for a code


def test_the_operator_resets_a_support_account(app, support_user, clock, bookwell_cli):
    enrol_on_the_page(app, clock)
    asked, _browser = password_step(app)
    assert 'name="answer"' in asked.text
    done = bookwell_cli("two_factor", "reset", "--support", "--email", EMAIL)
    assert done.exit_code == 0, done.output
    assert "reset at platform support" in done.output
    answer, _browser = password_step(app)
    assert (answer.status_code, answer.location) == (303, PAGE)  # enrols afresh
    again = bookwell_cli("two_factor", "reset", "--support", "--email", EMAIL)
    assert again.exit_code != 0 and "has no authenticator app" in again.output
    both = bookwell_cli("two_factor", "reset", "--support", "--tenant", "salon", "--email", EMAIL)
    assert both.exit_code != 0 and "either --tenant SLUG or --support" in both.output
    neither = bookwell_cli("two_factor", "reset", "--email", EMAIL)
    assert neither.exit_code != 0


def test_a_crash_of_the_plugin_refuses_the_support_login(app, support_user, clock, monkeypatch):
    secret, _codes = enrol_on_the_page(app, clock)
    from bookwell.plugins.two_factor import authenticator

    def broken(*_args, **_kwargs):
        raise RuntimeError("the authenticator broke")

    monkeypatch.setattr(authenticator, "check_code", broken)
    asked, browser = password_step(app)
    refused = code_step(browser, asked, code_at(secret, clock))
    assert refused.status_code == 503
    assert browser.get("/support/").status_code == 302
