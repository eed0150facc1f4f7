"""Free slots: working hours, minus time off, minus what bookings block, within notice and horizon.

Everything is decided on UTC instants. Working hours are wall-clock times in the tenant's zone and
are turned into instants day by day, so a day on which the clocks change simply has an hour more
or less of opening; slots step through *elapsed* time from the opening's start.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import BLOCKING_STATUSES, Booking, Provider, ProviderService, Service, TimeOff
from .models import WorkingHours as WorkingHoursRow


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime
    provider_id: int


class _Intervals:
    """Sorted, non-overlapping half-open intervals with an O(log n) overlap test."""

    def __init__(self, pairs: list[tuple[datetime, datetime]]) -> None:
        merged: list[list[datetime]] = []
        for start, end in sorted(pairs):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [interval[0] for interval in merged]
        self.ends = [interval[1] for interval in merged]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        index = bisect.bisect_right(self.ends, start)
        return index < len(self.starts) and self.starts[index] < end


def local_day_bounds(day_from: date, day_to: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which ``day_from`` starts and the day after ``day_to`` starts."""
    first = datetime.combine(day_from, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    after = datetime.combine(day_to + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return first, after.astimezone(UTC)


def eligible_providers(
    session: Session, tenant_id: int, service_id: int, provider_id: int | None = None
) -> list[int]:
    query = (
        select(Provider.id)
        .join(ProviderService, ProviderService.provider_id == Provider.id)
        .where(
            Provider.tenant_id == tenant_id,
            Provider.active.is_(True),
            ProviderService.service_id == service_id,
        )
        .order_by(Provider.id)
    )
    if provider_id is not None:
        query = query.where(Provider.id == provider_id)
    return list(session.scalars(query))


def find_slots(
    session: Session,
    *,
    tenant_id: int,
    zone: ZoneInfo,
    service: Service,
    day_from: date,
    day_to: date,
    now: datetime,
    provider_id: int | None = None,
    ignore_booking_id: int | None = None,
) -> list[Slot]:
    """Every free start for ``service`` from ``day_from`` to ``day_to`` (inclusive, tenant days).

    ``ignore_booking_id`` leaves one booking out of what blocks time, so a booking can be
    rescheduled onto a slot overlapping its own current one.
    """
    providers = eligible_providers(session, tenant_id, service.id, provider_id)
    if not providers:
        return []
    window_start, window_end = local_day_bounds(day_from, day_to, zone)
    earliest = max(window_start, now + timedelta(minutes=service.min_notice_minutes))
    latest = now + timedelta(days=service.horizon_days)
    if earliest >= window_end or earliest > latest:
        return []

    duration = timedelta(minutes=service.duration_minutes)
    before = timedelta(minutes=service.buffer_before_minutes)
    after = timedelta(minutes=service.buffer_after_minutes)
    step = timedelta(minutes=service.slot_step_minutes)

    hours_by_provider: dict[int, dict[int, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    for row in session.execute(
        select(
            WorkingHoursRow.provider_id,
            WorkingHoursRow.weekday,
            WorkingHoursRow.starts,
            WorkingHoursRow.ends,
        ).where(WorkingHoursRow.provider_id.in_(providers))
    ):
        hours_by_provider[row.provider_id][row.weekday].append((row.starts, row.ends))

    # Widen by the buffers: a booking just outside the window can still block its edge slots.
    reach_from = window_start - after - before - duration
    reach_until = window_end + before + after + duration
    busy_pairs: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    booking_query = select(Booking.provider_id, Booking.blocked_from, Booking.blocked_until).where(
        Booking.tenant_id == tenant_id,
        Booking.provider_id.in_(providers),
        Booking.status.in_(BLOCKING_STATUSES),
        Booking.blocked_from < reach_until,
        Booking.blocked_until > reach_from,
    )
    if ignore_booking_id is not None:
        booking_query = booking_query.where(Booking.id != ignore_booking_id)
    for provider, blocked_from, blocked_until in session.execute(booking_query):
        busy_pairs[provider].append((blocked_from, blocked_until))

    off_pairs: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for provider, starts_at, ends_at in session.execute(
        select(TimeOff.provider_id, TimeOff.starts_at, TimeOff.ends_at).where(
            TimeOff.provider_id.in_(providers),
            TimeOff.starts_at < reach_until,
            TimeOff.ends_at > reach_from,
        )
    ):
        off_pairs[provider].append((starts_at, ends_at))

    slots: list[Slot] = []
    for provider in providers:
        busy = _Intervals(busy_pairs[provider])
        away = _Intervals(off_pairs[provider])
        seen: set[datetime] = set()
        day = day_from
        while day <= day_to:
            for opens, closes in hours_by_provider[provider].get(day.weekday(), ()):
                start = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
                closing = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
                while start + duration <= closing:
                    end = start + duration
                    if (
                        earliest <= start <= latest
                        and start not in seen
                        and not busy.overlaps(start - before, end + after)
                        and not away.overlaps(start, end)
                    ):
                        seen.add(start)
                        slots.append(Slot(start, end, provider))
                    start += step
            day += timedelta(days=1)
    slots.sort(key=lambda slot: (slot.start, slot.provider_id))
    return slots
