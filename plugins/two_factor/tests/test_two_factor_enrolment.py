"""Setting up an app through the API: what is shown (an inline SVG QR code, a 160-bit
secret), what is kept (only encrypted), confirmation, recovery codes renewed, the wall between
businesses, key rotation, and the operator's reset."""

from __future__ import annotations

import re

import pytest
from two_factor_kit import STEP, code_at, encodes, enrol, error_code, login, secret_of

from bookwell.core.testing import api_login


@pytest.fixture
def on(enable_plugin):
    return enable_plugin("two_factor")


def test_the_set_up_shows_an_inline_qr_code_of_a_160_bit_secret(app, staff_member, on):
    answer = staff_member.api.post("me/totp")
    assert answer.status_code == 200
    uri = answer.json["otpauth_uri"]
    assert uri.startswith("otpauth://totp/Salon:staff%40example.com?")
    assert len(secret_of(uri)) == 32  # base32: 160 bits
    svg = answer.json["qr_svg"]
    assert svg.startswith("<svg") and encodes(svg, uri)
    # Nothing fetched, nothing the pages' Content-Security-Policy would block.
    assert not re.search(r"href|src=|style=|<script", svg)


def test_the_secret_is_kept_only_encrypted(app, staff_member, on, clock, plugin_context_for):
    secret, codes = enrol(staff_member.api, clock)
    with plugin_context_for("two_factor") as ctx:
        kept = ctx.store.get(f"secret:{staff_member.user_id}")
        recovery = ctx.store.get(f"recovery:{staff_member.user_id}")
    assert secret not in kept and secret.lower() not in kept.lower()
    assert all(code.replace("-", "") not in str(recovery) for code in codes)


def test_a_wrong_code_does_not_turn_it_on(app, staff_member, on, clock):
    secret = secret_of(staff_member.api.post("me/totp").json["otpauth_uri"])
    wrong = f"{(int(code_at(secret, clock)) + 1) % 1_000_000:06d}"
    refused = staff_member.api.post("me/totp/confirm", json={"code": wrong})
    assert refused.status_code == 422
    assert error_code(refused) == "otp_invalid"
    assert login(app, staff_member).status_code == 200  # no code asked: not on
    confirmed = staff_member.api.post("me/totp/confirm", json={"code": code_at(secret, clock)})
    assert confirmed.status_code == 200


def test_confirming_with_nothing_pending_or_no_code_says_so(app, staff_member, on):
    assert error_code(staff_member.api.post("me/totp/confirm", json={"code": "123456"})) == (
        "otp_enrollment_not_started"
    )
    staff_member.api.post("me/totp")
    for body in ({}, {"code": ""}, {"code": 123456}, {"code": "1" * 41}):
        answer = staff_member.api.post("me/totp/confirm", json=body)
        assert answer.status_code == 422 and error_code(answer) == "invalid", body


def test_setting_it_up_is_e_mailed_and_audited(app, staff_member, on, clock, outbox, audit_trail):
    enrol(staff_member.api, clock)
    mails = outbox(kind="two_factor.enrolled")
    assert [mail.to for mail in mails] == ["staff@example.com"]
    assert [e.subject for e in audit_trail(action="plugin.two_factor.enrolled")] == [
        f"user:{staff_member.user_id}"
    ]


def test_an_enrolled_account_moves_to_a_new_device_only_with_a_current_code(
    app, staff_member, on, clock
):
    secret, _ = enrol(staff_member.api, clock)
    assert error_code(staff_member.api.post("me/totp")) == "invalid"
    assert error_code(staff_member.api.post("me/totp", json={"code": "000000"})) == "otp_invalid"
    moved = staff_member.api.post("me/totp", json={"code": code_at(secret, clock)})
    assert moved.status_code == 200
    new_secret = secret_of(moved.json["otpauth_uri"])
    clock.advance(seconds=STEP)
    assert login(app, staff_member, code_at(secret, clock)).status_code == 200  # still the old
    clock.advance(seconds=STEP)
    staff_member.api.post("me/totp/confirm", json={"code": code_at(new_secret, clock)})
    clock.advance(seconds=STEP)
    assert error_code(login(app, staff_member, code_at(secret, clock))) == "otp_invalid"
    assert login(app, staff_member, code_at(new_secret, clock)).status_code == 200


def test_new_recovery_codes_void_the_old_ones(app, staff_member, on, clock, outbox):
    secret, old = enrol(staff_member.api, clock)
    assert error_code(staff_member.api.post("me/totp/recovery-codes", json={"code": old[0]})) == (
        "otp_invalid"  # a recovery code cannot make more of them
    )
    renewed = staff_member.api.post("me/totp/recovery-codes", json={"code": code_at(secret, clock)})
    assert renewed.status_code == 200
    new = renewed.json["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert error_code(login(app, staff_member, old[1])) == "otp_invalid"
    assert login(app, staff_member, new[0]).status_code == 200
    assert outbox(kind="two_factor.recovery_codes")


def test_another_business_cannot_reach_this_ones_set_up(
    app, staff_member, on, second_business, staff_login, enable_plugin, clock
):
    enable_plugin("two_factor", business=second_business)
    theirs = staff_login("staff", business=second_business)  # staff@example.com, at spa
    for path in ("me/totp", "me/totp/confirm", "me/totp/recovery-codes"):
        answer = theirs.api.post(f"/api/v1/tenants/salon/{path}", json={"code": "123456"})
        assert answer.status_code == 404, path
    # The same address set up at salon asks no code at spa.
    enrol(staff_member.api, clock)
    assert api_login(app, "staff@example.com", business=second_business).status_code == 200
    assert error_code(login(app, staff_member)) == "otp_required"


def test_a_business_without_the_plugin_has_no_set_up(app, staff_member):
    assert staff_member.api.post("me/totp").status_code == 404


def test_codes_still_verify_after_the_instance_key_is_rotated(
    app, staff_member, on, clock, bookwell_cli, make_app
):
    secret, codes = enrol(staff_member.api, clock)
    rotated = bookwell_cli(
        "keys", "rotate", settings={"ENCRYPTION_KEY": "the-new-key-9x,test-encryption-key"}
    )
    assert rotated.exit_code == 0, rotated.output
    assert "re-wrapped 1 tenant key" in rotated.output
    # A process that knows only the new key reads the secret and the recovery codes.
    rekeyed = make_app(ENCRYPTION_KEY="the-new-key-9x")
    assert login(rekeyed, staff_member, code_at(secret, clock)).status_code == 200
    assert login(rekeyed, staff_member, codes[0]).status_code == 200


def test_the_operator_resets_an_account(
    app, staff_member, on, clock, bookwell_cli, outbox, audit_trail
):
    enrol(staff_member.api, clock)
    done = bookwell_cli("two_factor", "reset", "--tenant", "salon", "--email", "Staff@Example.com")
    assert done.exit_code == 0, done.output
    assert login(app, staff_member).status_code == 200  # no code asked any more
    assert outbox(kind="two_factor.reset")[0].to == "staff@example.com"
    assert audit_trail(action="plugin.two_factor.reset")[0].details["by"] == "operator"
    again = bookwell_cli("two_factor", "reset", "--tenant", "salon", "--email", "staff@example.com")
    assert again.exit_code != 0 and "has no authenticator app" in again.output
    unknown = bookwell_cli("two_factor", "reset", "--tenant", "nowhere", "--email", "a@b.com")
    assert unknown.exit_code != 0
