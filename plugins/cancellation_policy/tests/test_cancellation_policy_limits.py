"""The online limits: a client may cancel or move a booking until a number of elapsed hours
before its start, at every door; staff may go past them, with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import bookwell.plugins.cancellation_policy as plugin
from bookwell.hooks import Context, TenantInfo, UserInfo

# The fixtures this folder shares (a conftest.py here would clash with the suite's own).
pytest_plugins = ["cancellation_policy_kit"]
TUESDAY_TEN = "2027-03-02T10:00:00+01:00"
DEADLINE = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # 24 hours before 09:00 UTC on 2 March
LATER_SLOT = "2027-03-02T11:00:00+01:00"


def _refusal(response, status=403):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.json["error"]


def test_exactly_at_the_limit_a_client_may_still_cancel(client, book, policy_on, clock):
    booking = book()
    clock.set(DEADLINE)
    assert client.cancel(booking)["status"] == "cancelled"


def test_a_second_past_the_limit_the_client_is_told_why_and_whom_to_call(
    client, book, policy_on, clock, reachable
):
    booking = book()
    clock.set(DEADLINE + timedelta(seconds=1))
    error = _refusal(client.post(f"/{booking['reference']}/cancel", token=booking["manage_token"]))
    assert error["code"] == "cancellation_window_passed"
    message = error["message"]
    assert "can no longer be cancelled online" in message
    assert "24 hours before" in message
    assert "Monday 1 March 2027 at 10:00" in message  # when it passed, in the business's time
    assert "+33 1 23 45 67 89" in message
    assert "hello@salon.example" in message
    assert "1 rue de la Paix" in message
    assert error["details"] == {"limit_hours": 24, "passed_at": "2027-03-01T09:00:00+00:00"}
    assert client.stored(booking).status == "confirmed"  # nothing changed


def test_without_contact_details_the_message_still_says_to_contact_the_business(
    client, book, policy_on, clock
):
    booking = book()
    clock.set(DEADLINE + timedelta(hours=1))
    error = _refusal(client.post(f"/{booking['reference']}/cancel", token=booking["manage_token"]))
    assert "please contact Salon directly" in error["message"]


def test_the_limit_is_a_setting(client, book, policy_on, clock):
    policy_on(cancel_limit_hours=2)
    booking = book()
    clock.set(datetime(2027, 3, 2, 7, 0, tzinfo=UTC))  # exactly 2 hours before
    assert client.cancel(booking)["status"] == "cancelled"
    second = book(LATER_SLOT)  # 10:00 UTC
    clock.set(datetime(2027, 3, 2, 8, 0, 1, tzinfo=UTC))  # 1 h 59 min 59 s before
    assert _refusal(client.post(f"/{second['reference']}/cancel", token=second["manage_token"]))


def test_elapsed_hours_across_the_spring_change_in_paris(client, book, policy_on, clock):
    # Sunday 28 March 2027, 10:00 summer time (08:00 UTC); the clocks went forward at 02:00.
    # 24 elapsed hours before is Saturday 09:00 winter time, not Saturday 10:00.
    booking = book("2027-03-28T10:00:00+02:00")
    clock.set(datetime(2027, 3, 27, 8, 0, tzinfo=UTC))  # Saturday 09:00 CET: exactly 24 h
    second = book("2027-03-28T10:30:00+02:00")
    clock.set(datetime(2027, 3, 27, 8, 30, tzinfo=UTC))  # Saturday 09:30 CET: 23 h 30 left
    error = _refusal(client.post(f"/{booking['reference']}/cancel", token=booking["manage_token"]))
    assert error["code"] == "cancellation_window_passed"
    assert "Saturday 27 March 2027 at 09:00" in error["message"]
    # The second one still has exactly 24 elapsed hours to go.
    assert client.cancel(second)["status"] == "cancelled"


def test_elapsed_hours_across_the_autumn_change_in_paris(client, book, policy_on, clock):
    # Sunday 31 October 2027, 10:00 winter time (09:00 UTC); the clocks went back at 03:00.
    # 24 elapsed hours before is Saturday 11:00 summer time.
    clock.set(datetime(2027, 10, 1, 8, 0, tzinfo=UTC))
    booking = book("2027-10-31T10:00:00+01:00")
    clock.set(datetime(2027, 10, 30, 9, 0, tzinfo=UTC))  # Saturday 11:00 CEST: exactly 24 h
    assert client.cancel(booking)["status"] == "cancelled"
    again = book("2027-10-31T10:30:00+01:00")
    clock.set(datetime(2027, 10, 30, 9, 30, 1, tzinfo=UTC))  # a second short of 24 h
    error = _refusal(client.post(f"/{again['reference']}/cancel", token=again["manage_token"]))
    assert "Saturday 30 October 2027 at 11:30" in error["message"]


# --- every door a client has --------------------------------------------------------------------


def test_the_manage_page_refuses_and_explains(
    client, book, policy_on, clock, reachable, manage_cancel
):
    booking = book()
    # The page was opened in time; the click comes two hours after the limit.
    answer = manage_cancel(booking, then=lambda: clock.set(DEADLINE + timedelta(hours=2)))
    assert answer.status_code == 403
    assert "can no longer be cancelled online" in answer.text
    assert "+33 1 23 45 67 89" in answer.text
    assert client.stored(booking).status == "confirmed"


def test_the_emailed_link_leads_to_the_same_refusal(
    app, client, book, policy_on, clock, outbox, reachable
):
    from bookwell.core.testing import csrf_token_of

    booking = book()
    mail = next(m for m in outbox(kind="booking.confirmed") if m.booking == booking["reference"])
    link = next(word for word in mail.text.split() if "/manage/" in word)
    path = link.split("://", 1)[1].split("/", 1)[1]
    browser = app.test_client()
    page = browser.get("/" + path + "&step=cancel")
    assert page.status_code == 200
    clock.set(DEADLINE + timedelta(minutes=1))  # the link was opened in time, used too late
    answer = browser.post(
        f"/book/salon/manage/{booking['reference']}/cancel",
        data={"csrf_token": csrf_token_of(page), "token": booking["manage_token"]},
    )
    assert answer.status_code == 403
    assert "can no longer be cancelled online" in answer.text
    assert client.stored(booking).status == "confirmed"


def test_the_manage_page_refuses_a_late_move(client, book, policy_on, clock, manage_reschedule):
    booking = book()
    late = lambda: clock.set(DEADLINE + timedelta(hours=2))  # noqa: E731
    answer = manage_reschedule(booking, LATER_SLOT, then=late)
    assert answer.status_code == 403
    assert "can no longer be moved online" in answer.text
    assert client.stored(booking).starts_at == datetime(2027, 3, 2, 9, 0, tzinfo=UTC)


def test_the_api_refuses_a_late_move(client, book, policy_on, clock):
    booking = book()
    clock.set(DEADLINE + timedelta(seconds=1))
    answer = client.post(
        f"/{booking['reference']}/reschedule", token=booking["manage_token"], start=LATER_SLOT
    )
    assert _refusal(answer)["code"] == "cancellation_window_passed"


def test_a_client_account_is_held_to_the_limit_like_a_client_without_one(clock):
    # The account pages list bookings and change none; a signed-in client reaches the guards
    # with a client's role, which the policy treats as any client.
    tenant = TenantInfo(1, "salon", "Salon", "Europe/Paris", phone="+33 1 23")
    from bookwell.hooks import BookingInfo, ProviderInfo, ServiceInfo

    booking = BookingInfo(
        "AAAA",
        datetime(2027, 3, 2, 9, tzinfo=UTC),
        datetime(2027, 3, 2, 9, 30, tzinfo=UTC),
        ServiceInfo(1, "Cut", 30, 3000),
        ProviderInfo(1, "Ana"),
        "Ann",
        "ann@example.com",
        None,
        "confirmed",
    )
    settings = {**{s.key: s.default for s in plugin.MANIFEST.settings}}
    late = DEADLINE + timedelta(hours=1)
    account = UserInfo(7, "ann@example.com", "Ann", "client", 1)
    staff = UserInfo(8, "staff@example.com", "Sam", "staff", 1)

    def ctx(actor):
        return Context(tenant=tenant, now=late, actor=actor, booking=booking)

    # The block list is not asked of staff; a client's check is stubbed to "not blocked" by
    # giving a context whose tables answer nothing.
    class NoRows:
        def select(self, *args, **kwargs):
            return []

    class Digests:
        def digest(self, text):
            return text

    import dataclasses

    as_client = dataclasses.replace(ctx(account), tables=NoRows(), secrets=Digests())
    refusal = plugin.before_cancel(as_client, settings, None)
    assert refusal is not None and refusal.code == "cancellation_window_passed"
    assert plugin.before_cancel(ctx(staff), settings, "client phoned, ill") is None


def test_an_early_cancel_and_move_go_through_every_client_door(
    client, book, policy_on, manage_cancel, manage_reschedule
):
    by_api = book()
    assert client.reschedule(by_api, LATER_SLOT)["start"] == LATER_SLOT
    assert client.cancel(by_api)["status"] == "cancelled"
    by_page = book("2027-03-03T10:00:00+01:00")
    assert manage_reschedule(by_page, "2027-03-03T11:00:00+01:00").status_code == 302
    assert manage_cancel(by_page).status_code == 302
    assert client.stored(by_page).status == "cancelled"


# --- moves --------------------------------------------------------------------------------------


def test_a_client_may_move_a_booking_at_most_max_reschedules_times(client, book, policy_on):
    policy_on(max_reschedules=1)
    booking = book()
    client.reschedule(booking, LATER_SLOT)
    answer = client.post(
        f"/{booking['reference']}/reschedule",
        token=booking["manage_token"],
        start="2027-03-02T12:00:00+01:00",
    )
    error = _refusal(answer)
    assert error["code"] == "max_reschedules_reached"
    assert "already been moved once" in error["message"]
    assert client.stored(booking).reschedule_count == 1


def test_staff_may_move_a_booking_past_the_limits(client, book, policy_on, clock, owner):
    policy_on(max_reschedules=0)
    booking = book()
    clock.set(DEADLINE + timedelta(hours=3))
    owner.sign_in_again()
    answer = owner.api.post(
        f"bookings/{booking['reference']}/reschedule", json={"start": LATER_SLOT}
    )
    assert answer.status_code == 200, answer.json
    assert client.stored(booking).reschedule_count == 1


# --- staff past the limit -----------------------------------------------------------------------


def test_staff_cancel_past_the_limit_with_a_reason_which_is_recorded(
    client, book, policy_on, clock, owner, audit_trail
):
    booking = book()
    clock.set(DEADLINE + timedelta(hours=5))
    owner.sign_in_again()
    answer = owner.submit(
        f"/admin/salon/bookings/{booking['reference']}/cancel",
        {"reason": "Client phoned: ill"},
        form_on=f"/admin/salon/bookings/{booking['reference']}",
    )
    assert answer.status_code == 302
    stored = client.stored(booking)
    assert stored.status == "cancelled"
    assert stored.cancellation_reason == "Client phoned: ill"
    cancelled = audit_trail(action="booking.cancelled")[-1]
    assert cancelled.details["reason"] == "Client phoned: ill"


def test_staff_cancel_past_the_limit_without_a_reason_is_refused_on_the_reason(
    client, book, policy_on, clock, owner
):
    booking = book()
    clock.set(DEADLINE + timedelta(hours=5))
    owner.sign_in_again()
    answer = owner.api.post(f"bookings/{booking['reference']}/cancel", json={})
    error = _refusal(answer, 422)
    assert error["code"] == "reason_required"
    assert "give a reason" in error["fields"]["reason"]
    assert client.stored(booking).status == "confirmed"
    answer = owner.api.post(
        f"bookings/{booking['reference']}/cancel", json={"reason": "Snow: shop closed"}
    )
    assert answer.status_code == 200
    assert answer.json["cancellation_reason"] == "Snow: shop closed"


def test_staff_need_no_reason_before_the_limit(client, book, policy_on, owner):
    booking = book()
    answer = owner.api.post(f"bookings/{booking['reference']}/cancel", json={})
    assert answer.status_code == 200
    assert answer.json["cancellation_reason"] == "cancelled by the business"


# --- fail closed, walled off, off -------------------------------------------------------------


@pytest.mark.parametrize("action", ["cancel", "reschedule"])
def test_a_crash_of_the_policy_refuses_the_change(client, book, policy_on, monkeypatch, action):
    booking = book()

    def broken(*args, **kwargs):
        raise RuntimeError("the policy's store is gone")

    monkeypatch.setattr(plugin.policy, "in_time", broken)
    body = {"token": booking["manage_token"]}
    if action == "reschedule":
        body["start"] = LATER_SLOT
    answer = client.post(f"/{booking['reference']}/{action}", **body)
    assert _refusal(answer, 503)["code"] == "plugin_failed"
    stored = client.stored(booking)
    assert stored.status == "confirmed" and stored.reschedule_count == 0


def test_a_business_without_the_policy_lets_clients_cancel_late(
    client, book, policy_on, second_client, clock
):
    other = second_client.book(TUESDAY_TEN)  # the spa has not switched the policy on
    clock.set(DEADLINE + timedelta(hours=5))
    assert second_client.cancel(other)["status"] == "cancelled"


def test_settings_are_bounded(enable_plugin):
    from bookwell.core.testing import InvalidSettings

    with pytest.raises(InvalidSettings):
        enable_plugin("cancellation_policy", refund_percent_before=101)
    with pytest.raises(InvalidSettings):
        enable_plugin("cancellation_policy", text="   ")


# --- the manage page says so before the client tries ------------------------------------------


def _manage_page(client, booking, **query):
    return client.http.get(
        f"/book/salon/manage/{booking['reference']}",
        query_string={"token": booking["manage_token"], **query},
    )


def test_the_manage_page_offers_both_while_in_time(client, book, policy_on):
    page = _manage_page(client, book())
    assert "Cancel the booking" in page.text and "Change the time" in page.text
    assert "can no longer" not in page.text


def test_past_the_limit_the_manage_page_shows_why_instead_of_the_buttons(
    client, book, policy_on, clock, reachable
):
    booking = book()
    clock.set(DEADLINE + timedelta(minutes=5))
    page = _manage_page(client, booking)
    assert page.status_code == 200
    assert "Cancel the booking" not in page.text and "Change the time" not in page.text
    assert "can no longer be cancelled online" in page.text
    assert "can no longer be moved online" in page.text
    assert "+33 1 23 45 67 89" in page.text
    # The cancel step itself shows no form either.
    step = _manage_page(client, booking, step="cancel")
    assert "Yes, cancel it" not in step.text


def test_after_the_last_move_only_the_cancel_button_is_left(client, book, policy_on):
    policy_on(max_reschedules=1)
    booking = book()
    client.reschedule(booking, LATER_SLOT)
    page = _manage_page(client, booking)
    assert "Cancel the booking" in page.text and "Change the time" not in page.text
    assert "already been moved once" in page.text


def test_a_failing_notice_leaves_the_buttons_and_the_guards_decide(
    client, book, policy_on, monkeypatch
):
    booking = book()

    def broken(*args, **kwargs):
        raise RuntimeError("cannot tell")

    monkeypatch.setattr(plugin.blocks, "is_blocked", broken)
    page = _manage_page(client, booking)
    assert page.status_code == 200
    assert "Cancel the booking" in page.text
    refused = client.post(f"/{booking['reference']}/cancel", token=booking["manage_token"])
    assert refused.status_code == 503  # the guard, failing too, still refuses
