"""Availability: hours, step, notice, horizon, buffers, time off, and days when clocks change."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.storage import db
from bookwell.core.storage.models import Service, TimeOff


def slots(client, service_id, day_from, day_to=None, provider_id=None, slug="salon"):
    url = (
        f"/api/v1/tenants/{slug}/availability?service_id={service_id}"
        f"&from={day_from}&to={day_to or day_from}"
    )
    if provider_id:
        url += f"&provider_id={provider_id}"
    response = client.get(url)
    assert response.status_code == 200, response.json
    return response.json["slots"]


def starts(found, provider_id=None):
    return [slot["start"] for slot in found if provider_id in (None, slot["provider_id"])]


def update_service(app, service_id, **fields):
    with db.write_transaction(app) as session:
        service = session.get(Service, service_id)
        for name, value in fields.items():
            setattr(service, name, value)


def test_slots_start_on_the_step_within_working_hours(client, business):
    found = slots(client, business.service_id, "2027-03-02", provider_id=business.provider_id)
    assert starts(found)[0] == "2027-03-02T09:00:00+01:00"
    assert starts(found)[-1] == "2027-03-02T16:30:00+01:00"  # the last that ends by 17:00
    assert len(found) == 16
    assert all(
        slot["end"][11:16] in {f"{h:02}:{m}" for h in range(9, 18) for m in ("00", "30")}
        for slot in found
    )


def test_each_provider_gets_its_own_entry_per_start(client, business):
    found = slots(client, business.service_id, "2027-03-02")
    assert len(found) == 32
    assert len({(slot["start"], slot["provider_id"]) for slot in found}) == 32
    assert starts(found)[:2] == ["2027-03-02T09:00:00+01:00"] * 2


def test_both_ends_of_the_range_are_included(client, business):
    found = slots(client, business.service_id, "2027-03-02", "2027-03-04", business.provider_id)
    assert {slot["start"][:10] for slot in found} == {"2027-03-02", "2027-03-03", "2027-03-04"}


def test_minimum_notice_hides_slots_too_soon(app, client, business, clock):
    update_service(app, business.service_id, min_notice_minutes=120)
    clock.set(datetime(2027, 3, 2, 9, 10, tzinfo=UTC))  # 10:10 in Paris
    found = slots(client, business.service_id, "2027-03-02", provider_id=business.provider_id)
    assert starts(found)[0] == "2027-03-02T12:30:00+01:00"


def test_nothing_is_offered_past_the_horizon(app, client, business, clock):
    update_service(app, business.service_id, horizon_days=3)
    found = slots(client, business.service_id, "2027-03-03", "2027-03-06", business.provider_id)
    # 2027-03-01 08:00 UTC + 3 days = 2027-03-04 09:00 Paris: that slot is the last one.
    assert starts(found)[-1] == "2027-03-04T09:00:00+01:00"


def test_bookings_and_their_buffers_block_time(app, client, business):
    update_service(
        app,
        business.service_id,
        buffer_before_minutes=15,
        buffer_after_minutes=15,
        slot_step_minutes=15,
    )
    body = {
        "service_id": business.service_id,
        "provider_id": business.provider_id,
        "start": "2027-03-02T11:00:00+01:00",
        "client": {"name": "Ann", "email": "ann@example.com"},
    }
    assert client.post("/api/v1/tenants/salon/bookings", json=body).status_code == 201
    found = starts(
        slots(client, business.service_id, "2027-03-02", provider_id=business.provider_id)
    )
    # The booking blocks 10:45-11:45; a new one blocks 15 minutes either side of itself, so
    # the nearest fits are 10:00 (blocking 09:45-10:45) and 12:00 (blocking 11:45-12:45).
    assert "2027-03-02T10:00:00+01:00" in found
    for taken in ("10:15", "10:30", "10:45", "11:00", "11:15", "11:30", "11:45"):
        assert f"2027-03-02T{taken}:00+01:00" not in found
    assert "2027-03-02T12:00:00+01:00" in found


def test_time_off_removes_the_slots_it_covers(app, client, business):
    with db.write_transaction(app) as session:
        session.add(
            TimeOff(
                provider_id=business.provider_id,
                starts_at=datetime(2027, 3, 2, 11, 0, tzinfo=UTC),  # 12:00-14:00 in Paris
                ends_at=datetime(2027, 3, 2, 13, 0, tzinfo=UTC),
                reason="dentist",
            )
        )
    found = starts(
        slots(client, business.service_id, "2027-03-02", provider_id=business.provider_id)
    )
    assert "2027-03-02T11:30:00+01:00" in found
    assert not any(
        f"2027-03-02T{h}:{m}:00+01:00" in found for h in ("12", "13") for m in ("00", "30")
    )
    assert "2027-03-02T14:00:00+01:00" in found
    other = starts(
        slots(client, business.service_id, "2027-03-02", provider_id=business.second_provider_id)
    )
    assert "2027-03-02T12:00:00+01:00" in other


@pytest.fixture
def night_clinic(app):
    """A Paris clinic open on Sundays 00:00-06:00 and 09:00-12:00, hourly appointments."""
    with db.write_transaction(app) as session:
        tenant = create_tenant(
            session,
            "night",
            name="Night clinic",
            timezone="Europe/Paris",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
        service = add_service(
            session, tenant, "Visit", duration_minutes=60, slot_step_minutes=60, horizon_days=800
        )
        provider = add_provider(
            session, tenant, "Dr Night", [service], {6: [(time(0), time(6)), (time(9), time(12))]}
        )
        return service.id, provider.id


def test_spring_forward_day_in_paris_has_one_hour_less(client, night_clinic, clock):
    service_id, _ = night_clinic
    clock.set(datetime(2027, 3, 1, tzinfo=UTC))
    found = starts(slots(client, service_id, "2027-03-28", slug="night"))
    assert found == [
        "2027-03-28T00:00:00+01:00",
        "2027-03-28T01:00:00+01:00",
        "2027-03-28T03:00:00+02:00",  # 02:00 does not exist that night
        "2027-03-28T04:00:00+02:00",
        "2027-03-28T05:00:00+02:00",
        "2027-03-28T09:00:00+02:00",
        "2027-03-28T10:00:00+02:00",
        "2027-03-28T11:00:00+02:00",
    ]


def test_fall_back_day_in_paris_has_one_hour_more(client, night_clinic, clock):
    service_id, _ = night_clinic
    clock.set(datetime(2026, 10, 1, tzinfo=UTC))
    found = slots(client, service_id, "2026-10-25", slug="night")
    assert starts(found) == [
        "2026-10-25T00:00:00+02:00",
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",  # the repeated hour is a different instant
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
        "2026-10-25T05:00:00+01:00",
        "2026-10-25T09:00:00+01:00",
        "2026-10-25T10:00:00+01:00",
        "2026-10-25T11:00:00+01:00",
    ]
    assert found[2]["end"] == "2026-10-25T02:00:00+01:00"  # an hour later, same wall time


def test_a_slot_across_the_change_can_be_booked_at_its_offset(client, night_clinic, clock):
    service_id, provider_id = night_clinic
    clock.set(datetime(2026, 10, 1, tzinfo=UTC))
    for start in ("2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"):
        response = client.post(
            "/api/v1/tenants/night/bookings",
            json={
                "service_id": service_id,
                "provider_id": provider_id,
                "start": start,
                "client": {"name": "Eve", "email": "eve@example.com"},
            },
        )
        assert response.status_code == 201, response.json
        assert response.json["start"] == start


def test_the_range_is_at_most_62_days(client, business):
    ok = client.get(
        f"/api/v1/tenants/salon/availability?service_id={business.service_id}"
        "&from=2027-03-01&to=2027-05-01"
    )
    assert ok.status_code == 200
    too_long = client.get(
        f"/api/v1/tenants/salon/availability?service_id={business.service_id}"
        "&from=2027-03-01&to=2027-05-02"
    )
    assert too_long.status_code == 422
    assert "to" in too_long.json["error"]["fields"]


def test_a_service_the_provider_does_not_offer_has_no_slots(app, client, business):
    with db.write_transaction(app) as session:
        from bookwell.core.storage.models import Tenant

        tenant = session.get(Tenant, business.tenant_id)
        lonely = add_service(session, tenant, "Lonely", duration_minutes=30)
        lonely_id = lonely.id
    assert slots(client, lonely_id, "2027-03-02") == []
