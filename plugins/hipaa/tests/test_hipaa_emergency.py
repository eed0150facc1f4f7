"""Emergency access ("break glass"): a staff member whose role does not read every booking
opens one client's record for one hour by writing a reason; it is audited and every owner is
e-mailed (without the client or the reason, which the owner's page shows)."""

from __future__ import annotations

import hipaa_kit
import pytest
from hipaa_kit import enrol, pages_login

# The kit's fixtures: the app on HTTPS, HIPAA mode on with the owner enrolled.
app = hipaa_kit.app
hipaa = hipaa_kit.hipaa

PAGE = "/admin/salon/hipaa/emergency"
REASON = "Patient collapsed in the waiting room; need their booking history"


@pytest.fixture
def team(staff_member, staff_login, owner):
    """A staff member and a second owner, signed in before HIPAA mode was switched on."""
    return {"staff": staff_member, "second_owner": staff_login("owner", email="boss@example.com")}


@pytest.fixture
def ann_booking(client) -> dict:
    return client.book("2027-03-02T10:00:00+01:00")


@pytest.fixture
def bob_booking(make_client) -> dict:
    return make_client("Bob").book("2027-03-02T11:00:00+01:00")


def booking_page(member, booking) -> int:
    return member.pages.get(f"/admin/salon/bookings/{booking['reference']}").status_code


def active_grants(plugin_context_for, user_id) -> list:
    with plugin_context_for("hipaa") as ctx:
        return ctx.grants.active(user_id=user_id)


def test_a_staff_member_takes_one_clients_record_for_an_hour(
    team, hipaa, ann_booking, clock, outbox, audit_trail, plugin_context_for
):
    staff = team["staff"]
    enrol(staff, clock)
    taken = staff.submit(PAGE, {"email": " ANN@Example.com ", "reason": REASON})
    assert taken.status_code == 200
    assert 'id="emergency-taken"' in taken.text
    assert f"/admin/salon/bookings/{ann_booking['reference']}" in taken.text

    (granted,) = audit_trail(action="access.granted")
    assert granted.actor == f"user:{staff.user_id}"
    assert granted.details["grantee"] == f"user:{staff.user_id}"
    # The trail names the client by a pseudonym (their address stays outside the hashed entries).
    client_named = granted.details["subject"]
    assert client_named.startswith("client:") and "ann@" not in client_named
    assert granted.details["permission"] == "bookings.read"
    assert granted.details["reason"] == REASON
    (noted,) = audit_trail(action="plugin.hipaa.emergency_access.taken")
    assert noted.subject == client_named

    mails = outbox(kind="hipaa.emergency_access")
    assert sorted(mail.to for mail in mails) == ["boss@example.com", "owner@example.com"]
    for mail in mails:
        assert staff.email in mail.text
        # Mail is no place for whose record it was, or why.
        assert "ann@example.com" not in mail.text.lower() and "collapsed" not in mail.text

    (live,) = active_grants(plugin_context_for, staff.user_id)
    assert live.subject == "client:ann@example.com"
    clock.advance(minutes=59, seconds=59)
    assert active_grants(plugin_context_for, staff.user_id) == [live]
    clock.advance(seconds=1)
    assert active_grants(plugin_context_for, staff.user_id) == []


def test_the_record_opens_for_that_hour_only_and_only_that_clients(
    app, team, hipaa, ann_booking, bob_booking, clock
):
    staff = team["staff"]
    secret = enrol(staff, clock)
    if booking_page(staff, bob_booking) == 200:
        pytest.skip("core lets the staff role read every booking (no provider link yet)")
    assert booking_page(staff, ann_booking) == 403
    staff.submit(PAGE, {"email": "ann@example.com", "reason": REASON})
    assert booking_page(staff, ann_booking) == 200
    assert booking_page(staff, bob_booking) == 403  # one client's record, no other
    clock.advance(minutes=59)
    pages_login(app, staff, secret, clock)
    assert booking_page(staff, ann_booking) == 200
    clock.advance(minutes=1)
    pages_login(app, staff, secret, clock)
    assert booking_page(staff, ann_booking) == 403


def test_the_owner_sees_who_took_which_record_and_why(team, hipaa, ann_booking, owner, clock):
    staff = team["staff"]
    enrol(staff, clock)
    staff.submit(PAGE, {"email": "ann@example.com", "reason": REASON})
    page = owner.pages.get("/admin/salon/hipaa/support-access")
    assert 'class="emergency"' in page.text
    assert "ann@example.com" in page.text and REASON in page.text
    assert "Staff (staff@example.com)" in page.text


@pytest.mark.parametrize(
    ("email", "reason", "field"),
    [
        ("", REASON, "email"),
        ("not an address", REASON, "email"),
        ("ann@example.com\nbcc: eve@example.com", REASON, "email"),
        ("nobody@example.com", REASON, "email"),  # no bookings here
        ("ann@example.com", "", "reason"),
        ("ann@example.com", "because", "reason"),
        ("ann@example.com", "\x00" * 12, "reason"),
    ],
)
def test_a_bad_request_opens_nothing_and_tells_nobody(
    team, hipaa, ann_booking, clock, outbox, audit_trail, email, reason, field
):
    staff = team["staff"]
    enrol(staff, clock)
    answer = staff.submit(PAGE, {"email": email, "reason": reason})
    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.text
    assert audit_trail(action="access.granted") == []
    assert outbox(kind="hipaa.emergency_access") == []


def test_the_page_is_for_the_business_staff_only(app, team, hipaa, second_business, staff_login):
    other = staff_login("staff", business=second_business, email="staff@spa.example")
    assert other.pages.get(PAGE).status_code == 404
