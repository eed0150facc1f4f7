"""What HIPAA mode asks of core (``data_protection``): every view of a booking's details by
staff audited before it is shown, and clients' phone and notes encrypted at rest, so that a
database dump alone reveals neither."""

from __future__ import annotations

import hipaa_kit
import pytest
from sqlalchemy import create_engine, text

# The kit's fixtures: the app on HTTPS, HIPAA mode on with the owner enrolled.
app = hipaa_kit.app
hipaa = hipaa_kit.hipaa

PHONE, NOTES = "+33 6 12 34 56 78", "Pregnant, 20 weeks: no X-ray."


@pytest.fixture
def booked(client, tenant) -> dict:
    answer = client.post(
        service_id=tenant.service_id,
        provider_id=tenant.provider_id,
        start="2027-03-02T10:00:00+01:00",
        client={"name": "Ann", "email": "ann@example.com", "phone": PHONE, "notes": NOTES},
    )
    assert answer.status_code == 201, answer.json
    return answer.json


def dumped(database_url) -> list[tuple]:
    """The bookings' client fields as a dump of the database has them."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT client_phone, client_notes FROM bookings")).all()
    finally:
        engine.dispose()


def test_phone_and_notes_are_kept_encrypted_and_shown_to_staff_in_clear(
    hipaa, booked, owner, database_url
):
    ((phone, notes),) = dumped(database_url)
    assert PHONE not in phone and "Pregnant" not in notes
    shown = owner.api.get(f"bookings/{booked['reference']}").json["client"]
    assert (shown["phone"], shown["notes"]) == (PHONE, NOTES)


def test_bookings_made_before_hipaa_mode_are_encrypted_too(
    booked, owner, enable_plugin, clock, database_url, run_schedule
):
    assert dumped(database_url) == [(PHONE, NOTES)]
    enable_plugin("hipaa")
    run_schedule()  # core sweeps what was written before, at the latest on the next tick
    ((phone, notes),) = dumped(database_url)
    assert PHONE not in phone and "Pregnant" not in notes


def test_every_view_of_a_bookings_details_is_audited(hipaa, booked, owner, audit_trail):
    assert audit_trail(action="booking.viewed") == []
    page = owner.pages.get(f"/admin/salon/bookings/{booked['reference']}")
    assert page.status_code == 200 and "Pregnant" in page.text
    owner.api.get(f"bookings/{booked['reference']}")
    entries = audit_trail(action="booking.viewed")
    assert [(entry.subject, entry.actor) for entry in entries] == [
        (f"booking:{booked['reference']}", f"user:{owner.user_id}"),
    ] * 2


def test_without_hipaa_mode_views_are_not_audited(booked, owner, audit_trail):
    owner.pages.get(f"/admin/salon/bookings/{booked['reference']}")
    assert audit_trail(action="booking.viewed") == []
