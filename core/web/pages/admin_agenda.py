"""The agendas' time grids and the month overview of the staff pages.

A grid is a table: one row per quarter of an hour, one column per provider (the day page) or per
day (one table per provider on the week page). A booking is one cell spanning the rows of its
time (``rowspan``: the pages run under a CSP that forbids style attributes, so a block's size
cannot be set inline); a run of closed hours or of time off is one shaded cell likewise. Working
hours are wall-clock times in the tenant's zone, as availability reads them, so a grid's rows are
wall-clock too: on the night the clocks change, a booking is placed by its local start and end.

The month overview (``/admin/<tenant>/month``) counts, per day, the bookings the viewer may read,
without naming a client.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import request
from sqlalchemy import select

from bookwell.core.access.permissions import READ_BOOKINGS
from bookwell.core.booking.availability import local_day_bounds
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, BookingStatus, Provider, TimeOff, WorkingHours
from bookwell.core.web.pages import steps
from bookwell.core.web.pages.admin import (
    WEEK,
    _agenda,
    _day_argument,
    _references,
    _today,
    _unlinked,
    admin_pages,
    page,
    reach_of,
    require_page,
    viewed,
    weekday_names,
)

SLOT_MINUTES = 15
DAY_MINUTES = 24 * 60
# Shown when nobody works and nothing is booked that day: an ordinary office day.
DEFAULT_OPENING = (8 * 60, 18 * 60)


@dataclass(frozen=True)
class Column:
    provider: Provider
    day: date
    today: bool


@dataclass
class Cell:
    """One ``<td>``: ``kind`` is ``booking`` (``bookings``, overlapping ones together), ``off``
    (time off, ``reason``), ``closed`` or ``free``; ``span`` rows tall. ``now``: the current time
    falls in it (today's column only)."""

    kind: str
    span: int = 1
    bookings: list[Booking] = field(default_factory=list)
    reason: str = ""
    now: bool = False
    starts: str = ""
    ends: str = ""


@dataclass
class Row:
    label: str
    hour: bool
    now: bool
    cells: list[Cell | None]  # None: the row is covered by a cell above it (rowspan)


@dataclass
class TimeGrid:
    columns: list[Column]
    rows: list[Row]
    first_minute: int
    last_minute: int


def _minute_of(moment: datetime, day: date, zone: ZoneInfo) -> int:
    """Where ``moment`` falls on ``day``'s wall clock, in minutes, clipped to the day."""
    local = moment.astimezone(zone)
    if local.date() < day:
        return 0
    if local.date() > day:
        return DAY_MINUTES
    return local.hour * 60 + local.minute


def _clock_label(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _opening_hours(provider_ids: Iterable[int]) -> dict[int, dict[int, list[tuple[int, int]]]]:
    """Each provider's opening hours by weekday, as minute ranges."""
    hours: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    ids = list(provider_ids)
    if not ids:
        return hours
    rows = db.session().execute(
        select(
            WorkingHours.provider_id, WorkingHours.weekday, WorkingHours.starts, WorkingHours.ends
        ).where(WorkingHours.provider_id.in_(ids))
    )
    for provider_id, weekday, starts, ends in rows:
        hours[provider_id][weekday].append((_minutes(starts), _minutes(ends) or DAY_MINUTES))
    return hours


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _time_off(provider_ids: Iterable[int], first: date, last: date, zone: ZoneInfo):
    ids = list(provider_ids)
    if not ids:
        return []
    start, end = local_day_bounds(first, last, zone)
    return list(
        db.session().scalars(
            select(TimeOff)
            .where(
                TimeOff.provider_id.in_(ids),
                TimeOff.starts_at < end,
                TimeOff.ends_at > start,
            )
            .order_by(TimeOff.starts_at)
        )
    )


def _clusters(bookings: Sequence[Booking], day: date, zone: ZoneInfo):
    """Bookings that overlap each other (a cancelled one is never drawn, so this is only old or
    imported data) share one block: [(first minute, last minute, bookings)]."""
    found: list[tuple[int, int, list[Booking]]] = []
    for booking in sorted(bookings, key=lambda b: (b.starts_at, b.id)):
        start = _minute_of(booking.starts_at, day, zone)
        end = max(_minute_of(booking.ends_at, day, zone), start + 1)
        if found and start < found[-1][1]:
            first, last, members = found[-1]
            found[-1] = (first, max(last, end), [*members, booking])
        else:
            found.append((start, end, [booking]))
    return found


def time_grid(
    tenant,
    columns: list[Column],
    bookings: dict[tuple[int, date], list[Booking]],
    now: datetime,
) -> TimeGrid:
    """The rows and cells of a grid of ``columns``, with the (drawn) ``bookings`` of each
    (provider id, day), the providers' closed hours and time off shaded."""
    zone = tenant.zone
    provider_ids = {column.provider.id for column in columns}
    hours = _opening_hours(provider_ids)
    days = sorted({column.day for column in columns})
    time_off = _time_off(provider_ids, days[0], days[-1], zone) if days else []
    opening = {
        (column.provider.id, column.day): hours[column.provider.id][column.day.weekday()]
        for column in columns
    }
    off_by_column: dict[tuple[int, date], list[tuple[int, int, str]]] = defaultdict(list)
    for column in columns:
        for item in time_off:
            if item.provider_id != column.provider.id:
                continue
            start = _minute_of(item.starts_at, column.day, zone)
            end = _minute_of(item.ends_at, column.day, zone)
            if start < end:
                off_by_column[(column.provider.id, column.day)].append((start, end, item.reason))
    clusters = {
        key: _clusters(bookings.get(key, []), key[1], zone)
        for key in ((column.provider.id, column.day) for column in columns)
    }
    edges = [edge for ranges in opening.values() for pair in ranges for edge in pair]
    edges += [edge for found in clusters.values() for *pair, _ in found for edge in pair]
    if not edges:
        edges = list(DEFAULT_OPENING)
    first_minute = min(edges) // 60 * 60
    last_minute = min(DAY_MINUTES, -(-max(edges) // 60) * 60)
    if last_minute <= first_minute:
        last_minute = min(DAY_MINUTES, first_minute + 60)
    count = (last_minute - first_minute) // SLOT_MINUTES
    local_now = now.astimezone(zone)
    now_minute = local_now.hour * 60 + local_now.minute
    now_row = None
    if any(column.day == local_now.date() for column in columns):
        if first_minute <= now_minute < last_minute:
            now_row = (now_minute - first_minute) // SLOT_MINUTES
    rows = [
        Row(
            _clock_label(first_minute + index * SLOT_MINUTES),
            (first_minute + index * SLOT_MINUTES) % 60 == 0,
            index == now_row,
            [],
        )
        for index in range(count)
    ]
    for column in columns:
        key = (column.provider.id, column.day)
        cells = _column_cells(
            count,
            first_minute,
            clusters[key],
            opening[key],
            off_by_column[key],
            now_row if column.day == local_now.date() else None,
        )
        for index, cell in enumerate(cells):
            rows[index].cells.append(cell)
    return TimeGrid(columns, rows, first_minute, last_minute)


def _row_of(minute: int, first_minute: int, count: int, *, up: bool = False) -> int:
    offset = minute - first_minute
    row = -(-offset // SLOT_MINUTES) if up else offset // SLOT_MINUTES
    return max(0, min(count, row))


def _column_cells(count, first_minute, clusters, opening, time_off, now_row):
    cells: list[Cell | None] = [None] * count
    taken = [False] * count
    for start, end, members in clusters:
        top = _row_of(start, first_minute, count)
        bottom = max(top + 1, _row_of(end, first_minute, count, up=True))
        bottom = min(bottom, count)
        if top >= count:
            continue
        cells[top] = Cell(
            "booking",
            bottom - top,
            bookings=members,
            now=now_row is not None and top <= now_row < bottom,
        )
        for index in range(top, bottom):
            taken[index] = True
    index = 0
    while index < count:
        if taken[index]:
            index += 1
            continue
        kind, reason = _kind_of(first_minute + index * SLOT_MINUTES, opening, time_off)
        span = 1
        if kind != "free":
            # A run of closed hours, or of one stretch of time off, is one shaded block.
            while (
                index + span < count
                and not taken[index + span]
                and _kind_of(first_minute + (index + span) * SLOT_MINUTES, opening, time_off)
                == (kind, reason)
            ):
                span += 1
        cells[index] = Cell(
            kind,
            span,
            reason=reason,
            # Marked where now starts a cell: a line atop a long shaded block would say "now"
            # at the wrong time.
            now=now_row == index,
            starts=_clock_label(first_minute + index * SLOT_MINUTES),
            ends=_clock_label(first_minute + (index + span) * SLOT_MINUTES),
        )
        index += span
    return cells


def _kind_of(minute: int, opening, time_off) -> tuple[str, str]:
    end = minute + SLOT_MINUTES
    for start, stop, reason in time_off:
        if start < end and minute < stop:
            return "off", reason
    if any(start < end and minute < stop for start, stop in opening):
        return "free", ""
    return "closed", ""


def drawn(listed: Iterable[Booking]) -> list[Booking]:
    """The bookings a grid draws: a cancelled one frees its time, so it is listed apart."""
    return [booking for booking in listed if booking.status != BookingStatus.CANCELLED]


def cancelled(grid) -> list[Booking]:
    found = [
        booking
        for days in grid.values()
        for listed in days.values()
        for booking in listed
        if booking.status == BookingStatus.CANCELLED
    ]
    return sorted(found, key=lambda booking: (booking.starts_at, booking.id))


def day_grid(tenant, providers, day: date, grid) -> TimeGrid:
    # Every column is the same day: the page's heading says whether it is today.
    columns = [Column(provider, day, False) for provider in providers]
    bookings = {(p.id, day): drawn(grid[p.id][day]) for p in providers}
    return time_grid(tenant, columns, bookings, clock.now())


def week_grids(tenant, providers, days: list[date], grid) -> list[tuple[Provider, TimeGrid]]:
    today = _today(tenant)
    found = []
    for provider in providers:
        columns = [Column(provider, day, day == today) for day in days]
        bookings = {(provider.id, day): drawn(grid[provider.id][day]) for day in days}
        found.append((provider, time_grid(tenant, columns, bookings, clock.now())))
    return found


# --- the pages -----------------------------------------------------------------------------------


@admin_pages.get("/", endpoint="day")
def day_agenda(slug: str):
    tenant, user = require_page(slug, READ_BOOKINGS, "bookings", support=True)
    day = _day_argument("date", _today(tenant))
    reach = reach_of(tenant, user)
    providers, _, grid = _agenda(tenant, day, day, reach)
    viewed(tenant, user, f"bookings:{day.isoformat()}..{day.isoformat()}", _references(grid))
    return page(
        "admin/day.html",
        tenant,
        user,
        day=day,
        today=_today(tenant),
        providers=providers,
        grid=grid,
        agenda_grid=day_grid(tenant, providers, day, grid),
        cancelled=cancelled(grid),
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1),
        unlinked=_unlinked(reach),
    )


@admin_pages.get("/week")
def week_agenda(slug: str):
    tenant, user = require_page(slug, READ_BOOKINGS, "bookings", support=True)
    first = _day_argument("start", _today(tenant))
    last = first + timedelta(days=WEEK - 1)
    reach = reach_of(tenant, user)
    providers, days, grid = _agenda(tenant, first, last, reach)
    viewed(tenant, user, f"bookings:{first.isoformat()}..{last.isoformat()}", _references(grid))
    return page(
        "admin/week.html",
        tenant,
        user,
        first=first,
        last=last,
        days=days,
        providers=providers,
        grid=grid,
        time_grids=week_grids(tenant, providers, days, grid),
        cancelled=cancelled(grid),
        previous=first - timedelta(days=WEEK),
        following=first + timedelta(days=WEEK),
        unlinked=_unlinked(reach),
    )


# --- the month overview --------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthDay:
    day: date
    count: int
    today: bool


@admin_pages.get("/month")
def month_overview(slug: str):
    tenant, user = require_page(slug, READ_BOOKINGS, "bookings", support=True)
    today = _today(tenant)
    month = steps.parse_month(request.args.get("month", ""), today)
    last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    reach = reach_of(tenant, user)
    providers, days, grid = _agenda(tenant, month, last, reach)
    counts = {
        day: sum(len(drawn(grid[provider.id][day])) for provider in providers) for day in days
    }
    weeks = [
        [
            MonthDay(day, counts.get(day, 0), day == today) if day.month == month.month else None
            for day in week
        ]
        for week in calendar.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month)
    ]
    previous = (month - timedelta(days=1)).replace(day=1)
    return page(
        "admin/month.html",
        tenant,
        user,
        month=month,
        weeks=weeks,
        weekdays=weekday_names("abbreviated"),
        total=sum(counts.values()),
        previous=f"{previous:%Y-%m}",
        following=f"{last + timedelta(days=1):%Y-%m}",
        this_month=f"{today:%Y-%m}",
        unlinked=_unlinked(reach),
    )
