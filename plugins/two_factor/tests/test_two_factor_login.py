"""Logging in with two_factor on, through the API: the code after the password, each refusal
(otp_required, otp_invalid, a replay, an older step, a race, the throttle), recovery codes, an
account that must enrol, and a plugin that fails refusing the login."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from two_factor_kit import STEP, code_at, enrol, error_code, login

from bookwell.core.testing import BearerClient, api_login

CHALLENGE = {
    "field": "otp",
    "label": "6-digit code from your authenticator app (or a recovery code)",
}


@pytest.fixture
def enrolled(app, staff_member, enable_plugin, clock):
    """The staff member (a role that need not use it) with an app set up: (member, secret,
    recovery codes)."""
    enable_plugin("two_factor")
    secret, codes = enrol(staff_member.api, clock)
    return staff_member, secret, codes


def test_the_right_code_after_the_password_logs_in(app, enrolled, clock):
    member, secret, _ = enrolled
    answer = login(app, member, code_at(secret, clock))
    assert answer.status_code == 200, answer.json
    assert answer.json["scope"] == "tenant:salon"


def test_without_a_code_the_login_asks_for_one(app, enrolled):
    member, _, _ = enrolled
    answer = login(app, member)
    assert answer.status_code == 401
    assert error_code(answer) == "otp_required"
    assert answer.json["error"]["challenge"] == CHALLENGE


def test_a_wrong_code_is_refused_and_asked_again(app, enrolled, clock):
    member, secret, _ = enrolled
    right = code_at(secret, clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    answer = login(app, member, wrong)
    assert answer.status_code == 401
    assert error_code(answer) == "otp_invalid"
    assert answer.json["error"]["challenge"] == CHALLENGE


def test_a_wrong_password_never_reaches_the_code(app, enrolled, clock):
    member, secret, _ = enrolled
    answer = login(app, member, code_at(secret, clock), password="not the password at all")  # noqa: S106
    assert error_code(answer) == "invalid_credentials"
    # The code was not spent by the refused attempt.
    assert login(app, member, code_at(secret, clock)).status_code == 200


def test_a_code_is_accepted_once(app, enrolled, clock):
    member, secret, _ = enrolled
    code = code_at(secret, clock)
    assert login(app, member, code).status_code == 200
    again = login(app, member, code)
    assert again.status_code == 401
    assert error_code(again) == "otp_invalid"


def test_one_step_of_drift_is_allowed_but_not_two(app, enrolled, clock):
    member, secret, _ = enrolled
    clock.advance(seconds=STEP)  # the step before is then later than the one that confirmed
    assert error_code(login(app, member, code_at(secret, clock, steps=2))) == "otp_invalid"
    assert error_code(login(app, member, code_at(secret, clock, steps=-2))) == "otp_invalid"
    assert login(app, member, code_at(secret, clock, steps=-1)).status_code == 200


def test_an_older_code_after_a_newer_one_is_refused(app, enrolled, clock):
    member, secret, _ = enrolled
    newer, older = code_at(secret, clock, steps=1), code_at(secret, clock)
    assert login(app, member, newer).status_code == 200
    assert error_code(login(app, member, older)) == "otp_invalid"
    clock.advance(seconds=2 * STEP)  # a later step than any used: good again
    assert login(app, member, code_at(secret, clock)).status_code == 200


def test_of_two_logins_racing_with_one_code_exactly_one_wins(app, enrolled, clock):
    member, secret, _ = enrolled
    code = code_at(secret, clock)
    start = threading.Barrier(4)

    def attempt(_):
        start.wait()
        return login(app, member, code).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(attempt, range(4)))
    assert statuses == [200, 401, 401, 401]


def test_five_wrong_codes_then_the_account_is_held_back_for_15_minutes(app, enrolled, clock):
    member, secret, _ = enrolled
    wrong = f"{(int(code_at(secret, clock)) + 500_000) % 1_000_000:06d}"
    for _ in range(5):
        assert error_code(login(app, member, wrong)) == "otp_invalid"
    held = login(app, member, code_at(secret, clock))  # even the right code
    assert held.status_code == 401
    assert error_code(held) == "locked"
    assert held.json["error"]["details"]["locked_until"].startswith("2027-03-01T08:15:30")
    clock.advance(minutes=15)
    assert login(app, member, code_at(secret, clock)).status_code == 200


def test_wrong_codes_sent_at_once_never_get_more_than_five_checks(app, enrolled, clock):
    member, secret, _ = enrolled
    wrong = f"{(int(code_at(secret, clock)) + 500_000) % 1_000_000:06d}"
    start = threading.Barrier(8)

    def attempt(_):
        start.wait()
        return error_code(login(app, member, wrong))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attempt, range(8)))
    assert answers.count("otp_invalid") == 5
    assert answers.count("locked") == 3


def test_the_throttle_counts_wrong_codes_of_one_account_only(app, enrolled, receptionist, clock):
    member, secret, _ = enrolled
    for _ in range(6):
        login(app, member, "000000")
    assert error_code(login(app, member, code_at(secret, clock))) == "locked"
    assert api_login(app, receptionist.email).status_code == 200  # not enrolled, own count


def test_a_right_code_forgives_earlier_wrong_ones(app, enrolled, clock):
    member, secret, _ = enrolled
    for _ in range(4):
        login(app, member, "000000")
    assert login(app, member, code_at(secret, clock)).status_code == 200
    clock.advance(seconds=STEP)
    for _ in range(4):
        login(app, member, "000000")
    assert login(app, member, code_at(secret, clock)).status_code == 200


def test_a_recovery_code_logs_in_once(app, enrolled):
    member, _, codes = enrolled
    assert len(codes) == 10 and len(set(codes)) == 10
    assert login(app, member, codes[0].lower().replace("-", " ")).status_code == 200
    assert error_code(login(app, member, codes[0])) == "otp_invalid"
    assert login(app, member, codes[1]).status_code == 200


def test_a_recovery_code_racing_with_itself_works_once(app, enrolled):
    member, _, codes = enrolled
    start = threading.Barrier(3)

    def attempt(_):
        start.wait()
        return login(app, member, codes[2]).status_code

    with ThreadPoolExecutor(3) as pool:
        assert sorted(pool.map(attempt, range(3))) == [200, 401, 401]


def test_a_role_that_must_use_it_can_only_enrol_until_it_has(app, owner, enable_plugin, clock):
    enable_plugin("two_factor")  # required for owner and manager by default
    answer = api_login(app, owner.email)
    assert answer.status_code == 200
    assert answer.json["scope"] == "enroll_totp"
    assert answer.json["code"] == "otp_enrollment_required"
    restricted = BearerClient(app.test_client(), "salon", answer.json["token"])
    elsewhere = (
        restricted.get("plugins"),
        restricted.get("/api/v1/tenants/salon/bookings?from=2027-03-01&to=2027-03-02"),
        restricted.post("me/totp/recovery-codes", json={"code": "123456"}),
    )
    for refused in elsewhere:
        assert refused.status_code == 403, refused.json
        assert refused.json["error"]["code"] == "otp_enrollment_required"
    secret, codes = enrol(restricted, clock)
    assert len(codes) == 10
    # Now the owner logs in with a code, and only with one.
    assert error_code(api_login(app, owner.email)) == "otp_required"
    full = api_login(app, owner.email, otp=code_at(secret, clock))
    assert full.status_code == 200 and full.json["scope"] == "tenant:salon"


def test_a_role_that_need_not_use_it_logs_in_as_before(app, staff_member, enable_plugin):
    enable_plugin("two_factor", required_roles=["owner"])
    answer = api_login(app, staff_member.email)
    assert answer.status_code == 200 and answer.json["scope"] == "tenant:salon"


def test_a_plugin_that_cannot_check_the_code_refuses_the_login(
    app, enrolled, clock, plugin_context_for
):
    member, secret, _ = enrolled
    with plugin_context_for("two_factor") as ctx:
        # A secret that cannot be decrypted (altered in the database): the check cannot run.
        ctx.store.set(f"secret:{member.user_id}", "not-an-encrypted-secret")
    answer = login(app, member, code_at(secret, clock))
    assert answer.status_code == 503
    assert error_code(answer) == "plugin_failed"


def test_a_business_that_switched_it_off_asks_no_code(app, enrolled, disable_plugin):
    member, _, _ = enrolled
    disable_plugin("two_factor")
    assert login(app, member).status_code == 200


def test_with_password_policy_on_wrong_codes_count_toward_its_lockout(
    app, enrolled, enable_plugin, clock
):
    member, secret, _ = enrolled
    enable_plugin("password_policy", max_attempts=3)
    for _ in range(3):
        assert error_code(login(app, member, "000000")) == "otp_invalid"
    # Locked by the password policy before the password is even checked: three wrong codes,
    # fewer than the plugin's own five.
    held = login(app, member, code_at(secret, clock))
    assert error_code(held) == "locked"
    assert "locked_until" in held.json["error"]["details"]
