"""Query parameters of the JSON API: ids and days, as strictly as the bodies' fields.

A parameter given empty (``?service_id=``) is refused like any malformed value, never taken for
one left out: a client that meant to filter must not silently get everything.
"""

from __future__ import annotations

import re
from datetime import date

from flask import request

from bookwell.core.web.api.errors import invalid
from bookwell.core.web.api.schemas import EARLIEST_YEAR, LATEST_YEAR, MAX_ID, sane_day

# YYYY-MM-DD only: date.fromisoformat would also take 20270302 and 2027-W09-2.
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def int_arg(name: str, *, required: bool) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        if required:
            raise invalid({name: "This parameter is required."})
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= MAX_ID):
        raise invalid({name: f"Must be a whole number from 1 to {MAX_ID}."})
    return int(raw)


def day_arg(name: str) -> date:
    raw = request.args.get(name)
    if raw is None:
        raise invalid({name: "This parameter is required (YYYY-MM-DD)."})
    if not DAY.fullmatch(raw):
        raise invalid({name: "Must be a date, YYYY-MM-DD."})
    try:
        day = date.fromisoformat(raw)
    except ValueError as error:
        raise invalid({name: "Must be a date, YYYY-MM-DD."}) from error
    try:
        return sane_day(day)
    except ValueError as error:
        raise invalid(
            {name: f"Must be a day between the years {EARLIEST_YEAR} and {LATEST_YEAR}."}
        ) from error
