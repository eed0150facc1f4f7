"""The operator unlocks a platform support account: ``bookwell password_policy unlock --support
--email E`` lifts the lock kept in the instance's store (support's logins' context), not a
business's."""

from __future__ import annotations

import pytest

from bookwell.core.testing import STAFF_PASSWORD, create_user, csrf_token_of

EMAIL = "help@bookwell.example"
WRONG = "not the password at all"  # noqa: S105 - a wrong guess, on purpose


@pytest.fixture
def bookwell_settings():
    return {"SUPPORT_PLUGINS": {"password_policy": {"max_attempts": 3}}}


@pytest.fixture
def support_user(app, clock):
    with app.app_context():
        create_user(
            app, tenant_id=None, email=EMAIL, role="support", password=STAFF_PASSWORD, now=clock()
        )


def support_login(app, password):
    browser = app.test_client()
    form = browser.get("/support/login")
    return browser.post(
        "/support/login",
        data={"csrf_token": csrf_token_of(form), "email": EMAIL, "password": password},
    )


def lock(app):
    for _ in range(3):
        assert support_login(app, WRONG).status_code == 401
    locked = support_login(app, STAFF_PASSWORD)
    assert locked.status_code == 401 and "locked until" in locked.text


def test_the_operator_unlocks_a_support_account(app, support_user, bookwell_cli):
    lock(app)
    done = bookwell_cli(
        "password_policy", "unlock", "--support", "--email", " Help@Bookwell.example"
    )
    assert done.exit_code == 0, done.output
    assert f"{EMAIL} may log in again at platform support." in done.output
    assert support_login(app, STAFF_PASSWORD).status_code == 302
    again = bookwell_cli("password_policy", "unlock", "--support", "--email", EMAIL)
    assert again.exit_code == 0 and "was not locked at platform support" in again.output


def test_a_businesss_unlock_leaves_support_locked(app, tenant, support_user, bookwell_cli):
    lock(app)
    done = bookwell_cli("password_policy", "unlock", "--tenant", "salon", "--email", EMAIL)
    assert done.exit_code == 0 and "was not locked at Salon" in done.output
    assert support_login(app, STAFF_PASSWORD).status_code == 401


def test_the_command_wants_a_business_or_support(app, bookwell_cli):
    for where in ((), ("--support", "--tenant", "salon")):
        refused = bookwell_cli("password_policy", "unlock", *where, "--email", EMAIL)
        assert refused.exit_code != 0
        assert "either --tenant SLUG or --support" in refused.output
