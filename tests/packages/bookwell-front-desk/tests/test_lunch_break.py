"""The front desk's lunch break: not offered, and not bookable, through Bookwell's public API."""

from datetime import datetime

import pytest

TUESDAY, SATURDAY = "2027-03-02", "2027-03-06"


def offered(client, day, business=None):
    """The local start times (HH:MM, Paris) offered on ``day``, with their providers."""
    business = business or client.business
    answer = client.http.get(
        f"/api/v1/tenants/{business.slug}/availability",
        query_string={"service_id": business.service_id, "from": day, "to": day},
    )
    assert answer.status_code == 200, answer.json
    return {
        (datetime.fromisoformat(slot["start"]).strftime("%H:%M"), slot["provider_id"])
        for slot in answer.json["slots"]
    }


def times(client, day, business=None):
    return {start for start, _ in offered(client, day, business)}


@pytest.fixture
def front_desk(enable_plugin):
    return enable_plugin("front_desk")  # lunch 12:30-13:30, Monday to Friday


def test_the_lunch_break_is_not_offered_by_any_provider(client, front_desk):
    starts = offered(client, TUESDAY)
    business = client.business
    for provider in (business.provider_id, business.second_provider_id):
        assert ("12:00", provider) in starts  # ends as lunch begins
        assert ("12:30", provider) not in starts
        assert ("13:00", provider) not in starts
        assert ("13:30", provider) in starts


def test_a_day_without_a_lunch_break_offers_every_time(client, front_desk):
    assert {"12:30", "13:00"} <= times(client, SATURDAY)


def test_the_business_chooses_the_days_and_hours(client, enable_plugin):
    enable_plugin("front_desk", lunch_days=["saturday"], lunch_start="14:00", lunch_end="14:30")
    assert {"12:30", "13:00", "14:00"} <= times(client, TUESDAY)
    saturday = times(client, SATURDAY)
    assert "14:00" not in saturday
    assert {"13:30", "14:30"} <= saturday


def test_a_booking_at_lunch_time_is_refused(client, front_desk):
    for start in ("2027-03-02T12:30:00+01:00", "2027-03-02T12:15:00+01:00"):
        answer = client.try_book(start)
        assert answer.status_code == 409
        error = answer.json["error"]
        assert error["code"] == "front_desk_lunch"
        assert "12:30 to 13:30" in error["fields"]["start"]
        assert [refusal["plugin"] for refusal in error["refusals"]] == ["front_desk"]
    assert client.try_book("2027-03-02T12:00:00+01:00").status_code == 201


def test_moving_a_booking_into_lunch_is_refused(client, front_desk):
    booking = client.book("2027-03-02T10:00:00+01:00")
    answer = client.post(
        f"/{booking['reference']}/reschedule",
        token=booking["manage_token"],
        start="2027-03-02T13:00:00+01:00",
    )
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "front_desk_lunch"
    assert client.get(booking)["start"] == "2027-03-02T10:00:00+01:00"
    moved = client.reschedule(booking, "2027-03-02T14:00:00+01:00")
    assert moved["start"] == "2027-03-02T14:00:00+01:00"


def test_a_business_that_has_not_enabled_it_sees_no_difference(client):
    assert {"12:30", "13:00"} <= times(client, TUESDAY)
    assert client.book("2027-03-02T12:30:00+01:00")["status"] == "confirmed"


def test_another_business_keeps_its_own_hours(client, front_desk, second_business, second_client):
    assert {"12:30", "13:00"} <= times(second_client, TUESDAY)
    assert second_client.book("2027-03-02T12:30:00+01:00")["status"] == "confirmed"
    assert "12:30" not in times(client, TUESDAY)
