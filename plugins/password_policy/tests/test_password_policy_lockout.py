"""The lockout, through every login door: the API, the staff and client login pages, the
further step (a one-time code), and platform support's page; unlocking by the owner's page
and the operator's command."""

import threading
import types
from datetime import timedelta

import pytest

from bookwell.core.testing import (
    STAFF_PASSWORD,
    api_login,
    create_user,
    csrf_token_of,
    page_login,
)
from bookwell.hooks import Manifest, Refusal, hookimpl
from bookwell.plugins.password_policy import lockout

WRONG = "not the password at all"  # noqa: S105 - a wrong guess, on purpose
SUPPORT_PASSWORD = "a long support passphrase"  # noqa: S105 - a test account's
LOCKED_PAGE = "/admin/salon/password_policy/"


def login(app, email, password=STAFF_PASSWORD, *, ip="192.0.2.10", otp=None, slug="salon"):
    """The API's login from the address ``ip``."""
    body = {"email": email, "password": password, **({"otp": otp} if otp else {})}
    return app.test_client().post(
        f"/api/v1/tenants/{slug}/auth/login", json=body, environ_base={"REMOTE_ADDR": ip}
    )


def code_of(answer):
    return answer.json["error"]["code"] if answer.status_code != 200 else "ok"


def fail(app, email, times, **options):
    codes = [code_of(login(app, email, WRONG, **options)) for _ in range(times)]
    assert codes == ["invalid_credentials"] * times


def locked_until(answer):
    assert answer.status_code == 401, answer.json
    assert answer.json["error"]["code"] == "locked"
    return answer.json["error"]["details"]["locked_until"]


def test_locked_after_max_attempts_even_with_the_right_password(
    app, clock, staff_member, enable_plugin, outbox, audit_trail
):
    enable_plugin("password_policy", max_attempts=3)
    fail(app, "staff@example.com", 3)
    until = (clock() + timedelta(minutes=15)).isoformat()
    assert locked_until(login(app, "staff@example.com")) == until
    assert locked_until(login(app, "STAFF@example.com ", WRONG)) == until
    [entry] = audit_trail(action="plugin.password_policy.account.locked")
    assert entry.subject.startswith("login:person:") and entry.details["lockouts"] == 1
    assert entry.subject_email == "staff@example.com"
    [mail] = outbox(kind="password_policy.locked")
    assert mail.to == "staff@example.com"
    assert "locked until 2027-03-01 09:15 CET" in mail.text
    clock.advance(minutes=15)
    assert login(app, "staff@example.com").status_code == 200


def test_an_unknown_address_locks_alike_and_nobody_is_mailed(app, enable_plugin, outbox):
    enable_plugin("password_policy", max_attempts=3)
    fail(app, "nobody@example.com", 3)
    assert locked_until(login(app, "nobody@example.com"))
    assert outbox(kind="password_policy.locked") == []


def test_a_success_clears_the_count(app, staff_member, enable_plugin):
    enable_plugin("password_policy", max_attempts=3)
    fail(app, "staff@example.com", 2)
    assert login(app, "staff@example.com").status_code == 200
    fail(app, "staff@example.com", 2)
    assert login(app, "staff@example.com").status_code == 200


def test_each_further_lock_doubles_up_to_a_day(app, clock, staff_member, enable_plugin):
    enable_plugin("password_policy", max_attempts=3, lockout_minutes=500)
    for minutes in (500, 1000, 1440, 1440):
        fail(app, "staff@example.com", 3)
        until = locked_until(login(app, "staff@example.com"))
        assert until == (clock() + timedelta(minutes=minutes)).isoformat()
        clock.advance(minutes=minutes)
    # A day after the last lock ended, the earlier ones are forgotten.
    clock.advance(hours=24)
    fail(app, "staff@example.com", 3)
    until = locked_until(login(app, "staff@example.com"))
    assert until == (clock() + timedelta(minutes=500)).isoformat()


def test_the_owner_unlocks_from_the_staff_page(
    app, owner, manager, staff_member, enable_plugin, audit_trail
):
    enable_plugin("password_policy", max_attempts=3)
    fail(app, "staff@example.com", 3)
    fail(app, "nobody@example.com", 3)
    page = owner.pages.get(LOCKED_PAGE)
    assert page.status_code == 200
    assert "staff@example.com" in page.text
    assert "nobody@example.com" not in page.text  # only accounts are listed
    assert manager.pages.get(LOCKED_PAGE).status_code == 403
    account = lockout.account_key("staff@example.com")
    assert owner.pages.post(LOCKED_PAGE + "unlock", data={"account": account}).status_code == 400
    answer = owner.submit(LOCKED_PAGE + "unlock", {"account": account}, form_on=LOCKED_PAGE)
    assert answer.status_code == 302
    assert "may log in again" in owner.pages.get(LOCKED_PAGE).text
    assert "No account is locked." in owner.pages.get(LOCKED_PAGE).text
    [entry] = audit_trail(action="plugin.password_policy.account.unlocked")
    assert entry.subject_email == "staff@example.com" and entry.actor == f"user:{owner.user_id}"
    assert login(app, "staff@example.com").status_code == 200


def test_the_operator_unlocks_with_a_command(
    app, staff_member, enable_plugin, bookwell_cli, audit_trail
):
    enable_plugin("password_policy", max_attempts=3)
    fail(app, "staff@example.com", 3)
    done = bookwell_cli(
        "password_policy", "unlock", "--tenant", "salon", "--email", " Staff@Example.com"
    )
    assert done.exit_code == 0, done.output
    assert "staff@example.com may log in again at Salon." in done.output
    assert audit_trail(action="plugin.password_policy.account.unlocked")
    assert login(app, "staff@example.com").status_code == 200
    again = bookwell_cli("password_policy", "unlock", "--tenant", "salon", "--email", "x@ex.com")
    assert again.exit_code == 0 and "was not locked" in again.output
    unknown = bookwell_cli("password_policy", "unlock", "--tenant", "nope", "--email", "x@ex.com")
    assert unknown.exit_code != 0


# Each racing request holds a connection while its guards take another: a pool for 20 at once.
RACE_SETTINGS = {"GUARD_TIMEOUT_SECONDS": 60, "DATABASE_POOL_SIZE": 40}


@pytest.mark.parametrize("bookwell_settings", [RACE_SETTINGS])
def test_twenty_simultaneous_wrong_passwords_never_check_more_than_allowed(
    app, staff_member, enable_plugin, audit_trail
):
    enable_plugin("password_policy", max_attempts=5)
    start = threading.Barrier(20)
    codes = []

    def guess():
        start.wait()
        codes.append(code_of(login(app, "staff@example.com", WRONG)))

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    checked = [entry for entry in audit_trail(action="login.failed")]
    wrong = [entry for entry in checked if entry.details["reason"] == "invalid_credentials"]
    assert 1 <= codes.count("invalid_credentials") <= 5, codes
    assert codes.count("invalid_credentials") + codes.count("locked") == 20, codes
    assert len(wrong) == codes.count("invalid_credentials")
    assert locked_until(login(app, "staff@example.com"))


def test_one_address_failing_across_accounts_is_refused_for_the_hour(
    app, clock, staff_member, enable_plugin, audit_trail
):
    enable_plugin("password_policy", max_attempts=3)  # 30 guesses per address and hour
    for number in range(15):
        fail(app, f"guess{number}@example.com", 2, ip="203.0.113.5")
    hour_end = clock().replace(minute=0) + timedelta(hours=1)
    assert locked_until(login(app, "staff@example.com", ip="203.0.113.5")) == hour_end.isoformat()
    assert len(audit_trail(action="plugin.password_policy.ip.blocked")) == 1
    # Other addresses, and the account itself, are not locked.
    assert login(app, "staff@example.com", ip="198.51.100.7").status_code == 200
    assert code_of(login(app, "guess0@example.com", WRONG, ip="198.51.100.7")) == (
        "invalid_credentials"
    )
    clock.set(hour_end)
    assert login(app, "staff@example.com", ip="203.0.113.5").status_code == 200


def test_successes_do_not_use_up_an_address(app, staff_member, enable_plugin):
    enable_plugin("password_policy", max_attempts=3)
    for _ in range(35):
        assert login(app, "staff@example.com", ip="203.0.113.9").status_code == 200


# --- a second factor: otp_required is no failure, otp_invalid is ------------------------------

CODE = "123456"


def _one_time_codes():
    """A stand-in for an authenticator: every login asks for the code 123456."""
    module = types.ModuleType("fixed_code")
    module.MANIFEST = Manifest(
        name="fixed_code",
        title="Fixed code",
        description="Asks every login for the code 123456.",
        version="0.1.0",
        category="Security",
        author="tests",
    )

    @hookimpl
    def before_login(ctx):
        given = ctx.login.answers.get("otp")
        if given == CODE:
            return None
        challenge = {"field": "otp", "label": "6-digit code"}
        if given is None:
            return Refusal("Give your code.", "otp_required", challenge=challenge)
        return Refusal("That code is not right.", "otp_invalid", challenge=challenge)

    module.before_login = before_login
    return module


FIXED_CODE = _one_time_codes()


@pytest.mark.parametrize("bookwell_plugins", [[FIXED_CODE]])
def test_a_code_asked_for_is_no_failure_and_a_wrong_code_is(app, staff_login, enable_plugin):
    staff_login("staff")  # before the second factor: the fixture logs in without a code
    enable_plugin("fixed_code")
    enable_plugin("password_policy", max_attempts=3)
    for _ in range(6):
        assert code_of(login(app, "staff@example.com")) == "otp_required"
    assert login(app, "staff@example.com", otp=CODE).status_code == 200
    for _ in range(3):
        assert code_of(login(app, "staff@example.com", otp="000000")) == "otp_invalid"
    assert locked_until(login(app, "staff@example.com", otp=CODE))


def step(browser, answer):
    page = browser.post(
        "/admin/salon/login/step",
        data={"csrf_token": csrf_token_of(browser.get("/admin/salon/login")), "answer": answer},
    )
    return page


@pytest.mark.parametrize("bookwell_plugins", [[FIXED_CODE]])
def test_wrong_codes_on_the_pages_further_step_count(app, staff_login, enable_plugin):
    staff_login("staff")
    enable_plugin("fixed_code")
    enable_plugin("password_policy", max_attempts=3)
    first, browser = page_login(app, "staff@example.com")
    assert first.status_code == 200 and 'name="answer"' in first.text
    for _ in range(3):
        wrong = browser.post(
            "/admin/salon/login/step",
            data={"csrf_token": csrf_token_of(first), "answer": "000000"},
        )
        assert wrong.status_code == 401 and "That code is not right." in wrong.text
        first = wrong
    refused = browser.post(
        "/admin/salon/login/step", data={"csrf_token": csrf_token_of(first), "answer": CODE}
    )
    assert refused.status_code == 401 and "locked until" in refused.text
    assert locked_until(login(app, "staff@example.com", otp=CODE))


# --- the other doors ------------------------------------------------------------------------


def test_the_staff_login_page_counts(app, staff_member, enable_plugin):
    enable_plugin("password_policy", max_attempts=3)
    for _ in range(3):
        assert page_login(app, "staff@example.com", WRONG)[0].status_code == 401
    answer, _browser = page_login(app, "staff@example.com")
    assert answer.status_code == 401 and "locked until 2027-03-01 09:15 CET" in answer.text
    assert locked_until(login(app, "staff@example.com"))


def test_the_client_login_page_counts(app, tenant, clock, enable_plugin, bookwell_cli):
    assert bookwell_cli("tenants", "set", "salon", "--client-accounts").exit_code == 0
    with app.app_context():
        create_user(
            app,
            tenant_id=tenant.tenant_id,
            email="ann@example.com",
            role="client",
            password=STAFF_PASSWORD,
            now=clock(),
            name="Ann",
        )
    enable_plugin("password_policy", max_attempts=3)

    def client_login(password):
        browser = app.test_client()
        form = browser.get("/book/salon/account/login")
        return browser.post(
            "/book/salon/account/login",
            data={
                "csrf_token": csrf_token_of(form),
                "email": "ann@example.com",
                "password": password,
            },
        )

    assert client_login(STAFF_PASSWORD).status_code == 302
    for _ in range(3):
        assert client_login(WRONG).status_code == 401
    locked = client_login(STAFF_PASSWORD)
    assert locked.status_code == 401 and "locked until" in locked.text
    assert locked_until(login(app, "ann@example.com"))


def test_a_crash_of_the_plugin_refuses_the_login(app, staff_member, enable_plugin, monkeypatch):
    enable_plugin("password_policy")

    def broken(self):
        raise RuntimeError("the store is unreachable")

    monkeypatch.setattr(lockout.Attempt, "reserve", broken)
    answer = api_login(app, "staff@example.com")
    assert answer.status_code == 503 and answer.json["error"]["code"] == "plugin_failed"
    assert page_login(app, "staff@example.com")[0].status_code == 503


def test_a_business_without_the_plugin_is_unaffected(app, staff_member):
    for _ in range(12):
        assert code_of(login(app, "staff@example.com", WRONG)) == "invalid_credentials"
    assert login(app, "staff@example.com").status_code == 200


def test_another_business_keeps_its_own_counts(app, staff_login, second_business, enable_plugin):
    staff_login("staff")
    staff_login("staff", business=second_business)
    enable_plugin("password_policy", max_attempts=3)
    enable_plugin("password_policy", business=second_business, max_attempts=3)
    fail(app, "staff@example.com", 3)
    assert locked_until(login(app, "staff@example.com"))
    assert login(app, "staff@example.com", slug=second_business.slug).status_code == 200


# --- platform support ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bookwell_settings", [{"SUPPORT_PLUGINS": {"password_policy": {"max_attempts": 3}}}]
)
def test_support_accounts_are_locked_by_the_instance_settings(app, clock, audit_trail):
    with app.app_context():
        create_user(
            app,
            tenant_id=None,
            email="help@bookwell.example",
            role="support",
            password=SUPPORT_PASSWORD,
            now=clock(),
        )

    def support_login(password):
        browser = app.test_client()
        form = browser.get("/support/login")
        return browser.post(
            "/support/login",
            data={
                "csrf_token": csrf_token_of(form),
                "email": "help@bookwell.example",
                "password": password,
            },
        )

    for _ in range(3):
        assert support_login(WRONG).status_code == 401
    locked = support_login(SUPPORT_PASSWORD)
    assert locked.status_code == 401 and "locked until" in locked.text
    clock.advance(minutes=15)
    assert support_login(SUPPORT_PASSWORD).status_code == 302


def change_password(app, token, current):
    return app.test_client().post(
        "/api/v1/auth/password",
        json={"current_password": current, "new_password": "a brand new long passphrase 42"},
        headers={"Authorization": f"Bearer {token}"},
        environ_base={"REMOTE_ADDR": "192.0.2.10"},
    )


def test_a_token_cannot_test_guesses_at_the_current_password_past_the_lock(
    app, staff_member, enable_plugin
):
    enable_plugin("password_policy", max_attempts=3)
    token = login(app, "staff@example.com").json["token"]
    # Wrong current passwords count as failed logins do...
    for _ in range(3):
        wrong = change_password(app, token, WRONG)
        assert wrong.status_code == 403 and wrong.json["error"]["code"] == "invalid_credentials"
    # ...so the account is locked, and the change answers `locked` whatever the password.
    locked_until(login(app, "staff@example.com"))
    right = change_password(app, token, STAFF_PASSWORD)
    assert locked_until(right)
    assert login(app, "staff@example.com", "a brand new long passphrase 42").status_code == 401
