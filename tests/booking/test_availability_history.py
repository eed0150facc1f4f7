"""Availability reads only the bookings near its window: the tenant's longest block bounds
``blocked_from`` from below. The bound is kept true by every write of a service or booking,
never lowered, backfilled by migration 0013, and the index bounds the query on both sides."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from alembic import command
from sqlalchemy import create_engine, event, insert, select, text
from sqlalchemy.orm import Session

from bookwell.core import schema
from bookwell.core.booking import availability, catalogue
from bookwell.core.booking.availability import find_slots
from bookwell.core.booking.tenants import add_service, create_tenant
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, BookingStatus, Service, Tenant, TimeOff
from bookwell.core.testing import (
    as_tables_owner,
)

API = "/api/v1/tenants/salon"


def longest(app, tenant_id: int) -> int:
    with app.app_context():
        return db.session().scalar(
            select(Tenant.longest_block_minutes).where(Tenant.id == tenant_id)
        )


def offered(client, service_id, day, provider_id):
    response = client.get(
        f"{API}/availability?service_id={service_id}&from={day}&to={day}&provider_id={provider_id}"
    )
    assert response.status_code == 200, response.json
    return [slot["start"] for slot in response.json["slots"]]


def test_a_booking_made_when_its_service_was_long_still_blocks_once_it_is_shortened(
    app, client, business, clock
):
    # Three hours, with an hour's buffer after: the booking blocks 20:00 to 00:00 in Paris.
    catalogue.save_service(
        app,
        tenant_id=business.tenant_id,
        service_id=business.service_id,
        fields=catalogue.ServiceFields(
            "Cut", duration_minutes=180, buffer_after_minutes=60, slot_step_minutes=30
        ),
        actor=None,
        now=clock(),
    )
    assert longest(app, business.tenant_id) == 240
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, business.tenant_id)
        session.execute(
            text("UPDATE working_hours SET ends = '23:59:00' WHERE provider_id = :id"),
            {"id": business.provider_id},
        )
        assert tenant.longest_block_minutes == 240
    body = {
        "service_id": business.service_id,
        "provider_id": business.provider_id,
        "start": "2027-03-02T20:00:00+01:00",
        "client": {"name": "Ann", "email": "ann@example.com"},
    }
    assert client.post(f"{API}/bookings", json=body).status_code == 201
    catalogue.save_service(
        app,
        tenant_id=business.tenant_id,
        service_id=business.service_id,
        fields=catalogue.ServiceFields("Cut", duration_minutes=30, slot_step_minutes=30),
        actor=None,
        now=clock(),
    )
    assert longest(app, business.tenant_id) == 240  # never lowered
    found = offered(client, business.service_id, "2027-03-02", business.provider_id)
    assert "2027-03-02T19:30:00+01:00" in found
    assert not any(f"2027-03-02T{hour}:" in start for start in found for hour in (20, 21, 22, 23))
    # The 30-minute service's window reaches back 30 minutes; the booking starts four hours
    # before 23:30's window: only the stored bound finds it.
    with db.write_transaction(app) as session:
        session.execute(
            text("UPDATE working_hours SET starts = '23:00:00' WHERE provider_id = :id"),
            {"id": business.provider_id},
        )
    assert offered(client, business.service_id, "2027-03-02", business.provider_id) == []
    body["start"] = "2027-03-02T23:30:00+01:00"
    refused = client.post(f"{API}/bookings", json=body)
    assert refused.status_code == 409, refused.json


def test_services_written_straight_through_the_orm_raise_the_bound_and_never_lower_it(app, clock):
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, "orm", name="ORM", timezone="UTC", now=clock())
        session.add(
            Service(tenant_id=tenant.id, name="Long", duration_minutes=90, buffer_before_minutes=5)
        )
    assert longest(app, tenant.id) == 95
    with db.write_transaction(app) as session:
        service = session.scalar(select(Service).where(Service.tenant_id == tenant.id))
        service.buffer_after_minutes = 25  # 120 now
    assert longest(app, tenant.id) == 120
    with db.write_transaction(app) as session:
        service = session.scalar(select(Service).where(Service.tenant_id == tenant.id))
        service.duration_minutes, service.buffer_after_minutes = 10, 0
        add_service(session, session.get(Tenant, tenant.id), "Short", duration_minutes=20)
    assert longest(app, tenant.id) == 120
    with db.write_transaction(app) as session:
        session.get(Tenant, tenant.id)  # loaded, so the session's copy must follow the raise
        add_service(session, session.get(Tenant, tenant.id), "Day", duration_minutes=600)
        assert session.get(Tenant, tenant.id).longest_block_minutes == 600
    assert longest(app, tenant.id) == 600


def test_a_booking_longer_than_every_service_raises_the_bound_too(app, business, clock):
    start = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)
    with db.write_transaction(app) as session:
        session.add(booking_row(business, start, start + timedelta(minutes=301, seconds=1)))
    assert longest(app, business.tenant_id) == 302  # whole minutes, rounded up


def booking_row(business, blocked_from, blocked_until, number=0, **fields) -> Booking:
    return Booking(**booking_values(business, blocked_from, blocked_until, number), **fields)


def booking_values(business, blocked_from, blocked_until, number=0) -> dict:
    return {
        "tenant_id": business.tenant_id,
        "reference": f"HIST-{number:06d}",
        "manage_token_hash": f"{number:064d}",
        "service_id": business.service_id,
        "provider_id": business.provider_id,
        "starts_at": blocked_from,
        "ends_at": blocked_until,
        "blocked_from": blocked_from,
        "blocked_until": blocked_until,
        "client_name": "Ann",
        "client_email": "ann@example.com",
        "status": BookingStatus.CONFIRMED,
        "price_cents": 0,
        "created_at": blocked_from - timedelta(days=1),
        "updated_at": blocked_from - timedelta(days=1),
    }


def test_the_bookings_query_reaches_back_exactly_as_far_as_the_longest_block(app, business):
    """A booking of the longest length that ends a second into the reach is read; one that ends
    as the reach starts is not. A bound a minute shorter would miss the first: a double booking
    wherever the reach is the window's edge."""
    reach_from = datetime(2027, 3, 2, 12, 0, tzinfo=UTC)
    ends = {"a second in": reach_from + timedelta(seconds=1), "just before": reach_from}
    with db.write_transaction(app) as session:
        # One a provider: on PostgreSQL the two would overlap for one second.
        for number, end in enumerate(ends.values()):
            row = booking_row(business, end - timedelta(minutes=30), end, number)
            row.provider_id = (business.provider_id, business.second_provider_id)[number]
            session.add(row)
    with app.app_context():
        session = db.session()
        bound = session.get(Tenant, business.tenant_id).longest_block_minutes
        assert bound == 30
        rows = session.execute(
            availability._BLOCKED,
            {
                "tenant_id": business.tenant_id,
                "providers": [business.provider_id, business.second_provider_id],
                "reach_from": reach_from,
                "reach_until": reach_from + timedelta(hours=1),
                "earliest_block": availability.earliest_block(reach_from, bound),
            },
        ).all()
    assert [until for _, _, _, until in rows] == [int(ends["a second in"].timestamp())]


def test_find_slots_with_the_bound_offers_what_it_offers_reading_the_whole_past(
    app, business, clock
):
    """Random bookings of random lengths (the bound raised to the longest), random time off of
    up to four days, windows of one to three days: the bounded query never changes a slot."""
    picker = random.Random(17)
    first_day = date(2027, 3, 1)
    with db.write_transaction(app) as session:
        # One after another with random gaps, as no two bookings of a provider overlap.
        start = datetime.combine(first_day, time(0), UTC)
        for number in range(150):
            start += timedelta(minutes=5 * picker.randrange(0, 12 * 12))
            length = timedelta(minutes=picker.choice((5, 15, 30, 30, 45, 90, 90, 240, 1440)))
            session.add(booking_row(business, start, start + length, number))
            start += length
        for _ in range(3):
            start = datetime.combine(first_day, time(0), UTC) + timedelta(
                hours=picker.randrange(0, 24 * 40)
            )
            session.add(
                TimeOff(
                    provider_id=business.provider_id,
                    starts_at=start,
                    ends_at=start + timedelta(hours=picker.randrange(1, 24 * 4)),
                )
            )
    assert longest(app, business.tenant_id) == 1440
    with app.app_context():
        session = db.session()
        tenant = session.get(Tenant, business.tenant_id)
        service = session.get(Service, business.service_id)
        compared = 0
        for _ in range(60):
            day_from = first_day + timedelta(days=picker.randrange(0, 40))
            service.duration_minutes = picker.choice((15, 30, 60))
            service.buffer_before_minutes = picker.choice((0, 10))
            service.buffer_after_minutes = picker.choice((0, 20))
            arguments = dict(
                tenant_id=tenant.id,
                zone=tenant.zone,
                service=service,
                day_from=day_from,
                day_to=day_from + timedelta(days=picker.randrange(0, 3)),
                now=datetime(2027, 2, 1, tzinfo=UTC),
                provider_id=business.provider_id,
            )
            bounded = find_slots(
                session, longest_block_minutes=tenant.longest_block_minutes, **arguments
            )
            whole_past = find_slots(session, longest_block_minutes=None, **arguments)
            assert bounded == whole_past
            compared += len(whole_past)
        session.rollback()
    assert compared > 500  # the windows had slots to compare, not only busy days


def test_the_index_bounds_the_bookings_query_on_both_sides(app, business, clock):
    """The statement find_slots really sends, explained by the database with its real values,
    over a past of 3,000 bookings (on an empty table PostgreSQL's planner picks any index)."""
    start = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
    past = [
        booking_values(business, at, at + timedelta(minutes=30), number)
        for number, at in enumerate(start - timedelta(hours=2 * n) for n in range(1, 3001))
    ]
    with db.engine_of(app).begin() as connection:
        connection.execute(insert(Booking), past)
    if db.engine_of(app).dialect.name == "postgresql":
        # As the tables' owner: the app's role may not ANALYZE (PostgreSQL only warns), and
        # without statistics the planner may pick any index.
        with as_tables_owner(app) as owner:
            owner.exec_driver_sql("ANALYZE bookings")
    with app.app_context():
        session = db.session()
        tenant = session.get(Tenant, business.tenant_id)
        engine = db.engine_of(app)
        sent: list[tuple[str, object]] = []

        def keep(_connection, _cursor, statement, parameters, _context, _many):
            if "FROM bookings" in statement:
                sent.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", keep)
        try:
            find_slots(
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
        [(statement, parameters)] = sent
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            details = [row[-1] for row in plan]
            assert (
                "SEARCH bookings USING INDEX ix_bookings_provider_blocked"
                " (provider_id=? AND blocked_from>? AND blocked_from<?)"
            ) in details, details
        else:
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            details = "\n".join(row[0] for row in plan)
            assert "ix_bookings_provider_blocked" in details, details
            condition = details[details.index("ix_bookings_provider_blocked") :]
            assert "(blocked_from >=" in condition and "(blocked_from <" in condition, details


def migrate(engine, revision):
    with engine.begin() as connection:
        command.upgrade(schema.alembic_config(connection), revision)


def test_migration_0013_backfills_the_bound_from_services_and_bookings(blank_database_url):
    """The salon's longest service (30 + 10 + 5) is its bound; the clinic's old booking, of a
    service since shortened to an hour, blocks 3 h 30 min and 30 s: 211 minutes, rounded up."""
    engine = create_engine(blank_database_url)
    migrate(engine, "0012")
    created = datetime(2027, 3, 1, 8, 0)
    with Session(engine) as session, session.begin():

        def row(sql: str, **values) -> int:
            return session.execute(text(sql + " RETURNING id"), values).scalar_one()

        tenants = {
            slug: row(
                "INSERT INTO tenants (slug, name, timezone, created_at)"
                " VALUES (:slug, :slug, 'UTC', :now)",
                slug=slug,
                now=created,
            )
            for slug in ("salon", "clinic", "empty")
        }
        services = {
            slug: row(
                "INSERT INTO services (tenant_id, name, description, duration_minutes,"
                " buffer_before_minutes, buffer_after_minutes, price_cents, min_notice_minutes,"
                " horizon_days, slot_step_minutes, active)"
                " VALUES (:tenant, 'S', '', :duration, :before, :after, 0, 0, 90, 15, :active)",
                tenant=tenants[slug],
                duration=duration,
                before=before,
                after=after,
                active=True,
            )
            for slug, (duration, before, after) in (("salon", (30, 10, 5)), ("clinic", (60, 0, 0)))
        }
        provider = row(
            "INSERT INTO providers (tenant_id, name, active) VALUES (:tenant, 'P', :active)",
            tenant=tenants["clinic"],
            active=True,
        )
        start = datetime(2027, 1, 4, 9, 0)
        for number, length in enumerate((timedelta(minutes=210, seconds=30), timedelta(hours=1))):
            row(
                "INSERT INTO bookings (tenant_id, reference, manage_token_hash, service_id,"
                " provider_id, starts_at, ends_at, blocked_from, blocked_until, client_name,"
                " client_email, status, price_cents, prepaid_cents, created_at, updated_at)"
                " VALUES (:tenant, :reference, :token, :service, :provider, :start, :end,"
                " :start, :end, 'Ann', 'ann@example.com', 'confirmed', 0, 0, :now, :now)",
                tenant=tenants["clinic"],
                reference=f"OLD-{number}",
                token=f"{number:064d}",
                service=services["clinic"],
                provider=provider,
                start=start + timedelta(days=number),
                end=start + timedelta(days=number) + length,
                now=created,
            )
    migrate(engine, "0013")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT slug, longest_block_minutes FROM tenants"))
        bounds = {slug: minutes for slug, minutes in rows}
    assert bounds == {"salon": 45, "clinic": 211, "empty": 0}
    engine.dispose()
