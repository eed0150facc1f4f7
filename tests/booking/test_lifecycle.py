"""Cancelling and rescheduling: same rules for every caller, and a refusal changes nothing."""

from __future__ import annotations

import pytest
from conftest import booking_body

from bookwell.core.storage import db
from bookwell.core.storage.models import Service

BOOKINGS = "/api/v1/tenants/salon/bookings"


@pytest.fixture
def booked(client, business):
    response = client.post(BOOKINGS, json=booking_body(business, "2027-03-02T10:00:00+01:00"))
    assert response.status_code == 201
    return response.json


def test_the_client_sees_their_booking_with_its_token(client, booked):
    response = client.get(f"{BOOKINGS}/{booked['reference']}?token={booked['manage_token']}")
    assert response.status_code == 200
    assert response.json["reference"] == booked["reference"]
    assert response.json["client"]["email"] == "ann@example.com"


def test_a_reschedule_keeps_reference_and_token_and_records_the_old_time(client, booked, business):
    moved = client.post(
        f"{BOOKINGS}/{booked['reference']}/reschedule",
        json={"token": booked["manage_token"], "start": "2027-03-03T14:00:00+01:00"},
    )
    assert moved.status_code == 200, moved.json
    assert moved.json["reference"] == booked["reference"]
    assert moved.json["manage_token"] == booked["manage_token"]
    assert moved.json["start"] == "2027-03-03T14:00:00+01:00"
    assert moved.json["rescheduled_from"][0]["start"] == "2027-03-02T10:00:00+01:00"
    # The old time is free again, the new one is taken.
    assert (
        client.post(
            BOOKINGS, json=booking_body(business, "2027-03-02T10:00:00+01:00", name="Bob")
        ).status_code
        == 201
    )
    assert (
        client.post(
            BOOKINGS, json=booking_body(business, "2027-03-03T14:00:00+01:00", name="Cid")
        ).status_code
        == 409
    )
    seen = client.get(f"{BOOKINGS}/{booked['reference']}?token={booked['manage_token']}").json
    assert seen["start"] == "2027-03-03T14:00:00+01:00"


def test_a_booking_can_move_onto_time_overlapping_its_own(app, client, business):
    with db.write_transaction(app) as session:
        service = session.get(Service, business.service_id)
        service.duration_minutes = 60
    first = client.post(BOOKINGS, json=booking_body(business, "2027-03-02T10:00:00+01:00")).json
    moved = client.post(
        f"{BOOKINGS}/{first['reference']}/reschedule",
        json={"token": first["manage_token"], "start": "2027-03-02T10:30:00+01:00"},
    )
    assert moved.status_code == 200, moved.json
    assert moved.json["end"] == "2027-03-02T11:30:00+01:00"


def test_a_reschedule_may_change_provider(client, booked, business):
    moved = client.post(
        f"{BOOKINGS}/{booked['reference']}/reschedule",
        json={
            "token": booked["manage_token"],
            "start": "2027-03-02T10:00:00+01:00",
            "provider_id": business.second_provider_id,
        },
    )
    assert moved.status_code == 200
    assert moved.json["provider_id"] == business.second_provider_id


def test_a_reschedule_onto_a_taken_slot_changes_nothing(client, booked, business):
    other = client.post(
        BOOKINGS, json=booking_body(business, "2027-03-02T11:00:00+01:00", name="Bob")
    )
    assert other.status_code == 201
    refused = client.post(
        f"{BOOKINGS}/{booked['reference']}/reschedule",
        json={"token": booked["manage_token"], "start": "2027-03-02T11:00:00+01:00"},
    )
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "slot_unavailable"
    seen = client.get(f"{BOOKINGS}/{booked['reference']}?token={booked['manage_token']}").json
    assert seen["start"] == "2027-03-02T10:00:00+01:00"
    assert seen["rescheduled_from"] == []


def test_a_cancelled_booking_cannot_be_cancelled_or_moved_again(client, booked):
    url = f"{BOOKINGS}/{booked['reference']}"
    assert client.post(f"{url}/cancel", json={"token": booked["manage_token"]}).status_code == 200
    again = client.post(f"{url}/cancel", json={"token": booked["manage_token"]})
    assert again.status_code == 409
    assert again.json["error"]["code"] == "booking_not_changeable"
    moved = client.post(
        f"{url}/reschedule",
        json={"token": booked["manage_token"], "start": "2027-03-03T10:00:00+01:00"},
    )
    assert moved.status_code == 409


def test_an_appointment_that_has_started_cannot_be_cancelled(client, booked, clock):
    clock.advance(days=1, hours=1, minutes=5)  # 2027-03-02 10:05 in Paris
    response = client.post(
        f"{BOOKINGS}/{booked['reference']}/cancel", json={"token": booked["manage_token"]}
    )
    assert response.status_code == 409
    assert response.json["error"]["code"] == "booking_not_changeable"


def test_a_wrong_token_is_the_same_as_no_booking(client, booked):
    url = f"{BOOKINGS}/{booked['reference']}"
    assert client.get(f"{url}?token=wrong").status_code == 404
    assert client.post(f"{url}/cancel", json={"token": "wrong"}).status_code == 404
    assert client.get(f"{url}?token={booked['manage_token']}").json["status"] == "confirmed"


def test_a_slot_in_the_past_is_not_offered(client, business):
    response = client.post(BOOKINGS, json=booking_body(business, "2027-02-27T10:00:00+01:00"))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "slot_unavailable"


def test_a_start_off_the_step_is_not_offered(client, business):
    response = client.post(BOOKINGS, json=booking_body(business, "2027-03-02T10:10:00+01:00"))
    assert response.status_code == 409


def test_the_same_instant_in_another_offset_is_the_same_slot(client, business):
    response = client.post(BOOKINGS, json=booking_body(business, "2027-03-02T09:00:00Z"))
    assert response.status_code == 201
    assert response.json["start"] == "2027-03-02T10:00:00+01:00"
