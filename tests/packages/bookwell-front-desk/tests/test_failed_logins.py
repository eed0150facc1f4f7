"""Failed logins to staff accounts: counted per account and per hour in the plugin's store, the
front desk told once at the chosen count, each staff member shown their own count."""

import pytest
from conftest import log_in, log_in_on_the_page

DESK = "desk@salon.example"


@pytest.fixture
def front_desk(staff_member, enable_plugin):
    return enable_plugin("front_desk", alert_email=DESK, alert_after=3)


def fail(app, times, email="staff@example.com", business="salon"):
    for _ in range(times):
        answer = log_in(app, email, password="not the password", business=business)
        assert answer.json["error"]["code"] == "invalid_credentials"


def my_count(member, business="salon"):
    """The count on the front desk page, as ``member`` (a staff fixture, or a signed-in browser)
    sees it."""
    browser = getattr(member, "pages", member)
    answer = browser.get(f"/admin/{business}/front_desk/")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    return int(page.split("Failed logins to your account in the last hour: ")[1].split("<")[0])


def test_the_front_desk_is_told_once_at_the_chosen_count(app, front_desk, outbox, audit_trail):
    fail(app, 2)
    assert outbox(kind="front_desk.failed_logins") == []
    fail(app, 1)
    [mail] = outbox(kind="front_desk.failed_logins")
    assert mail.to == DESK
    assert mail.subject == "3 failed logins to staff@example.com"
    fail(app, 2)
    assert len(outbox(kind="front_desk.failed_logins")) == 1
    [entry] = audit_trail(action="plugin.front_desk.failed_logins.alerted")
    assert entry.details == {"failures": 3}


def test_each_staff_member_sees_their_own_count(app, front_desk, staff_member, owner):
    fail(app, 2)
    answer, _ = log_in_on_the_page(app, "staff@example.com", password="still not it")
    assert answer.status_code != 302  # the pages' failures count too
    assert my_count(staff_member) == 3
    assert my_count(owner) == 0


def signed_in(app, email="staff@example.com"):
    # A fresh sign-in: the staff fixtures' sessions end once the clock has moved past their
    # idle limit.
    answer, browser = log_in_on_the_page(app, email)
    assert answer.status_code == 302
    return browser


def test_the_count_lasts_an_hour_from_the_first_failure(app, front_desk, clock, outbox):
    fail(app, 2)
    clock.advance(minutes=59)
    assert my_count(signed_in(app)) == 2
    clock.advance(minutes=2)
    assert my_count(signed_in(app)) == 0
    fail(app, 2)
    assert outbox(kind="front_desk.failed_logins") == []  # 2 + 2, but not within an hour
    fail(app, 1)
    assert len(outbox(kind="front_desk.failed_logins")) == 1


def test_without_an_address_nobody_is_told(app, staff_member, enable_plugin, outbox):
    enable_plugin("front_desk", alert_after=2)
    fail(app, 3)
    assert outbox(kind="front_desk.failed_logins") == []
    assert my_count(staff_member) == 3


def test_unknown_addresses_and_right_passwords_count_for_nobody(app, front_desk, outbox):
    fail(app, 5, email="nobody@example.com")
    assert log_in(app, "staff@example.com").status_code == 200
    assert outbox(kind="front_desk.failed_logins") == []


def test_a_business_that_has_not_enabled_it_sees_no_difference(app, staff_member, outbox):
    fail(app, 5)
    assert outbox() == []
    assert staff_member.pages.get("/admin/salon/front_desk/").status_code == 404


def test_failures_at_another_business_never_count_here(
    app, front_desk, enable_plugin, second_business, staff_login, staff_member, outbox
):
    spa_staff = staff_login("staff", business=second_business)  # staff@example.com there too
    enable_plugin("front_desk", business=second_business, alert_after=2)
    fail(app, 2, business="spa")
    assert my_count(spa_staff, "spa") == 2
    assert my_count(staff_member) == 0
    fail(app, 2)
    assert outbox(kind="front_desk.failed_logins") == []
    assert outbox(business=second_business) == []  # the spa gave no address
