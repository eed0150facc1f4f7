"""No double booking, ever: the database holds the line, whatever the timing."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from conftest import booking_body
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Service

RACERS = 50


def count_active(app) -> int:
    with db.engine_of(app).connect() as connection:
        return connection.scalar(
            select(func.count()).select_from(Booking).where(Booking.status != "cancelled")
        )


def race(app, bodies):
    """Fire every body at once, each from its own thread (and so its own connection)."""
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = [0] * len(bodies)

    def book(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        statuses[index] = client.post(
            "/api/v1/tenants/salon/bookings", json=bodies[index]
        ).status_code

    threads = [threading.Thread(target=book, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return Counter(statuses)


@pytest.fixture
def race_app(make_app):
    # Enough pooled connections that every racer really holds its own.
    return make_app(DATABASE_POOL_SIZE=RACERS + 5, LOCK_TIMEOUT_SECONDS=30)


def test_fifty_clients_racing_for_one_slot_make_one_booking(race_app, business):
    bodies = [
        booking_body(business, "2027-03-02T10:00:00+01:00", name=f"Racer{index}")
        for index in range(RACERS)
    ]
    outcome = race(race_app, bodies)
    assert outcome[201] == 1, outcome
    assert outcome[409] == RACERS - 1, outcome
    assert count_active(race_app) == 1


def test_racing_for_overlapping_slots_of_a_longer_service_makes_one_booking(race_app, business):
    with db.write_transaction(race_app) as session:
        service = session.get(Service, business.service_id)
        service.duration_minutes, service.slot_step_minutes = 60, 15
    starts = ["10:00", "10:15", "10:30", "10:45"]
    bodies = [
        booking_body(business, f"2027-03-02T{starts[index % 4]}:00+01:00", name=f"R{index}")
        for index in range(RACERS)
    ]
    outcome = race(race_app, bodies)
    assert outcome[201] == 1, outcome
    assert count_active(race_app) == 1


def test_an_overlapping_but_different_slot_is_refused(app, client, business):
    with db.write_transaction(app) as session:
        service = session.get(Service, business.service_id)
        service.duration_minutes, service.slot_step_minutes = 60, 30
    first = client.post(
        "/api/v1/tenants/salon/bookings", json=booking_body(business, "2027-03-02T10:00:00+01:00")
    )
    assert first.status_code == 201
    overlapping = client.post(
        "/api/v1/tenants/salon/bookings",
        json=booking_body(business, "2027-03-02T10:30:00+01:00", name="Bob"),
    )
    assert overlapping.status_code == 409
    assert overlapping.json["error"]["code"] == "slot_unavailable"
    assert count_active(app) == 1


def test_back_to_back_bookings_both_fit(client, business, app):
    for start, name in (("10:00", "Ann"), ("10:30", "Bob"), ("09:30", "Cid")):
        response = client.post(
            "/api/v1/tenants/salon/bookings",
            json=booking_body(business, f"2027-03-02T{start}:00+01:00", name=name),
        )
        assert response.status_code == 201, response.json
    assert count_active(app) == 3


def test_the_same_time_with_another_provider_is_fine(client, business):
    for provider in (business.provider_id, business.second_provider_id):
        response = client.post(
            "/api/v1/tenants/salon/bookings",
            json=booking_body(business, "2027-03-02T10:00:00+01:00", provider_id=provider),
        )
        assert response.status_code == 201


def test_cancelling_frees_the_slot(client, business, app):
    first = client.post(
        "/api/v1/tenants/salon/bookings", json=booking_body(business, "2027-03-02T10:00:00+01:00")
    ).json
    cancelled = client.post(
        f"/api/v1/tenants/salon/bookings/{first['reference']}/cancel",
        json={"token": first["manage_token"]},
    )
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"
    again = client.post(
        "/api/v1/tenants/salon/bookings",
        json=booking_body(business, "2027-03-02T10:00:00+01:00", name="Bob"),
    )
    assert again.status_code == 201
    assert count_active(app) == 1


def test_postgresql_itself_refuses_overlapping_blocked_ranges(app, business):
    """The guarantee lives in the database, not only in the app's check."""
    if db.engine_of(app).dialect.name != "postgresql":
        pytest.skip("the exclusion constraint is PostgreSQL's; SQLite relies on BEGIN IMMEDIATE")
    insert = text(
        "INSERT INTO bookings (tenant_id, reference, manage_token_hash, service_id, provider_id,"
        " starts_at, ends_at, blocked_from, blocked_until, client_name, client_email, status,"
        " price_cents, prepaid_cents, created_at, updated_at) VALUES (:tenant, :reference, 'x',"
        " :service, :provider, :start, :end, :start, :end, 'Direct', 'd@example.com', :status,"
        " 0, 0, now(), now())"
    )
    values = dict(
        tenant=business.tenant_id, service=business.service_id, provider=business.provider_id
    )
    with db.engine_of(app).begin() as connection:
        connection.execute(
            insert,
            dict(
                values,
                reference="A",
                status="confirmed",
                start="2027-03-02 09:00Z",
                end="2027-03-02 10:00Z",
            ),
        )
        # A cancelled booking does not block, and back-to-back ranges do not overlap.
        connection.execute(
            insert,
            dict(
                values,
                reference="B",
                status="cancelled",
                start="2027-03-02 09:30Z",
                end="2027-03-02 10:30Z",
            ),
        )
        connection.execute(
            insert,
            dict(
                values,
                reference="C",
                status="confirmed",
                start="2027-03-02 10:00Z",
                end="2027-03-02 11:00Z",
            ),
        )
    with pytest.raises(IntegrityError, match="bookings_no_overlap"):
        with db.engine_of(app).begin() as connection:
            connection.execute(
                insert,
                dict(
                    values,
                    reference="D",
                    status="confirmed",
                    start="2027-03-02 09:59Z",
                    end="2027-03-02 10:01Z",
                ),
            )


def test_a_lock_not_granted_in_time_answers_503_and_books_nothing(make_app, business):
    app = make_app(LOCK_TIMEOUT_SECONDS=0.3)
    engine = db.engine_of(app)
    blocker = engine.raw_connection()
    try:
        cursor = blocker.cursor()
        if engine.dialect.name == "postgresql":
            cursor.execute("BEGIN")
            cursor.execute("LOCK TABLE bookings IN EXCLUSIVE MODE")
        else:
            cursor.execute("BEGIN IMMEDIATE")
        response = app.test_client().post(
            "/api/v1/tenants/salon/bookings",
            json=booking_body(business, "2027-03-02T10:00:00+01:00"),
        )
    finally:
        blocker.rollback()
        blocker.close()
    assert response.status_code == 503
    assert response.json["error"]["code"] == "busy"
    assert int(response.headers["Retry-After"]) > 0
    assert count_active(app) == 0
