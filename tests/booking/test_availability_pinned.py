"""Availability pinned down before it is made fast (issue 17, point 0): each test here is a wrong
booking that a plausible slip in availability let through, asked through the public API."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from conftest import booking_body

from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.storage import db
from bookwell.core.storage.models import TimeOff

SALON = "/api/v1/tenants/salon"


def slots(client, slug, service_id, day_from, day_to=None, provider_id=None):
    url = (
        f"/api/v1/tenants/{slug}/availability?service_id={service_id}"
        f"&from={day_from}&to={day_to or day_from}"
    )
    if provider_id:
        url += f"&provider_id={provider_id}"
    response = client.get(url)
    assert response.status_code == 200, response.json
    return response.json["slots"]


def starts(found):
    return [slot["start"] for slot in found]


def book(client, slug, service_id, provider_id, start, name="Ann"):
    return client.post(
        f"/api/v1/tenants/{slug}/bookings",
        json={
            "service_id": service_id,
            "provider_id": provider_id,
            "start": start,
            "client": {"name": name, "email": f"{name.lower()}@example.com"},
        },
    )


def test_time_off_earlier_in_the_day_than_a_booking_still_blocks(app, client, business):
    assert (
        client.post(
            f"{SALON}/bookings", json=booking_body(business, "2027-03-02T14:00:00+01:00")
        ).status_code
        == 201
    )
    with db.write_transaction(app) as session:
        session.add(
            TimeOff(
                provider_id=business.provider_id,
                starts_at=datetime(2027, 3, 2, 9, 0, tzinfo=UTC),  # 10:00-11:00 in Paris
                ends_at=datetime(2027, 3, 2, 10, 0, tzinfo=UTC),
                reason="dentist",
            )
        )
    found = starts(
        slots(client, "salon", business.service_id, "2027-03-02", None, business.provider_id)
    )
    assert "2027-03-02T09:30:00+01:00" in found
    assert "2027-03-02T10:00:00+01:00" not in found
    assert "2027-03-02T10:30:00+01:00" not in found
    assert "2027-03-02T11:00:00+01:00" in found
    assert "2027-03-02T14:00:00+01:00" not in found
    refused = client.post(
        f"{SALON}/bookings", json=booking_body(business, "2027-03-02T10:00:00+01:00", name="Bob")
    )
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "slot_unavailable"


def test_time_off_and_bookings_interleaved_over_the_day(app, client, business):
    for start in ("2027-03-02T09:30:00+01:00", "2027-03-02T13:00:00+01:00"):
        response = client.post(f"{SALON}/bookings", json=booking_body(business, start))
        assert response.status_code == 201
    with db.write_transaction(app) as session:
        for hour in (11, 15):  # 12:00 and 16:00 in Paris, half an hour each
            session.add(
                TimeOff(
                    provider_id=business.provider_id,
                    starts_at=datetime(2027, 3, 2, hour, 0, tzinfo=UTC),
                    ends_at=datetime(2027, 3, 2, hour, 30, tzinfo=UTC),
                )
            )
    found = starts(
        slots(client, "salon", business.service_id, "2027-03-02", None, business.provider_id)
    )
    taken = {"09:30", "12:00", "13:00", "16:00"}
    expected = [
        f"2027-03-02T{hour:02}:{minute:02}:00+01:00"
        for hour in range(9, 17)
        for minute in (0, 30)
        if f"{hour:02}:{minute:02}" not in taken
    ]
    assert found == expected


@pytest.fixture
def new_york(app):
    """A business in New York open every day 09:00-22:00, hourly appointments."""
    with db.write_transaction(app) as session:
        tenant = create_tenant(
            session,
            "ny",
            name="New York",
            timezone="America/New_York",
            now=datetime(2027, 1, 1, tzinfo=UTC),
        )
        service = add_service(
            session, tenant, "Visit", duration_minutes=60, slot_step_minutes=60, horizon_days=365
        )
        hours = {weekday: [(time(9), time(22))] for weekday in range(7)}
        provider = add_provider(session, tenant, "Dee", [service], hours)
        return service.id, provider.id


def test_an_evening_booking_in_new_york_blocks_its_slot(client, new_york):
    """20:00 in New York is already the next day in UTC: the day's end must be New York's."""
    service_id, provider_id = new_york
    first = book(client, "ny", service_id, provider_id, "2027-03-02T20:00:00-05:00")
    assert first.status_code == 201, first.json
    second = book(client, "ny", service_id, provider_id, "2027-03-02T20:00:00-05:00", "Bob")
    assert second.status_code == 409
    found = starts(slots(client, "ny", service_id, "2027-03-02"))
    assert found[0] == "2027-03-02T09:00:00-05:00"
    assert found[-1] == "2027-03-02T21:00:00-05:00"
    assert "2027-03-02T20:00:00-05:00" not in found
    assert len(found) == 12


@pytest.fixture
def late_clinic(app):
    """A clinic in UTC open 00:00-06:00 and 18:00-23:30. "Visit" lasts an hour with an hour of
    buffer either side on a 30-minute step; "Quick" is half an hour with none."""
    with db.write_transaction(app) as session:
        tenant = create_tenant(
            session, "late", name="Late", timezone="UTC", now=datetime(2027, 1, 1, tzinfo=UTC)
        )
        visit = add_service(
            session,
            tenant,
            "Visit",
            duration_minutes=60,
            buffer_before_minutes=60,
            buffer_after_minutes=60,
            slot_step_minutes=30,
            horizon_days=365,
        )
        quick = add_service(
            session, tenant, "Quick", duration_minutes=30, slot_step_minutes=30, horizon_days=365
        )
        hours = {weekday: [(time(0), time(6)), (time(18), time(23, 30))] for weekday in range(7)}
        provider = add_provider(session, tenant, "Lee", [visit, quick], hours)
        return visit.id, quick.id, provider.id


def test_a_booking_the_night_before_blocks_a_midnight_start_with_a_buffer(client, late_clinic):
    visit, quick, provider = late_clinic
    response = book(client, "late", quick, provider, "2027-03-02T23:00:00+00:00")
    assert response.status_code == 201, response.json
    found = starts(slots(client, "late", visit, "2027-03-03"))
    # The Quick booking ends at 23:30; a Visit needs an hour free before it starts.
    assert "2027-03-03T00:00:00+00:00" not in found
    assert found[0] == "2027-03-03T00:30:00+00:00"
    assert book(client, "late", visit, provider, "2027-03-03T00:00:00+00:00").status_code == 409


def test_a_booking_just_after_midnight_blocks_a_late_start_with_a_buffer(client, late_clinic):
    visit, quick, provider = late_clinic
    response = book(client, "late", quick, provider, "2027-03-03T00:00:00+00:00")
    assert response.status_code == 201, response.json
    found = starts(slots(client, "late", visit, "2027-03-02"))
    # A Visit at 22:30 ends at 23:30 and needs its hour after free: the booking is at 00:00.
    assert "2027-03-02T22:30:00+00:00" not in found
    assert found[-1] == "2027-03-02T22:00:00+00:00"
    assert book(client, "late", visit, provider, "2027-03-02T22:30:00+00:00").status_code == 409


def test_a_late_booking_with_buffers_is_read_up_to_the_end_of_the_search(client, late_clinic):
    """The search reaches past the window's end by the buffers and the duration: a Visit at
    22:00 blocks from 21:00, which is within that much of midnight, and must still be seen."""
    visit, quick, provider = late_clinic
    assert book(client, "late", visit, provider, "2027-03-02T22:00:00+00:00").status_code == 201
    found = starts(slots(client, "late", visit, "2027-03-02"))
    assert "2027-03-02T22:00:00+00:00" not in found
    assert "2027-03-02T21:30:00+00:00" not in found
    assert book(client, "late", visit, provider, "2027-03-02T22:00:00+00:00").status_code == 409


def test_a_visit_keeps_its_buffers_from_a_booking_of_another_service(client, late_clinic):
    visit, quick, provider = late_clinic
    response = book(client, "late", quick, provider, "2027-03-02T03:00:00+00:00")
    assert response.status_code == 201, response.json
    found = starts(slots(client, "late", visit, "2027-03-02"))
    morning = [start[11:16] for start in found if start < "2027-03-02T06"]
    # 03:00-03:30 is taken: a Visit (an hour, an hour either side) fits at 00:00..01:00, 04:30.
    assert morning == ["00:00", "00:30", "01:00", "04:30", "05:00"]


def test_overlapping_opening_hours_offer_each_start_once(app, client):
    with db.write_transaction(app) as session:
        tenant = create_tenant(
            session,
            "twice",
            name="Twice",
            timezone="Europe/Paris",
            now=datetime(2027, 1, 1, tzinfo=UTC),
        )
        service = add_service(
            session, tenant, "Cut", duration_minutes=60, slot_step_minutes=30, horizon_days=365
        )
        hours = {weekday: [(time(9), time(13)), (time(11), time(15))] for weekday in range(7)}
        provider = add_provider(session, tenant, "Sam", [service], hours)
        service_id, provider_id = service.id, provider.id
    found = slots(client, "twice", service_id, "2027-03-02")
    assert starts(found) == [
        f"2027-03-02T{hour:02}:{minute:02}:00+01:00"
        for hour in range(9, 15)
        for minute in (0, 30)
        if (hour, minute) != (14, 30)
    ]
    taken = book(client, "twice", service_id, provider_id, "2027-03-02T11:30:00+01:00")
    assert taken.status_code == 201, taken.json
    assert "2027-03-02T11:30:00+01:00" not in starts(
        slots(client, "twice", service_id, "2027-03-02")
    )
