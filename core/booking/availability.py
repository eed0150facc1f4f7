"""Free slots: working hours, minus time off, minus what bookings block, within notice and horizon.

Everything is decided on UTC instants, as integer epoch seconds (the database computes them, so
no row becomes a datetime object on the way). Working hours are wall-clock times in the tenant's
zone, turned into instants day by day, so a day on which the clocks change simply has an hour more
or less of opening; slots step through *elapsed* time from the opening's start.

What clients are offered (the API's availability, the booking pages) is :func:`offered_slots`:
the same, less the times the tenant's plugins leave out (``unavailable_times``). Making a booking
checks :func:`find_slots` alone: there the plugins' guards are the authority.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, bindparam, literal, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from bookwell.core.context import make_context
from bookwell.core.pluginhost.host import PluginHost, host_of
from bookwell.core.storage.db import UTCDateTime
from bookwell.core.storage.models import (
    BLOCKING_STATUSES,
    Booking,
    Provider,
    ProviderService,
    Service,
    Tenant,
    TimeOff,
)
from bookwell.core.storage.models import WorkingHours as WorkingHoursRow
from bookwell.hooks import Context, ProviderInfo, ServiceInfo

log = logging.getLogger("bookwell.plugins")
HOOK = "unavailable_times"
# Asked once per request with the providers that work (id -> name) and the window asked for;
# it starts finding out and returns how to read the answer once the bookings query has run:
# per provider, the [start, end) epoch ranges that no slot may overlap.
LeftOut = Mapping[int, list[tuple[int, int]]]
LeaveOut = Callable[[Mapping[int, str], datetime, datetime], Callable[[], LeftOut]]


class epoch(FunctionElement):  # noqa: N801  (reads like the SQL function it stands for)
    """Whole seconds since 1970 of a stored instant, computed by the database."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    argument = compiler.process(element.clauses, **kw)
    if sqlite3.sqlite_version_info >= (3, 38):
        return f"unixepoch({argument})"  # a third of strftime's cost per row
    return f"CAST(strftime('%s', {argument}) AS INTEGER)"


@compiles(epoch, "postgresql")
def _epoch_postgresql(element, compiler, **kw):
    return f"CAST(extract(epoch FROM {compiler.process(element.clauses, **kw)}) AS BIGINT)"


class Slot(NamedTuple):
    """A free start for one provider; instants kept as epoch seconds until someone asks."""

    start_epoch: int
    end_epoch: int
    provider_id: int

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_epoch, UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.end_epoch, UTC)


class _Intervals:
    """Sorted, non-overlapping half-open intervals ``[start, end)``, merged on the way in."""

    def __init__(self, pairs: list[tuple[int, int]]) -> None:
        starts: list[int] = []
        ends: list[int] = []
        for start, end in sorted(pairs):
            if starts and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        self.starts, self.ends = starts, ends

    def forbidden_starts(
        self, first: int, last: int, reach_before: int, reach_after: int
    ) -> list[tuple[int, int]]:
        """The open ranges ``(start - reach_before, end + reach_after)`` of the intervals that can
        matter to starts in ``[first, last]``: a start strictly inside one overlaps its interval."""
        index = bisect.bisect_right(self.ends, first - reach_after)
        ranges = []
        starts, ends = self.starts, self.ends
        while index < len(starts) and starts[index] - reach_before < last + 1:
            ranges.append((starts[index] - reach_before, ends[index] + reach_after))
            index += 1
        return ranges


def local_day_bounds(day_from: date, day_to: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which ``day_from`` starts and the day after ``day_to`` starts."""
    first = datetime.combine(day_from, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    after = datetime.combine(day_to + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return first, after.astimezone(UTC)


def _round_up(value: int, origin: int, step: int) -> int:
    """The first ``origin + k * step`` (k >= 0) at or after ``value``."""
    if value <= origin:
        return origin
    return origin + -(-(value - origin) // step) * step


def _blocked_statement(leave_one_out: bool):
    """Bookings' blocked ranges (kind 0) and time off (kind 1) of some providers, in one query."""
    booked = select(
        Booking.provider_id,
        literal(0, Integer).label("kind"),
        epoch(Booking.blocked_from),
        epoch(Booking.blocked_until),
    ).where(
        Booking.tenant_id == bindparam("tenant_id"),
        Booking.provider_id.in_(bindparam("providers", expanding=True)),
        Booking.status.in_(BLOCKING_STATUSES),
        Booking.blocked_from < bindparam("reach_until", type_=UTCDateTime()),
        Booking.blocked_until > bindparam("reach_from", type_=UTCDateTime()),
        # Implied by the line above for every booking no longer than the tenant's longest block
        # (blocked_until <= blocked_from + longest, so blocked_until > reach_from gives
        # blocked_from > reach_from - longest; >= keeps one instant to spare), and it is what
        # bounds the index (provider_id, blocked_from, blocked_until) from below: without it the
        # query reads the provider's whole past. EXPLAIN QUERY PLAN on SQLite shows
        # "SEARCH bookings USING INDEX ix_bookings_provider_blocked (provider_id=? AND
        # blocked_from>? AND blocked_from<?)", and PostgreSQL's EXPLAIN an Index Cond with
        # both "blocked_from >=" and "blocked_from <" (tests/booking/test_availability_history.py).
        Booking.blocked_from >= bindparam("earliest_block", type_=UTCDateTime()),
    )
    if leave_one_out:
        booked = booked.where(Booking.id != bindparam("ignored"))
    away = select(
        TimeOff.provider_id,
        literal(1, Integer).label("kind"),
        epoch(TimeOff.starts_at),
        epoch(TimeOff.ends_at),
    ).where(
        TimeOff.provider_id.in_(bindparam("providers", expanding=True)),
        TimeOff.starts_at < bindparam("reach_until", type_=UTCDateTime()),
        TimeOff.ends_at > bindparam("reach_from", type_=UTCDateTime()),
    )
    return union_all(booked, away)


# Built once: availability is the hottest read, and building a statement costs more than running it.
_HOURS = (
    select(
        WorkingHoursRow.provider_id,
        WorkingHoursRow.weekday,
        WorkingHoursRow.starts,
        WorkingHoursRow.ends,
        Provider.name,
    )
    .join(Provider, Provider.id == WorkingHoursRow.provider_id)
    .join(ProviderService, ProviderService.provider_id == Provider.id)
    .where(
        Provider.tenant_id == bindparam("tenant_id"),
        Provider.active.is_(True),
        ProviderService.service_id == bindparam("service_id"),
    )
)
_HOURS_OF_ONE = _HOURS.where(Provider.id == bindparam("provider_id"))
_BLOCKED = _blocked_statement(leave_one_out=False)
_BLOCKED_BUT_ONE = _blocked_statement(leave_one_out=True)


# Earlier than any booking, for no lower bound (SQLite text and PostgreSQL timestamptz hold it).
_BEFORE_ANY_BOOKING = datetime(1000, 1, 1, tzinfo=UTC)


# Slot's generated __new__ parses its arguments (3x slower per slot); and map/zip/range keep the
# loop that makes hundreds of slots a call in C rather than in a generator.
_new_slot = functools.partial(tuple.__new__, Slot)


def _slots(provider: int, first: int, last: int, step: int, duration: int) -> Iterator[Slot]:
    """The slots starting at ``first``, ``first + step``, ... up to ``last`` inclusive."""
    starts = range(first, last + 1, step)
    ends = range(first + duration, last + duration + 1, step)
    return map(_new_slot, zip(starts, ends, itertools.repeat(provider)))


def earliest_block(reach_from: datetime, longest_block_minutes: int | None) -> datetime:
    """The earliest ``blocked_from`` of a booking that can block anything after ``reach_from``:
    one that blocks at most ``longest_block_minutes`` and ends after ``reach_from`` started
    after ``reach_from - longest``, so ``>=`` that instant misses none of them."""
    if longest_block_minutes is None:
        return _BEFORE_ANY_BOOKING
    return reach_from - timedelta(minutes=max(longest_block_minutes, 0))


def find_slots(
    session: Session,
    *,
    tenant_id: int,
    zone: ZoneInfo,
    service: Service,
    day_from: date,
    day_to: date,
    now: datetime,
    longest_block_minutes: int | None,
    provider_id: int | None = None,
    ignore_booking_id: int | None = None,
    leave_out: LeaveOut | None = None,
) -> list[Slot]:
    """Every free start for ``service`` from ``day_from`` to ``day_to`` (inclusive, tenant days).

    ``longest_block_minutes`` is the tenant's (``Tenant.longest_block_minutes``, read in the
    caller's transaction): no booking blocks longer, so only bookings starting that close to the
    window are read. None reads the provider's whole past (for checking the bound itself).
    ``ignore_booking_id`` leaves one booking out of what blocks time, so a booking can be
    rescheduled onto a slot overlapping its own current one. ``leave_out``, asked once, names
    more time that no slot may overlap (see :func:`offered_slots`).
    """
    window_start, window_end = local_day_bounds(day_from, day_to, zone)
    earliest = int(
        max(window_start, now + timedelta(minutes=service.min_notice_minutes)).timestamp()
    )
    latest = int((now + timedelta(days=service.horizon_days)).timestamp())
    if earliest >= window_end.timestamp() or earliest > latest:
        return []

    duration = service.duration_minutes * 60
    before = service.buffer_before_minutes * 60
    after = service.buffer_after_minutes * 60
    step = service.slot_step_minutes * 60

    parameters = {"tenant_id": tenant_id, "service_id": service.id}
    hours = _HOURS if provider_id is None else _HOURS_OF_ONE
    if provider_id is not None:
        parameters["provider_id"] = provider_id
    hours_by_provider: dict[int, dict[int, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    names: dict[int, str] = {}
    for provider, weekday, opens, closes, name in session.execute(hours, parameters).all():
        hours_by_provider[provider][weekday].append((opens, closes))
        names[provider] = name
    if not hours_by_provider:
        return []
    providers = sorted(hours_by_provider)
    overlapping_openings = any(
        len(spans) > 1 for weekly in hours_by_provider.values() for spans in weekly.values()
    )

    # What plugins leave out is worked out on their threads while the bookings query runs.
    read_left_out = leave_out(names, window_start, window_end) if leave_out is not None else None
    # Widen by the buffers: a booking just outside the window can still block its edge slots.
    reach_from = window_start - timedelta(seconds=after + before + duration)
    reach_until = window_end + timedelta(seconds=after + before + duration)
    blocked = _BLOCKED if ignore_booking_id is None else _BLOCKED_BUT_ONE
    rows = session.execute(
        blocked,
        {
            "tenant_id": tenant_id,
            "providers": providers,
            "reach_from": reach_from,
            "reach_until": reach_until,
            "earliest_block": earliest_block(reach_from, longest_block_minutes),
            "ignored": ignore_booking_id,
        },
    ).all()
    pairs: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for provider, kind, starts, ends in rows:
        pairs[provider, kind].append((starts, ends))
    left_out = read_left_out() if read_left_out is not None else {}

    found: list[Slot] = []
    for provider in providers:
        busy = _Intervals(pairs[provider, 0])
        absent = _Intervals(pairs[provider, 1])
        # Like time off: what plugins leave out may not meet the appointment (buffers may).
        elsewhere = _Intervals(left_out[provider]) if provider in left_out else None
        weekly = hours_by_provider[provider]
        day = day_from
        while day <= day_to:
            for opens, closes in weekly.get(day.weekday(), ()):
                origin = int(datetime.combine(day, opens, tzinfo=zone).timestamp())
                closing = int(datetime.combine(day, closes, tzinfo=zone).timestamp())
                first = _round_up(earliest, origin, step)
                last = min(closing - duration, latest)
                if first > last:
                    continue
                # A start s is refused when s - before < booked end and s + duration + after >
                # booked start, or when the appointment itself meets time off: both are open
                # ranges of s, so the free starts are what lies between them.
                refused = busy.forbidden_starts(first, last, duration + after, before)
                refused += absent.forbidden_starts(first, last, duration, 0)
                if elsewhere is not None:
                    refused += elsewhere.forbidden_starts(first, last, duration, 0)
                refused.sort()
                cursor = first
                for low, high in refused:
                    if low >= cursor:
                        found.extend(_slots(provider, cursor, min(low, last), step, duration))
                    cursor = max(cursor, _round_up(high, origin, step))
                    if cursor > last:
                        break
                found.extend(_slots(provider, cursor, last, step, duration))
            day += timedelta(days=1)
    if overlapping_openings:
        found = list(set(found))  # one entry per provider and start
    found.sort()  # by start, then provider (equal starts have equal ends)
    return found


# --- what plugins leave out -----------------------------------------------------------------------


def offered_slots(
    session: Session,
    tenant: Tenant,
    *,
    service: Service,
    day_from: date,
    day_to: date,
    now: datetime,
    provider_id: int | None = None,
    ignore_booking_id: int | None = None,
) -> list[Slot]:
    """The free starts clients are offered: :func:`find_slots`, less the ranges the tenant's
    enabled plugins answer from ``unavailable_times``, each asked once per provider for the
    whole window. A plugin that fails is logged and its ranges are not left out: a slot it
    would have hidden is still refused at booking time by its guards, if it has any."""

    def plugins_leave_out(
        providers: Mapping[int, str], start: datetime, end: datetime
    ) -> Callable[[], LeftOut]:
        return unavailable_times(host_of(), session, tenant, service, providers, start, end, now)

    return find_slots(
        session,
        tenant_id=tenant.id,
        zone=tenant.zone,
        service=service,
        day_from=day_from,
        day_to=day_to,
        now=now,
        longest_block_minutes=tenant.longest_block_minutes,
        provider_id=provider_id,
        ignore_booking_id=ignore_booking_id,
        leave_out=plugins_leave_out,
    )


def unavailable_times(
    host: PluginHost,
    session: Session,
    tenant: Tenant,
    service: Service,
    providers: Mapping[int, str],
    start: datetime,
    end: datetime,
    now: datetime,
) -> Callable[[], LeftOut]:
    """Start asking the tenant's plugins, each once per provider and all at once; the result
    reads their answers: per provider, the epoch ranges ``[start, end)`` they leave out. A
    plugin that fails is logged and counted once, and what it failed to answer hides nothing."""
    enabled = host.enabled_for(session, tenant.id)
    if not enabled:
        return dict
    ctx = make_context(tenant, now)
    about = ServiceInfo(service.id, service.name, service.duration_minutes, service.price_cents)
    asked = list(providers.items())
    pending = host.start_each(
        HOOK,
        ctx,
        enabled,
        [
            {"start": start, "end": end, "service": about, "provider": ProviderInfo(id_, name)}
            for id_, name in asked
        ],
    )

    def read() -> LeftOut:
        left_out: dict[int, list[tuple[int, int]]] = defaultdict(list)
        failed: set[str] = set()
        for name, index, answer, failure in pending():
            if failure is not None:
                if name not in failed:
                    failed.add(name)
                    log.warning("plugin %s: %s failed; what it names is not left out", name, HOOK)
            elif answer is not None:
                left_out[asked[index][0]].extend(_ranges(host, ctx, name, answer))
        return left_out

    return read


def _ranges(host: PluginHost, ctx: Context, plugin: str, answer: Any) -> list[tuple[int, int]]:
    """The answer's ``(start, end)`` pairs of aware datetimes, ``start < end``, as epoch ranges
    wide enough to cover a fraction of a second; anything else is logged and left aside."""
    # A collection, not any iterable: a generator would run the plugin's code here, outside
    # the time limit its call had on the host's pool.
    if not isinstance(answer, list | tuple | set | frozenset):
        log.error("plugin %s: %s returned %r, not a list of ranges", plugin, HOOK, answer)
        host.note_failure(ctx, plugin, HOOK, f"returned {type(answer).__name__}, not a list")
        return []
    ranges, wrong = [], 0
    for item in answer:
        # Written out rather than with all(...): this runs for every range of every request.
        if (
            isinstance(item, tuple | list)
            and len(item) == 2
            and isinstance(start := item[0], datetime)
            and isinstance(end := item[1], datetime)
            # tzinfo rather than utcoffset(): a zone's offset is asked once, by timestamp().
            and start.tzinfo is not None
            and end.tzinfo is not None
            and (low := start.timestamp()) < (high := end.timestamp())
        ):
            ranges.append((math.floor(low), math.ceil(high)))
        else:
            wrong += 1
    if wrong:
        log.error("plugin %s: %s answered %d ranges that are not (start, end)", plugin, HOOK, wrong)
        host.note_failure(
            ctx, plugin, HOOK, f"answered {wrong} ranges that are not (start, end) aware datetimes"
        )
    return ranges
