"""The staff pages: a staff member sets up an app on "Two-step login" (QR code and key on the
page, confirmed with a code), logs in on the login page with a code as its further step, renews
recovery codes; an owner resets a staff member's set-up."""

from __future__ import annotations

import re

import pytest
from two_factor_kit import STEP, code_at, enrol

from bookwell.core.testing import csrf_token_of, page_login

PAGE = "/admin/salon/two_factor/"


def shown_secret(page) -> str:
    found = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page.text)
    assert found, page.text[:2000]
    return found.group(1)


def test_a_staff_member_sets_it_up_on_the_page(staff_member, enable_plugin, clock, outbox):
    enable_plugin("two_factor")
    page = staff_member.pages.get(PAGE)
    assert page.status_code == 200
    assert '<figure class="qr-code" id="qr-code"><svg' in page.text  # drawn inline
    secret = shown_secret(page)
    assert shown_secret(staff_member.pages.get(PAGE)) == secret  # the same until confirmed
    wrong = staff_member.submit(f"{PAGE}confirm", {"code": "12345x"}, form_on=PAGE)
    assert wrong.status_code == 422
    done = staff_member.submit(f"{PAGE}confirm", {"code": code_at(secret, clock)}, form_on=PAGE)
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code></li>", done.text)
    assert len(codes) == 10
    assert "two-factor-on" in done.text
    assert outbox(kind="two_factor.enrolled")
    status = staff_member.pages.get(PAGE)
    assert "Recovery codes left: 10" in status.text and "totp-secret" not in status.text


def test_a_wrong_code_on_the_page_keeps_the_same_set_up(staff_member, enable_plugin, clock):
    enable_plugin("two_factor")
    secret = shown_secret(staff_member.pages.get(PAGE))
    wrong = f"{(int(code_at(secret, clock)) + 7) % 1_000_000:06d}"
    refused = staff_member.submit(f"{PAGE}confirm", {"code": wrong}, form_on=PAGE)
    assert refused.status_code == 422
    assert "That code is not right" in refused.text and shown_secret(refused) == secret


def test_the_login_page_asks_for_the_code_as_a_further_step(
    app, staff_member, enable_plugin, clock
):
    enable_plugin("two_factor")
    secret, codes = enrol(staff_member.api, clock)
    asked, browser = page_login(app, staff_member.email)
    assert asked.status_code == 200
    assert "6-digit code from your authenticator app (or a recovery code)" in asked.text
    step = "/admin/salon/login/step"
    wrong = browser.post(step, data={"csrf_token": csrf_token_of(asked), "answer": "000000"})
    assert wrong.status_code == 401 and 'name="answer"' in wrong.text  # asked again
    right = browser.post(
        step, data={"csrf_token": csrf_token_of(wrong), "answer": code_at(secret, clock)}
    )
    assert right.status_code == 302
    assert browser.get("/admin/salon/").status_code in (200, 302)
    # A recovery code goes in the same field.
    asked, browser = page_login(app, staff_member.email)
    spent = browser.post(step, data={"csrf_token": csrf_token_of(asked), "answer": codes[0]})
    assert spent.status_code == 302


def test_renewing_recovery_codes_on_the_page_needs_a_current_code(
    app, staff_member, enable_plugin, clock
):
    enable_plugin("two_factor")
    secret, old = enrol(staff_member.api, clock)
    refused = staff_member.submit(f"{PAGE}recovery-codes", {"code": old[0]}, form_on=PAGE)
    assert refused.status_code == 422 and "That code is not right" in refused.text
    renewed = staff_member.submit(
        f"{PAGE}recovery-codes", {"code": code_at(secret, clock)}, form_on=PAGE
    )
    assert renewed.status_code == 200
    new = re.findall(r"<li><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code></li>", renewed.text)
    assert len(new) == 10 and not set(new) & set(old)


@pytest.fixture
def owner_and_enrolled_staff(owner, staff_member, enable_plugin, clock):
    """The owner signed in before the plugin was on (their sessions are full), and a staff
    member with an app set up."""
    enable_plugin("two_factor")
    enrol(staff_member.api, clock)
    return owner, staff_member


def test_an_owner_resets_a_staff_members_set_up(app, owner_and_enrolled_staff, outbox, audit_trail):
    owner, member = owner_and_enrolled_staff
    listed = owner.pages.get(f"{PAGE}staff")
    assert listed.status_code == 200 and "staff@example.com" in listed.text
    done = owner.submit(f"{PAGE}staff/{member.user_id}/reset", form_on=f"{PAGE}staff")
    assert done.status_code == 302
    assert "Nobody has set up an app yet" in owner.pages.get(f"{PAGE}staff").text
    asked, _ = page_login(app, member.email)
    assert asked.status_code == 302  # no code asked: staff need not use it
    entry = audit_trail(action="plugin.two_factor.reset")[0]
    assert entry.subject == f"user:{member.user_id}" and entry.actor == f"user:{owner.user_id}"
    assert outbox(kind="two_factor.reset")[0].to == member.email


def test_only_the_owner_may_reset(owner_and_enrolled_staff):
    owner, member = owner_and_enrolled_staff
    assert member.pages.get(f"{PAGE}staff").status_code == 403
    page = member.pages.get(PAGE)
    refused = member.pages.post(
        f"{PAGE}staff/{member.user_id}/reset", data={"csrf_token": csrf_token_of(page)}
    )
    assert refused.status_code == 403


def test_a_role_that_must_enrol_can_do_nothing_but_set_it_up(app, owner, enable_plugin, clock):
    enable_plugin("two_factor")
    answer, browser = page_login(app, owner.email)
    # Core starts a browser session restricted to setting it up, on the plugin's page.
    assert answer.status_code == 303 and answer.headers["Location"].endswith(PAGE)
    page = browser.get(PAGE)
    assert page.status_code == 200
    sent_on = browser.get("/admin/salon/")
    assert sent_on.status_code == 303 and sent_on.headers["Location"].endswith(PAGE)
    assert browser.get("/admin/salon/staff").status_code == 303
    secret = shown_secret(page)
    done = browser.post(
        f"{PAGE}confirm",
        data={"csrf_token": csrf_token_of(page), "code": code_at(secret, clock)},
    )
    assert done.status_code == 200
    # The next login asks for a code, and with one it is a full session.
    clock.advance(seconds=STEP)
    asked, again = page_login(app, owner.email)
    assert asked.status_code == 200 and 'name="answer"' in asked.text
    full = again.post(
        "/admin/salon/login/step",
        data={"csrf_token": csrf_token_of(asked), "answer": code_at(secret, clock)},
    )
    assert full.status_code == 302
    assert again.get("/admin/salon/").status_code == 200


def test_a_plugin_that_cannot_check_the_code_refuses_the_page_login(
    app, staff_member, enable_plugin, clock, plugin_context_for
):
    enable_plugin("two_factor")
    secret, _ = enrol(staff_member.api, clock)
    asked, browser = page_login(app, staff_member.email)
    with plugin_context_for("two_factor") as ctx:
        ctx.store.set(f"secret:{staff_member.user_id}", "not-an-encrypted-secret")
    refused = browser.post(
        "/admin/salon/login/step",
        data={"csrf_token": csrf_token_of(asked), "answer": code_at(secret, clock)},
    )
    assert refused.status_code == 503
    assert browser.get("/admin/salon/").status_code == 302  # not signed in: to the login page


def test_sessions_from_before_the_plugin_was_on_can_do_nothing_but_set_it_up(
    owner, enable_plugin, clock
):
    # The owner signed in (pages and API) while two-step login was off...
    assert owner.pages.get("/admin/salon/").status_code == 200
    assert owner.api.get("plugins").status_code == 200
    enable_plugin("two_factor")
    # ...and must now set it up before anything else, on either side.
    sent = owner.pages.get("/admin/salon/")
    assert sent.status_code == 303 and sent.headers["Location"] == PAGE
    refused = owner.api.get("plugins")
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "otp_enrollment_required"
    assert owner.pages.get(PAGE).status_code == 200
    enrol(owner.api, clock)
    assert owner.pages.get("/admin/salon/").status_code == 200
    assert owner.api.get("plugins").status_code == 200


def test_roles_not_required_keep_their_sessions(staff_member, enable_plugin):
    assert staff_member.pages.get("/admin/salon/").status_code == 200
    enable_plugin("two_factor")  # owner and manager only
    assert staff_member.pages.get("/admin/salon/").status_code == 200
