"""Availability as a property (issue 17, point 0): for random services, opening hours (overlapping
spans included), time off and bookings, in zones with odd offsets and on the days their clocks
change, what clients are offered is exactly what a plain brute-force oracle finds: every start on
the step grid of an opening span of that local day, within notice and horizon, that overlaps no
confirmed booking widened by both bookings' buffers and no time off.

Runs on a real SQLite file (or PostgreSQL with ``BOOKWELL_TEST_POSTGRES``); every row is made
through core's own functions. Hypothesis profiles (``BOOKWELL_HYPOTHESIS_PROFILE``): ``ci``, the
default, 150 examples in a fixed order so that CI cannot flake; ``quick`` (30, for mutation
runs); ``deep`` (2,000, random, for a hunt by hand).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bookwell.core.booking import lifecycle
from bookwell.core.booking.availability import find_slots, offered_slots
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Service, Tenant, TimeOff

# Each example makes a tenant of its own on the test's one database, so the function-scoped
# app fixture is shared on purpose.
_SHARED = {"suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True, database=None, **_SHARED
)
settings.register_profile(
    "quick", max_examples=30, deadline=None, derandomize=True, database=None, **_SHARED
)
settings.register_profile("deep", max_examples=2000, deadline=None, **_SHARED)
PROFILE = settings.get_profile(os.environ.get("BOOKWELL_HYPOTHESIS_PROFILE", "ci"))

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
# Days the clocks change somewhere above (Lord Howe moves by half an hour), and plain days.
DAYS = [
    date(2027, 3, 14),  # New York springs forward
    date(2027, 11, 7),  # New York falls back
    date(2027, 3, 28),  # Paris springs forward
    date(2027, 10, 31),  # Paris falls back
    date(2027, 4, 4),  # Lord Howe: back to standard time
    date(2027, 10, 3),  # Lord Howe: summer time
    date(2027, 6, 15),
    date(2027, 12, 31),
]
MINUTE = 60
_slugs = itertools.count()


@dataclass(frozen=True)
class ServiceSpec:
    duration: int
    before: int
    after: int
    step: int
    notice: int
    horizon_days: int


services = st.builds(
    ServiceSpec,
    duration=st.sampled_from([15, 30, 45, 60, 90]),
    before=st.sampled_from([0, 0, 5, 15, 30, 60]),
    after=st.sampled_from([0, 0, 10, 15, 60]),
    step=st.sampled_from([5, 10, 15, 20, 30, 60]),
    notice=st.sampled_from([0, 0, 30, 90, 600]),
    horizon_days=st.sampled_from([1, 3, 400, 400, 400]),
)


@st.composite
def spans(draw):
    """An opening span of one day; it may start in an hour that a change of clocks skips."""
    opens = 0
    if draw(st.booleans()):
        opens = draw(st.integers(0, 46)) * 30 + draw(st.sampled_from([0, 0, 5, 15]))
    closes = min(opens + draw(st.integers(1, 48)) * 30, 23 * 60 + 59)
    return time(*divmod(opens, 60)), time(*divmod(closes, 60))


# Every weekday has hours (a span shorter than the service closes a day in effect); up to three
# spans a day, which may overlap.
weekly_hours = st.fixed_dictionaries(
    {weekday: st.lists(spans(), min_size=1, max_size=3) for weekday in range(7)}
)


def epoch(instant: datetime) -> int:
    return int(instant.timestamp())


def local_midnight(day: date, zone: ZoneInfo) -> int:
    return epoch(datetime.combine(day, time(0), tzinfo=zone))


def oracle(
    zone, spec, hours, blocks, absences, day_from, day_to, now, only_provider=None
) -> set[tuple[int, int, int]]:
    """Every (start, end, provider) to offer, by trying each start of each grid in turn."""
    duration, before, after, step = (
        spec.duration * MINUTE,
        spec.before * MINUTE,
        spec.after * MINUTE,
        spec.step * MINUTE,
    )
    earliest = max(local_midnight(day_from, zone), epoch(now) + spec.notice * MINUTE)
    latest = epoch(now) + spec.horizon_days * 86400
    offered = set()
    for provider, weekly in hours.items():
        if only_provider not in (None, provider):
            continue
        day = day_from
        while day <= day_to:
            for opens, closes in weekly.get(day.weekday(), []):
                origin = epoch(datetime.combine(day, opens, tzinfo=zone))
                closing = epoch(datetime.combine(day, closes, tzinfo=zone))
                start = origin
                while start + duration <= closing:
                    end = start + duration
                    if (
                        earliest <= start <= latest
                        and not any(
                            start - before < until and since < end + after
                            for since, until in blocks.get(provider, [])
                        )
                        and not any(
                            start < until and since < end
                            for since, until in absences.get(provider, [])
                        )
                    ):
                        offered.add((start, end, provider))
                    start += step
            day += timedelta(days=1)
    return offered


def stored_blocks(session, provider_ids, ignored=None):
    """The confirmed bookings' blocked ranges as the database has them, per provider."""
    blocks: dict[int, list[tuple[int, int]]] = {}
    for booking in session.scalars(select(Booking).where(Booking.provider_id.in_(provider_ids))):
        if booking.status == "confirmed" and booking.id != ignored:
            blocks.setdefault(booking.provider_id, []).append(
                (epoch(booking.blocked_from), epoch(booking.blocked_until))
            )
    return blocks


def pick_near_an_edge(data, free, zone, attempt):
    """One of ``free``: a local day's first or last free start, or any."""
    days = sorted({datetime.fromtimestamp(start, zone).date() for start, _, _ in free})
    day = data.draw(st.sampled_from(days), f"day {attempt}")
    of_day = [slot for slot in free if datetime.fromtimestamp(slot[0], zone).date() == day]
    where = data.draw(st.sampled_from(["first", "last", "any"]), f"where {attempt}")
    if where == "first":
        return of_day[0]
    if where == "last":
        return of_day[-1]
    return of_day[data.draw(st.integers(0, len(of_day) - 1), f"start {attempt}")]


def check_each_slot(found, zone, spec, hours, blocks, absences, day_from, day_to):
    """The property stated slot by slot, for a failure that reads as what went wrong."""
    duration, before, after, step = (
        spec.duration * MINUTE,
        spec.before * MINUTE,
        spec.after * MINUTE,
        spec.step * MINUTE,
    )
    for start, end, provider in found:
        shown = datetime.fromtimestamp(start, zone).isoformat()
        assert end - start == duration, shown
        for since, until in blocks.get(provider, []):
            assert not (start - before < until and since < end + after), f"{shown} meets a booking"
        for since, until in absences.get(provider, []):
            assert not (start < until and since < end), f"{shown} meets time off"
        on_grid = False
        day = day_from
        while day <= day_to and not on_grid:
            for opens, closes in hours[provider].get(day.weekday(), []):
                origin = epoch(datetime.combine(day, opens, tzinfo=zone))
                closing = epoch(datetime.combine(day, closes, tzinfo=zone))
                if origin <= start and end <= closing and (start - origin) % step == 0:
                    on_grid = True
            day += timedelta(days=1)
        assert on_grid, f"{shown} is not on a step of an opening span of its day"


@given(
    data=st.data(),
    zone_name=st.sampled_from(ZONES),
    spec=services,
    other=services,
    first_day=st.sampled_from(DAYS),
    days_before=st.integers(0, 1),
    days_after=st.integers(0, 2),
    now_offset_minutes=st.integers(-36 * 60, 12 * 60),
    provider_count=st.integers(1, 2),
)
@settings(PROFILE)
def test_offered_slots_are_what_the_oracle_finds(
    app,
    data,
    zone_name,
    spec,
    other,
    first_day,
    days_before,
    days_after,
    now_offset_minutes,
    provider_count,
):
    zone = ZoneInfo(zone_name)
    day_from = first_day - timedelta(days=days_before)
    day_to = day_from + timedelta(days=days_after)
    window_start = datetime.fromtimestamp(local_midnight(day_from, zone), UTC)
    window_end = datetime.fromtimestamp(local_midnight(day_to + timedelta(days=1), zone), UTC)
    hours = {index: data.draw(weekly_hours, f"hours {index}") for index in range(provider_count)}

    with db.write_transaction(app) as session:
        tenant = create_tenant(
            session,
            f"prop{next(_slugs)}",
            name="Property",
            timezone=zone_name,
            now=datetime(2027, 1, 1, tzinfo=UTC),
        )
        made = [
            add_service(
                session,
                tenant,
                name,
                duration_minutes=made_spec.duration,
                buffer_before_minutes=made_spec.before,
                buffer_after_minutes=made_spec.after,
                slot_step_minutes=made_spec.step,
                min_notice_minutes=made_spec.notice,
                horizon_days=made_spec.horizon_days,
            )
            for name, made_spec in (("Asked", spec), ("Other", other))
        ]
        providers = {
            index: add_provider(session, tenant, f"P{index}", made, weekly).id
            for index, weekly in hours.items()
        }
        tenant_id, service_id, other_id = tenant.id, made[0].id, made[1].id
        absences: dict[int, list[tuple[int, int]]] = {}
        for index, provider_id in providers.items():
            for offset, length in data.draw(
                st.lists(
                    st.tuples(st.integers(-12 * 60, 4 * 24 * 60), st.integers(5, 10 * 60)),
                    max_size=3,
                ),
                f"time off {index}",
            ):
                since = window_start + timedelta(minutes=offset)
                until = since + timedelta(minutes=length)
                session.add(TimeOff(provider_id=provider_id, starts_at=since, ends_at=until))
                absences.setdefault(provider_id, []).append((epoch(since), epoch(until)))
    by_id = {provider_id: hours[index] for index, provider_id in providers.items()}

    # Bookings of both services, and more time off, around the window (the day before and the
    # day after included), each put where the oracle says it is free at the time: a day's first
    # or last free start as often as any, since edges are where slips show.
    made_at = window_start - timedelta(hours=30)
    around = (day_from - timedelta(days=1), day_to + timedelta(days=1))
    booked: list[tuple[str, int]] = []
    for attempt in range(data.draw(st.integers(0, 8), "events")):
        kind, which, which_spec = data.draw(
            st.sampled_from(
                [
                    ("booking", service_id, spec),
                    ("booking", other_id, other),
                    ("time off", service_id, spec),
                ]
            ),
            f"event {attempt}",
        )
        with db.fresh_session(app) as session:
            blocks = stored_blocks(session, list(by_id))
        free = sorted(oracle(zone, which_spec, by_id, blocks, absences, *around, made_at))
        if not free:
            continue
        start, _, provider_id = pick_near_an_edge(data, free, zone, attempt)
        if kind == "time off":
            since = datetime.fromtimestamp(start, UTC) + timedelta(
                minutes=data.draw(st.sampled_from([-20, -5, 0, 5, 30]), f"shift {attempt}")
            )
            until = since + timedelta(
                minutes=data.draw(st.sampled_from([5, 15, 60, 180]), f"length {attempt}")
            )
            with db.write_transaction(app) as session:
                session.add(TimeOff(provider_id=provider_id, starts_at=since, ends_at=until))
            absences.setdefault(provider_id, []).append((epoch(since), epoch(until)))
            continue
        # An app context per call, as per request: its session reads what was just written.
        with app.app_context():
            booking, _ = lifecycle.create_booking(
                app,
                tenant_id=tenant_id,
                service_id=which,
                provider_id=provider_id,
                start=datetime.fromtimestamp(start, UTC),
                client=lifecycle.ClientDetails("Ann", "ann@example.com"),
                now=made_at,
            )
            booked.append((booking.reference, booking.id))
    if booked and data.draw(st.booleans(), "cancel one"):
        reference, _ = booked.pop(data.draw(st.integers(0, len(booked) - 1), "cancelled"))
        with app.app_context():
            lifecycle.cancel_booking(
                app,
                tenant_id=tenant_id,
                reference=reference,
                authorise=lambda booking: None,
                now=made_at,
            )
    ignored = (
        data.draw(st.sampled_from(booked), "ignored")[1]
        if booked and data.draw(st.booleans(), "ignore one")
        else None
    )
    only = data.draw(st.sampled_from([None, *by_id]), "provider asked")

    now = window_start + timedelta(minutes=now_offset_minutes)
    with app.app_context():
        session = db.session()
        blocks = stored_blocks(session, list(by_id), ignored)
        expected = oracle(zone, spec, by_id, blocks, absences, day_from, day_to, now, only)
        tenant = session.get(Tenant, tenant_id)
        service = session.get(Service, service_id)
        found = offered_slots(
            session,
            tenant,
            service=service,
            day_from=day_from,
            day_to=day_to,
            now=now,
            provider_id=only,
            ignore_booking_id=ignored,
        )
        plain = find_slots(
            session,
            tenant_id=tenant_id,
            zone=zone,
            service=service,
            day_from=day_from,
            day_to=day_to,
            now=now,
            provider_id=only,
            ignore_booking_id=ignored,
            longest_block_minutes=tenant.longest_block_minutes,
        )
    event(f"slots offered: {min(len(found), 20) // 5 * 5}+")
    event(f"bookings kept: {len(booked)}")
    triples = [(slot.start_epoch, slot.end_epoch, slot.provider_id) for slot in found]
    check_each_slot(triples, zone, spec, by_id, blocks, absences, day_from, day_to)
    assert all(window_start <= slot.start < window_end for slot in found)
    assert triples == sorted(set(triples)), "one entry per provider and start, in order"
    assert set(triples) == expected
    assert plain == found  # no plugin is enabled: nothing is left out
