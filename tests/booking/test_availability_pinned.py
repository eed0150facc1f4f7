"""Availability pinned down before it is made fast (issue 17, point 0): each test here is a wrong
booking that a plausible slip in availability let through, asked through the public API."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import booking_body
from sqlalchemy import event

from bookwell.core.booking.availability import find_slots
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Service, Tenant, TimeOff
from bookwell.hooks import Manifest, hookimpl

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


# What the complete mutation run of availability (seed 1) found unchecked: the reach after the
# window's last day, what starts a second before closing, a fraction of a second left out, the
# SQL for SQLite older than 3.38, and the queries a service nobody offers costs.


def test_time_off_late_on_the_last_day_still_blocks_an_appointment_running_into_it(app, client):
    """The bookings and time off read must reach past the window's end by at least what an
    appointment ending before it can overlap: here an hour, from a window ending at midnight."""
    with db.write_transaction(app) as session:
        tenant = create_tenant(
            session, "night", name="Night", timezone="UTC", now=datetime(2027, 1, 1, tzinfo=UTC)
        )
        service = add_service(
            session, tenant, "Hour", duration_minutes=60, slot_step_minutes=15, horizon_days=365
        )
        hours = {weekday: [(time(20), time(23, 59))] for weekday in range(7)}
        provider = add_provider(session, tenant, "Nia", [service], hours)
        session.add(
            TimeOff(
                provider_id=provider.id,
                starts_at=datetime(2027, 3, 2, 23, 15, tzinfo=UTC),
                ends_at=datetime(2027, 3, 3, 1, 0, tzinfo=UTC),
            )
        )
        service_id = service.id
    found = starts(slots(client, "night", service_id, "2027-03-02"))
    assert found[-1] == "2027-03-02T22:15:00+00:00"  # ends as the time off starts
    assert len(found) == 10  # 20:00 to 22:15, every quarter of an hour


def test_time_off_from_a_second_before_closing_costs_the_last_slot(app, client, business):
    with db.write_transaction(app) as session:
        session.add(
            TimeOff(
                provider_id=business.provider_id,
                starts_at=datetime(2027, 3, 2, 15, 59, 59, tzinfo=UTC),  # 16:59:59 in Paris
                ends_at=datetime(2027, 3, 2, 18, 0, tzinfo=UTC),
            )
        )
    found = starts(
        slots(client, "salon", business.service_id, "2027-03-02", None, business.provider_id)
    )
    assert found[-1] == "2027-03-02T16:00:00+01:00"
    assert "2027-03-02T16:30:00+01:00" not in found
    refused = client.post(
        f"{SALON}/bookings", json=booking_body(business, "2027-03-02T16:30:00+01:00")
    )
    assert refused.status_code == 409


def test_time_off_ending_a_second_past_a_start_costs_that_start(app, client, business):
    with db.write_transaction(app) as session:
        session.add(
            TimeOff(
                provider_id=business.provider_id,
                starts_at=datetime(2027, 3, 2, 9, 0, tzinfo=UTC),  # 10:00 in Paris
                ends_at=datetime(2027, 3, 2, 9, 30, 1, tzinfo=UTC),  # 10:30:01
            )
        )
    found = starts(
        slots(client, "salon", business.service_id, "2027-03-02", None, business.provider_id)
    )
    assert "2027-03-02T09:30:00+01:00" in found
    assert "2027-03-02T10:00:00+01:00" not in found
    assert "2027-03-02T10:30:00+01:00" not in found
    assert "2027-03-02T11:00:00+01:00" in found
    refused = client.post(
        f"{SALON}/bookings", json=booking_body(business, "2027-03-02T10:30:00+01:00")
    )
    assert refused.status_code == 409


class HalfSecondLate:
    """Leaves out 10:00 to half a second past 10:30, Paris time, on Tuesday 2 March 2027."""

    MANIFEST = Manifest(
        "u-half-second", "Half second", "Test plugin.", "1.0", "scheduling", "tests"
    )

    @hookimpl
    def unavailable_times(ctx, start):
        ten = datetime(2027, 3, 2, 10, tzinfo=ZoneInfo("Europe/Paris"))
        return [(ten, ten + timedelta(minutes=30, milliseconds=500))]


def test_half_a_second_left_out_past_a_start_hides_that_start(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[HalfSecondLate])
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "u-half-second", {}, clock())
    found = starts(
        slots(
            app.test_client(),
            "salon",
            business.service_id,
            "2027-03-02",
            None,
            business.provider_id,
        )
    )
    assert "2027-03-02T09:30:00+01:00" in found  # ends as the range starts
    assert "2027-03-02T10:00:00+01:00" not in found
    assert "2027-03-02T10:30:00+01:00" not in found  # would overlap it by half a second
    assert "2027-03-02T11:00:00+01:00" in found


def _slots_and_statements(app, business, clock, **execution_options):
    """find_slots over a day with a booking and time off, and the SQL it sent."""
    sent: list[str] = []

    def keep(_connection, _cursor, statement, _parameters, _context, _many):
        sent.append(statement)

    engine = db.engine_of(app)
    event.listen(engine, "before_cursor_execute", keep)
    try:
        with db.fresh_session(app) as session:
            session.connection(execution_options=execution_options)
            tenant = session.get(Tenant, business.tenant_id)
            found = find_slots(
                session,
                tenant_id=tenant.id,
                zone=tenant.zone,
                service=session.get(Service, business.service_id),
                day_from=date(2027, 3, 2),
                day_to=date(2027, 3, 2),
                now=clock(),
                longest_block_minutes=tenant.longest_block_minutes,
                provider_id=business.provider_id,
            )
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return found, sent


def test_sqlite_older_than_3_38_gets_the_same_slots_without_unixepoch(
    app, client, business, clock, monkeypatch
):
    """unixepoch() came with SQLite 3.38; before it, strftime('%s') must give the same slots."""
    if db.engine_of(app).dialect.name != "sqlite":
        pytest.skip("about SQLite's own functions")
    made = client.post(
        f"{SALON}/bookings", json=booking_body(business, "2027-03-02T10:00:00+01:00")
    )
    assert made.status_code == 201, made.json
    with db.write_transaction(app) as session:
        session.add(
            TimeOff(
                provider_id=business.provider_id,
                starts_at=datetime(2027, 3, 2, 13, 0, tzinfo=UTC),
                ends_at=datetime(2027, 3, 2, 14, 0, tzinfo=UTC),
            )
        )
    expected, _ = _slots_and_statements(app, business, clock)
    assert len(expected) == 16 - 1 - 2
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 37, 2))
    # Compiled afresh: the engine's cache holds the statements compiled for the real version.
    found, sent = _slots_and_statements(app, business, clock, compiled_cache=None)
    assert found == expected
    [bookings_query] = [statement for statement in sent if "FROM bookings" in statement]
    assert "strftime('%s'" in bookings_query and "unixepoch" not in bookings_query


def test_a_service_nobody_offers_costs_one_query_and_asks_no_plugin(app, business, clock):
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, business.tenant_id)
        lonely = add_service(session, tenant, "Nobody's", duration_minutes=30, horizon_days=365)
        lonely_id = lonely.id
    sent: list[str] = []

    def keep(_connection, _cursor, statement, _parameters, _context, _many):
        sent.append(statement)

    with app.app_context():
        session = db.session()
        tenant = session.get(Tenant, business.tenant_id)
        service = session.get(Service, lonely_id)
        engine = db.engine_of(app)
        event.listen(engine, "before_cursor_execute", keep)
        try:
            found = find_slots(
                session,
                tenant_id=tenant.id,
                zone=tenant.zone,
                service=service,
                day_from=date(2027, 3, 2),
                day_to=date(2027, 3, 8),
                now=clock(),
                longest_block_minutes=tenant.longest_block_minutes,
                leave_out=lambda *_: pytest.fail("no provider works: no plugin is asked"),
            )
        finally:
            event.remove(engine, "before_cursor_execute", keep)
    assert found == []
    assert len(sent) == 1 and "FROM working_hours" in sent[0], sent


def test_a_window_over_as_it_is_asked_costs_no_query(app, business):
    """Asked at the very instant the day ends (Paris midnight, no notice): nothing can start,
    so neither the database nor any plugin is asked."""
    sent: list[str] = []

    def keep(_connection, _cursor, statement, _parameters, _context, _many):
        sent.append(statement)

    with app.app_context():
        session = db.session()
        tenant = session.get(Tenant, business.tenant_id)
        service = session.get(Service, business.service_id)
        engine = db.engine_of(app)
        event.listen(engine, "before_cursor_execute", keep)
        try:
            found = find_slots(
                session,
                tenant_id=tenant.id,
                zone=tenant.zone,
                service=service,
                day_from=date(2027, 3, 2),
                day_to=date(2027, 3, 2),
                now=datetime(2027, 3, 2, 23, 0, tzinfo=UTC),  # 3 March, 00:00 in Paris
                longest_block_minutes=tenant.longest_block_minutes,
                leave_out=lambda *_: pytest.fail("nothing can start: no plugin is asked"),
            )
        finally:
            event.remove(engine, "before_cursor_execute", keep)
    assert found == []
    assert sent == []


class CrashEachTime:
    MANIFEST = Manifest("u-crash-each", "Crash each", "Test plugin.", "1.0", "scheduling", "tests")

    @hookimpl
    def unavailable_times(ctx):
        raise RuntimeError("bug in unavailable_times")


def test_a_plugin_failing_for_each_provider_is_logged_once(make_app, business, clock, caplog):
    app = make_app(EXTRA_PLUGINS=[CrashEachTime])
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "u-crash-each", {}, clock())
    found = slots(app.test_client(), "salon", business.service_id, "2027-03-02")
    assert {slot["provider_id"] for slot in found} == {
        business.provider_id,
        business.second_provider_id,
    }
    warned = [
        record
        for record in caplog.records
        if record.levelname == "WARNING" and "u-crash-each: unavailable_times" in record.message
    ]
    assert len(warned) == 1, [record.message for record in warned]


def test_a_slot_found_knows_its_start_and_end_as_utc_instants(app, business, clock):
    found, _ = _slots_and_statements(app, business, clock)
    assert found[0].start == datetime(2027, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    assert [slot.end - slot.start for slot in found] == [timedelta(minutes=30)] * len(found)
    assert all(slot.end.tzinfo is UTC for slot in found)
