"""The month -> day -> time steps that choosing a time takes, shared by the client's booking pages,
the client's rescheduling on the manage page and the staff booking page: a month calendar whose
free days are links, then one day's times. Plain links and forms, no JavaScript.

The macros that draw them are in ``core/web/templates/steps.html``.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import abort
from flask_babel import gettext

from bookwell.core.foundation import locales

# English column heads, for pages not yet translated; MonthView writes them in the page's language.
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class MonthView:
    """One month of the calendar. ``notice`` (with ``back_to``, a month) replaces the calendar
    for a month outside the bookable ones."""

    month: date
    label: str
    weeks: list[list[date]] = field(default_factory=list)
    free: set[date] = field(default_factory=set)
    previous: str | None = None
    following: str | None = None
    notice: str | None = None
    back_to: str | None = None
    back_label: str | None = None
    weekdays: tuple[str, ...] = field(
        default_factory=lambda: locales.weekday_abbreviations(locales.current_language())
    )
    today: date | None = None  # marked on the calendar (aria-current="date")

    @staticmethod
    def spoken(day: date) -> str:
        """``Tuesday 2 March``: a day link's name as it is read aloud, not ``2027-03-02``; the
        month's heading says the year."""
        return locales.spoken_day(day, locales.current_language())


def parse_month(raw: str, default: date) -> date:
    """``2027-03`` as the first of that month; empty is ``default``'s month; anything else 404."""
    if not raw:
        return default.replace(day=1)
    try:
        month = datetime.strptime(raw, "%Y-%m").date() if len(raw) == 7 else None
    except ValueError:
        month = None
    if month is None or not 1970 <= month.year <= 2200:
        abort(404)
    return month


def month_view(
    month: date,
    today: date,
    horizon_days: int,
    free_days: Callable[[date, date], set[date]],
) -> MonthView:
    """The calendar for ``month``: the days from ``today`` to ``horizon_days`` ahead can be
    picked when ``free_days(first, last)`` has them. A month before or past those says so and
    links back, rather than answering "not found" to a person who clicked "Next" once too often
    or followed an old link."""
    first_month = today.replace(day=1)
    last_bookable = today + timedelta(days=horizon_days)
    language = locales.current_language()
    label = locales.month_label(month, language)
    if month < first_month:
        return MonthView(
            month,
            label,
            notice=gettext("That month has passed; pick a month from now on."),
            back_to=f"{first_month:%Y-%m}",
            back_label=locales.month_label(first_month, language),
        )
    if month > last_bookable:
        last_month = last_bookable.replace(day=1)
        return MonthView(
            month,
            label,
            notice=gettext(
                "Bookings open up to %(days)s days ahead (until %(last)s); pick an earlier month.",
                days=horizon_days,
                last=locales.plain_day(last_bookable, language),
            ),
            back_to=f"{last_month:%Y-%m}",
            back_label=locales.month_label(last_month, language),
        )
    month_end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    previous = (month - timedelta(days=1)).replace(day=1)
    following = month_end + timedelta(days=1)
    return MonthView(
        month,
        label,
        weeks=calendar.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month),
        free=free_days(max(month, today), min(month_end, last_bookable)),
        previous=f"{previous:%Y-%m}" if previous >= first_month else None,
        following=f"{following:%Y-%m}" if following <= last_bookable else None,
        today=today,
    )


def parse_day(raw: str) -> date | None:
    """``2027-03-02``, or ``None`` for anything else."""
    try:
        chosen = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None
    if chosen is None or not 1970 <= chosen.year <= 2200:
        return None
    return chosen
