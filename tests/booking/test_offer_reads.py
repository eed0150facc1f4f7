"""How often a booking reads the offer it books (tenant, service, provider): once for the
guards; on SQLite once more under the write lock, where no change can come in between; on
PostgreSQL, where no such lock holds them, never twice."""

from __future__ import annotations

from conftest import booking_body
from sqlalchemy import event

from bookwell.core.storage import db

BOOKINGS = "/api/v1/tenants/salon/bookings"


def test_a_booking_reads_its_offer_once_on_postgresql_twice_on_sqlite(app, client, business):
    engine = db.engine_of(app)
    offer_reads: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def on_execute(_connection, _cursor, statement, _parameters, _context, _many):
        # The offer's one query reads the service's price with the provider beside it.
        if "services.price_cents" in statement and "providers.name" in statement:
            offer_reads.append(statement)

    response = client.post(BOOKINGS, json=booking_body(business, "2027-03-02T10:00:00+01:00"))
    assert response.status_code == 201, response.json
    assert len(offer_reads) == (2 if engine.dialect.name == "sqlite" else 1)
    assert response.json["service_id"] == business.service_id
    assert response.json["provider_id"] == business.provider_id
