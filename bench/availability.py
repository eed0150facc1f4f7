"""Availability against a provider's past: 1 day and 30 days of one provider holding 2,000,
20,000 and 100,000 past bookings (aim: 100k within 1.5x of 2k, both spans); 30 days at 100k
against the bare SQL query that loads the same bookings, bounded on both sides by the index as
``find_slots``' own query is (aim: at most 3x); and what clients are offered with a plugin's
``unavailable_times`` on (a lunch hour a day) against none (aim: at most 1.2x).

Each history is a provider of its own in one database, so all of them share the table (122,000
rows) and the index, as providers of a real business do, and every variant is measured in the
same rounds. The history lies before the window, as a real past does; the window itself holds
the same bookings for every provider, so every variant must offer the very same slots.

The bare query is the floor: whatever ``find_slots`` does, it has to get those rows. Its lower
bound is the one ``find_slots`` uses (``blocked_from >= reach_from - longest block``): without
it, the floor itself would read the whole past and hide the scan in the ratio.
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
from bookwell.core.booking.availability import (
    earliest_block,
    find_slots,
    local_day_bounds,
    offered_slots,
)
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
HISTORIES = (2_000, 20_000, 100_000)
QUICK_HISTORIES = (2_000, 20_000)
BOOKINGS_PER_DAY = 10  # of the 18 half hours of a 09:00-18:00 day
WINDOW_FROM = date(2030, 6, 3)  # fixed, so every run books the very same times
WINDOW_TO = WINDOW_FROM + timedelta(days=29)
# Booked days around the window, the same for every provider: rows just after the window are in
# the table and the index but must not be loaded; the history lies before these.
AROUND = 5
SPANS = {"1 day": WINDOW_FROM, "30 days": WINDOW_TO}
BARE_SQL = "bare SQL, 30 days, {past} past (bounded)"
OFFERED_NONE = "offered 30 days, no plugin"
OFFERED_LUNCH = "offered 30 days, unavailable_times on"
LUNCH = time(12)  # the plugin's hour left out each day: the 11:45 to 12:45 starts go
# The day before the window: with no notice and a year's horizon, every slot in it is bookable.
NOW = datetime.combine(WINDOW_FROM - timedelta(days=1), time(12), tzinfo=ZONE).astimezone(UTC)


def variant_name(span: str, history: int) -> str:
    return f"{span}, {history // 1000}k past"


def booked_cells(first_day: date, days: int, seed: int) -> dict[date, list[int]]:
    """Which half hours (0 = 09:00) are booked each day: a fixed pseudo-random pick."""
    picker = random.Random(seed)
    half_hours = int((CLOSES.hour - OPENS.hour) * 2)
    return {
        first_day + timedelta(days=offset): sorted(
            picker.sample(range(half_hours), BOOKINGS_PER_DAY)
        )
        for offset in range(days)
    }


def around_window() -> dict[date, list[int]]:
    first = WINDOW_FROM - timedelta(days=AROUND)
    return booked_cells(first, (WINDOW_TO - WINDOW_FROM).days + 1 + 2 * AROUND, seed=17)


def history(bookings: int) -> dict[date, list[int]]:
    """``bookings`` past bookings on the days before :func:`around_window`'s."""
    days = bookings // BOOKINGS_PER_DAY
    first = WINDOW_FROM - timedelta(days=AROUND + days)
    return booked_cells(first, days, seed=bookings)


def local_instant(day: date, minutes_after_opening: int) -> datetime:
    opening = datetime.combine(day, OPENS, tzinfo=ZONE)
    return (opening + timedelta(minutes=minutes_after_opening)).astimezone(UTC)


def booking_rows(
    tenant_id: int, service_id: int, provider_id: int, past: int
) -> Iterator[dict[str, Any]]:
    for cells_by_day, status in (
        (history(past), BookingStatus.COMPLETED),
        (around_window(), BookingStatus.CONFIRMED),
    ):
        for day, cells in cells_by_day.items():
            for cell in cells:
                start = local_instant(day, 30 * cell)
                number = f"{provider_id}-{day:%Y%m%d}-{cell}"
                yield {
                    "tenant_id": tenant_id,
                    "reference": f"B{number}",
                    "manage_token_hash": hashlib.sha256(number.encode()).hexdigest(),
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
                    "status": status,
                    "price_cents": 3000,
                    "prepaid_cents": 0,
                    "created_at": start - timedelta(days=30),
                    "updated_at": start - timedelta(days=30),
                    "cancelled_at": None,
                    "cancellation_reason": None,
                }


def expected_in_window(day_to: date, lunch: bool = False) -> tuple[int, int]:
    """(bookings the window's query must load, free slots find_slots must offer) from
    ``WINDOW_FROM`` to ``day_to``, worked out from the generated data alone, so a wrong query
    cannot pass for a fast one; with ``lunch``, the slots offered with the plugin on."""
    bookings = slots = 0
    closing = (CLOSES.hour - OPENS.hour) * 60
    lunch_at = (LUNCH.hour - OPENS.hour) * 60
    for day, cells in around_window().items():
        if not WINDOW_FROM <= day <= day_to:
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
    """The booking query of ``find_slots``, with its WHERE, through the raw DBAPI: bounded from
    below as ``find_slots`` bounds it, so the index is read from both sides."""

    def __init__(
        self, database: ScratchDatabase, tenant_id: int, provider_id: int, longest: int
    ) -> None:
        # The same reach as find_slots: the window widened by the service's duration (no buffers).
        window_start, window_end = local_day_bounds(WINDOW_FROM, WINDOW_TO, ZONE)
        reach_from, reach_until = window_start - DURATION, window_end + DURATION
        statuses = [str(status) for status in BLOCKING_STATUSES]
        mark = "?" if database.kind == "sqlite" else "%s"
        self.sql = (
            "SELECT provider_id, blocked_from, blocked_until FROM bookings"
            f" WHERE tenant_id = {mark} AND provider_id IN ({mark})"
            f" AND status IN ({', '.join(mark for _ in statuses)})"
            f" AND blocked_from < {mark} AND blocked_until > {mark} AND blocked_from >= {mark}"
        )
        instants = [reach_until, reach_from, earliest_block(reach_from, longest)]
        self.connection: Any
        if database.sqlite_path is not None:
            # Stored as SQLAlchemy stores UTC instants on SQLite: naive text, microseconds shown.
            bounds: list[Any] = [
                instant.astimezone(UTC)
                .replace(tzinfo=None)
                .isoformat(sep=" ", timespec="microseconds")
                for instant in instants
            ]
            self.connection = sqlite3.connect(database.sqlite_path)
        else:
            bounds = instants
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


def populate(app: Flask, histories: tuple[int, ...]) -> tuple[int, dict[int, int], Service]:
    """One tenant, one service, a provider open every day per history size, and the bookings;
    returns the tenant's id and each history's provider."""
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
        providers = {
            past: add_provider(session, tenant, f"Past {past}", [service], every_day).id
            for past in histories
        }
        tenant_id = tenant.id
    engine = db.engine_of(app)
    with engine.begin() as connection:
        for past, provider_id in providers.items():
            # One executemany per provider: bulk rows, not create_booking's one at a time.
            connection.execute(
                insert(Booking), list(booking_rows(tenant_id, service.id, provider_id, past))
            )
        if engine.dialect.name == "postgresql":
            # Autovacuum would analyse the fresh table at a moment of its choosing, possibly
            # mid-run, changing the plan between rounds; do it now instead.
            connection.execute(text("ANALYZE bookings"))
    return tenant_id, providers, service


def availability_call(
    app: Flask, tenant: Tenant, provider_id: int, service: Service, day_to: date
) -> Callable[[], list]:
    longest, tenant_id = tenant.longest_block_minutes, tenant.id

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
                day_to=day_to,
                now=NOW,
                longest_block_minutes=longest,
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


def per_call_variant(name: str, call: Callable[[], object], options: Options) -> Variant:
    if options.quick:
        calls = calls_per_measurement(call, target_seconds=0.04, minimum=5)
    else:
        calls = calls_per_measurement(call)

    def measure() -> Measurement:
        return Measurement(seconds_per_call(call, calls) * 1000, {})

    return Variant(name, "ms/call", measure, detail=f"mean of {calls} calls")


def histories_of(options: Options) -> tuple[int, ...]:
    return QUICK_HISTORIES if options.quick else HISTORIES


@contextlib.contextmanager
def prepare(options: Options) -> Iterator[list[Variant]]:
    histories = histories_of(options)
    with scratch_database(options.database_url, options.workdir, "availability") as database:
        app = build_app(database, options)
        apps = [app]
        bare: BareQuery | None = None
        try:
            tenant_id, providers, service = populate(app, histories)
            with app.app_context():
                tenant = db.session().get(Tenant, tenant_id)
                db.session().expunge(tenant)
            variants = []
            for span, day_to in SPANS.items():
                for past, provider_id in providers.items():
                    ours = availability_call(app, tenant, provider_id, service, day_to)
                    check(variant_name(span, past), ours, expected_in_window(day_to)[1])
                    variants.append(per_call_variant(variant_name(span, past), ours, options))
            largest = max(histories)
            bare = BareQuery(database, tenant_id, providers[largest], tenant.longest_block_minutes)
            check_bare(bare)
            variants.append(per_call_variant(bare_name(largest), bare, options))
            # The same database and tenant, which enabled the plugin; only the second app has it
            # installed, so the first offers every slot (the plugin's row is ignored there).
            with_plugin = build_app(database, options, EXTRA_PLUGINS=[LunchBreak])
            apps.append(with_plugin)
            with with_plugin.app_context():
                plugin_changes.enable(with_plugin, tenant_id, "bench-lunch", {}, NOW)
            smallest = providers[min(histories)]
            none = offered_call(app, tenant_id, smallest, service)
            lunch = offered_call(with_plugin, tenant_id, smallest, service)
            check(OFFERED_NONE, none, expected_in_window(WINDOW_TO)[1])
            check(OFFERED_LUNCH, lunch, expected_in_window(WINDOW_TO, lunch=True)[1])
            variants.append(per_call_variant(OFFERED_NONE, none, options))
            variants.append(per_call_variant(OFFERED_LUNCH, lunch, options))
            yield variants
        finally:
            if bare is not None:
                bare.close()
            for built in apps:
                db.engine_of(built).dispose()


def bare_name(past: int) -> str:
    return BARE_SQL.format(past=f"{past // 1000}k")


def check(name: str, call: Callable[[], list], slots: int) -> None:
    offered = len(call())
    if offered != slots:
        raise RuntimeError(f"wrong results: {name} offered {offered} slots (expected {slots})")


def check_bare(bare: BareQuery) -> None:
    bookings = expected_in_window(WINDOW_TO)[0]
    loaded = len(bare())
    if loaded != bookings:
        raise RuntimeError(
            f"wrong results: the bare query loaded {loaded} bookings (expected {bookings})"
        )


# Both the full run's and --quick's: the runner leaves out a comparison whose variants were not
# measured, so --quick (no 100k) compares 20k with 2k instead.
COMPARISONS = (
    *(
        Comparison(variant_name(span, past), variant_name(span, HISTORIES[0]), aim=1.5)
        for past in (HISTORIES[-1], QUICK_HISTORIES[-1])
        for span in SPANS
    ),
    *(
        Comparison(variant_name("30 days", past), bare_name(past), aim=3.0)
        for past in (HISTORIES[-1], QUICK_HISTORIES[-1])
    ),
    Comparison(OFFERED_LUNCH, OFFERED_NONE, aim=1.2),
)

BENCHMARK = Benchmark(
    name="availability",
    description="find_slots for 1 and 30 days of a provider with 2k, 20k, 100k past bookings; "
    "vs the bare query bounded as find_slots' is; offered with an unavailable_times plugin on "
    "vs none",
    prepare=prepare,
    comparisons=COMPARISONS,
)
