"""Availability for 30 days of one provider holding 2,000 bookings, against the bare SQL query
that loads those bookings (aim: at most 3x); and what clients are offered with a plugin's
``unavailable_times`` on (a lunch hour a day) against none (aim: at most 1.2x).

The bare query is the floor: whatever ``find_slots`` does, it has to get those rows. The ratio
says how much the ORM, the other three queries and the slot arithmetic add on top. The plugin's
ratio says what asking it costs: a context, one call on the host's pool, its 30 ranges removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from flask import Flask
from sqlalchemy import insert, text

from bookwell.core import create_app, schema
from bookwell.core.booking.availability import find_slots, local_day_bounds, offered_slots
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import BLOCKING_STATUSES, Booking, BookingStatus, Service, Tenant
from bookwell.hooks import Manifest, hookimpl

from .benchmark import Benchmark, Comparison, Measurement, Options, Variant
from .databases import ScratchDatabase, scratch_database
from .timing import calls_per_measurement, seconds_per_call

ZONE = ZoneInfo("Europe/Paris")
OPENS, CLOSES = time(9), time(18)
DURATION = timedelta(minutes=30)
STEP_MINUTES = 15
BOOKINGS = 2_000
BOOKINGS_PER_DAY = 10  # of the 18 half hours of a 09:00-18:00 day
FIRST_DAY = date(2030, 1, 7)  # fixed, so every run books the very same times
# The 30-day window sits in the middle of the 200 booked days: rows on both sides of it are in the
# table (and in the index) but must not be loaded.
WINDOW_FROM = FIRST_DAY + timedelta(days=100)
WINDOW_TO = WINDOW_FROM + timedelta(days=29)
FIND_SLOTS = "find_slots, 30 days"
BARE_SQL = "bare SQL, same bookings"
OFFERED_NONE = "offered, no plugin"
OFFERED_LUNCH = "offered, unavailable_times on"
LUNCH = time(12)  # the plugin's hour left out each day: the 11:45 to 12:45 starts go
# The day before the window: with no notice and a year's horizon, every slot in it is bookable.
NOW = datetime.combine(WINDOW_FROM - timedelta(days=1), time(12), tzinfo=ZONE).astimezone(UTC)


def booked_cells() -> dict[date, list[int]]:
    """Which half hours (0 = 09:00) are booked each day: a fixed pseudo-random pick."""
    picker = random.Random(BOOKINGS)
    days = BOOKINGS // BOOKINGS_PER_DAY
    half_hours = int((CLOSES.hour - OPENS.hour) * 2)
    return {
        FIRST_DAY + timedelta(days=offset): sorted(
            picker.sample(range(half_hours), BOOKINGS_PER_DAY)
        )
        for offset in range(days)
    }


def local_instant(day: date, minutes_after_opening: int) -> datetime:
    opening = datetime.combine(day, OPENS, tzinfo=ZONE)
    return (opening + timedelta(minutes=minutes_after_opening)).astimezone(UTC)


def booking_rows(tenant_id: int, service_id: int, provider_id: int) -> list[dict[str, Any]]:
    rows = []
    for day, cells in booked_cells().items():
        for cell in cells:
            start = local_instant(day, 30 * cell)
            number = len(rows)
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "reference": f"BENCH-{number:06d}",
                    "manage_token_hash": hashlib.sha256(str(number).encode()).hexdigest(),
                    "service_id": service_id,
                    "provider_id": provider_id,
                    "starts_at": start,
                    "ends_at": start + DURATION,
                    "blocked_from": start,  # no buffers: blocked time is the appointment
                    "blocked_until": start + DURATION,
                    "client_name": f"Client {number}",
                    "client_email": f"client{number}@example.com",
                    "client_phone": None,
                    "client_notes": None,
                    "status": BookingStatus.CONFIRMED,
                    "price_cents": 3000,
                    "prepaid_cents": 0,
                    "created_at": NOW - timedelta(days=30),
                    "updated_at": NOW - timedelta(days=30),
                    "cancelled_at": None,
                    "cancellation_reason": None,
                }
            )
    return rows


def expected_in_window(lunch: bool = False) -> tuple[int, int]:
    """(bookings the window's query must load, free slots find_slots must offer), worked out
    from the generated data alone, so a wrong query cannot pass for a fast one; with ``lunch``,
    the slots offered with the plugin on."""
    bookings = slots = 0
    closing = (CLOSES.hour - OPENS.hour) * 60
    lunch_at = (LUNCH.hour - OPENS.hour) * 60
    for day, cells in booked_cells().items():
        if not WINDOW_FROM <= day <= WINDOW_TO:
            continue
        bookings += len(cells)
        for start in range(0, closing - 30 + 1, STEP_MINUTES):
            if lunch and start < lunch_at + 60 and start + 30 > lunch_at:
                continue
            if not any(start < 30 * cell + 30 and start + 30 > 30 * cell for cell in cells):
                slots += 1
    return bookings, slots


class LunchBreak:
    """A plugin like a real one: a range a day for the whole window, in the business's time."""

    MANIFEST = Manifest("bench-lunch", "Lunch break", "A benchmark plugin.", "1", "bench", "bench")

    @hookimpl
    def unavailable_times(ctx, start, end):
        zone = ZoneInfo(ctx.tenant.timezone)
        day, ranges = start.astimezone(zone).date(), []
        while datetime.combine(day, time(), zone) < end:
            lunch = datetime.combine(day, LUNCH, zone)
            ranges.append((lunch, lunch + timedelta(hours=1)))
            day += timedelta(days=1)
        return ranges


class BareQuery:
    """The booking query of ``find_slots``, with its WHERE, through the raw DBAPI."""

    def __init__(self, database: ScratchDatabase, tenant_id: int, provider_id: int) -> None:
        # The same reach as find_slots: the window widened by the service's duration (no buffers).
        window_start, window_end = local_day_bounds(WINDOW_FROM, WINDOW_TO, ZONE)
        reach_from, reach_until = window_start - DURATION, window_end + DURATION
        statuses = [str(status) for status in BLOCKING_STATUSES]
        mark = "?" if database.kind == "sqlite" else "%s"
        self.sql = (
            "SELECT provider_id, blocked_from, blocked_until FROM bookings"
            f" WHERE tenant_id = {mark} AND provider_id IN ({mark})"
            f" AND status IN ({', '.join(mark for _ in statuses)})"
            f" AND blocked_from < {mark} AND blocked_until > {mark}"
        )
        self.connection: Any
        if database.sqlite_path is not None:
            # Stored as SQLAlchemy stores UTC instants on SQLite: naive text, microseconds shown.
            bounds = [
                instant.astimezone(UTC)
                .replace(tzinfo=None)
                .isoformat(sep=" ", timespec="microseconds")
                for instant in (reach_until, reach_from)
            ]
            self.connection = sqlite3.connect(database.sqlite_path)
        else:
            bounds = [reach_until, reach_from]
            self.connection = psycopg.connect(database.libpq_url, autocommit=True)
        self.parameters = (tenant_id, provider_id, *statuses, *bounds)

    def __call__(self) -> list[Any]:
        return self.connection.execute(self.sql, self.parameters).fetchall()

    def close(self) -> None:
        self.connection.close()


def build_app(database: ScratchDatabase, options: Options, **overrides: Any) -> Flask:
    app = create_app(
        {
            "INSTANCE_PATH": str(options.workdir / "availability-instance"),
            "DATABASE_URL": database.url,
            "SECRET_KEY": "bench",
            "ENCRYPTION_KEY": "bench",
            "RATE_LIMITS": "off",
            "CLOCK": lambda: NOW,
            **overrides,
        }
    )
    schema.upgrade(db.engine_of(app))
    return app


def populate(app: Flask) -> tuple[int, int, Service]:
    """One tenant, one service, one provider open every day, and the 2,000 bookings."""
    with db.write_transaction(app) as session:
        tenant = create_tenant(
            session, "bench", name="Bench", timezone=ZONE.key, now=NOW - timedelta(days=365)
        )
        service = add_service(
            session,
            tenant,
            "Cut",
            duration_minutes=int(DURATION.total_seconds() // 60),
            slot_step_minutes=STEP_MINUTES,
            min_notice_minutes=0,
            horizon_days=365,
            price_cents=3000,
        )
        every_day = {weekday: [(OPENS, CLOSES)] for weekday in range(7)}
        provider = add_provider(session, tenant, "Ana", [service], every_day)
        tenant_id, provider_id = tenant.id, provider.id
    engine = db.engine_of(app)
    with engine.begin() as connection:
        connection.execute(insert(Booking), booking_rows(tenant_id, service.id, provider_id))
        if engine.dialect.name == "postgresql":
            # Autovacuum would analyse the fresh table at a moment of its choosing, possibly
            # mid-run, changing the plan between rounds; do it now instead.
            connection.execute(text("ANALYZE bookings"))
    return tenant_id, provider_id, service


def availability_call(
    app: Flask, tenant_id: int, provider_id: int, service: Service
) -> Callable[[], list]:
    def call() -> list:
        # One app context per call, as one request has: its own session, connection and
        # transaction, all returned when the context ends.
        with app.app_context():
            return find_slots(
                db.session(),
                tenant_id=tenant_id,
                zone=ZONE,
                service=service,
                day_from=WINDOW_FROM,
                day_to=WINDOW_TO,
                now=NOW,
                provider_id=provider_id,
            )

    return call


def offered_call(
    app: Flask, tenant_id: int, provider_id: int, service: Service
) -> Callable[[], list]:
    def call() -> list:
        # As the availability API does: the tenant read in the request, then every slot offered.
        with app.app_context():
            session = db.session()
            return offered_slots(
                session,
                session.get(Tenant, tenant_id),
                service=service,
                day_from=WINDOW_FROM,
                day_to=WINDOW_TO,
                now=NOW,
                provider_id=provider_id,
            )

    return call


def per_call_variant(name: str, call: Callable[[], object]) -> Variant:
    calls = calls_per_measurement(call)

    def measure() -> Measurement:
        return Measurement(seconds_per_call(call, calls) * 1000, {})

    return Variant(name, "ms/call", measure, detail=f"mean of {calls} calls")


@contextlib.contextmanager
def prepare(options: Options) -> Iterator[list[Variant]]:
    with scratch_database(options.database_url, options.workdir, "availability") as database:
        app = build_app(database, options)
        apps = [app]
        bare: BareQuery | None = None
        try:
            tenant_id, provider_id, service = populate(app)
            bare = BareQuery(database, tenant_id, provider_id)
            ours = availability_call(app, tenant_id, provider_id, service)
            check(ours, bare)
            # The same database and tenant, which enabled the plugin; only the second app has it
            # installed, so the first offers every slot (the plugin's row is ignored there).
            with_plugin = build_app(database, options, EXTRA_PLUGINS=[LunchBreak])
            apps.append(with_plugin)
            with with_plugin.app_context():
                plugin_changes.enable(with_plugin, tenant_id, "bench-lunch", {}, NOW)
            none = offered_call(app, tenant_id, provider_id, service)
            lunch = offered_call(with_plugin, tenant_id, provider_id, service)
            check_offered(none, lunch)
            yield [
                per_call_variant(FIND_SLOTS, ours),
                per_call_variant(BARE_SQL, bare),
                per_call_variant(OFFERED_NONE, none),
                per_call_variant(OFFERED_LUNCH, lunch),
            ]
        finally:
            if bare is not None:
                bare.close()
            for built in apps:
                db.engine_of(built).dispose()


def check(ours: Callable[[], list], bare: BareQuery) -> None:
    bookings, slots = expected_in_window()
    loaded, offered = len(bare()), len(ours())
    if (loaded, offered) != (bookings, slots):
        raise RuntimeError(
            f"wrong results: the bare query loaded {loaded} bookings (expected {bookings}),"
            f" find_slots offered {offered} slots (expected {slots})"
        )


def check_offered(none: Callable[[], list], lunch: Callable[[], list]) -> None:
    offered = (len(none()), len(lunch()))
    expected = (expected_in_window()[1], expected_in_window(lunch=True)[1])
    if offered != expected:
        raise RuntimeError(
            f"wrong results: offered {offered[0]} slots with no plugin and {offered[1]} with"
            f" unavailable_times on (expected {expected[0]} and {expected[1]})"
        )


BENCHMARK = Benchmark(
    name="availability",
    description="find_slots for 30 days of a provider with 2,000 bookings vs the bare query; "
    "what is offered with an unavailable_times plugin on vs none",
    prepare=prepare,
    comparisons=(
        Comparison(FIND_SLOTS, BARE_SQL, aim=3.0),
        Comparison(OFFERED_LUNCH, OFFERED_NONE, aim=1.2),
    ),
)
