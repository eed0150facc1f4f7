"""An invitation carries its zone's rules (VTIMEZONE) for the appointment's month, built once
per zone and month: whatever day of the month, the rules give the offset the zone really has."""

from __future__ import annotations

import calendar as months
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bookwell.core.mail import compose

ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]


def offset_by_the_rules(vtimezone: str, local: datetime) -> timedelta:
    """The offset the VTIMEZONE's observances give at the naive local time ``local``."""
    (rules,) = icalendar.Calendar.from_ical(
        f"BEGIN:VCALENDAR\r\n{vtimezone}END:VCALENDAR\r\n"
    ).walk("VTIMEZONE")
    onsets = []
    for observance in rules.walk():
        if observance.name not in ("STANDARD", "DAYLIGHT"):
            continue
        offset = observance.decoded("TZOFFSETTO")
        onsets.append((observance.decoded("DTSTART").replace(tzinfo=None), offset))
        rdates = observance.get("RDATE", [])
        for listed in rdates if isinstance(rdates, list) else [rdates]:
            onsets += [(when.dt.replace(tzinfo=None), offset) for when in listed.dts]
    assert not observance.get("RRULE"), "the rules are listed dates, not recurrences"
    started = [onset for onset in onsets if onset[0] <= local]
    assert started, f"{local} is before the rules begin"
    return max(started)[1]


@pytest.mark.parametrize("zone_name", ZONES)
def test_the_rules_give_the_real_offset_on_every_day_of_the_month(zone_name):
    zone = ZoneInfo(zone_name)
    for year, month in [(2027, m) for m in range(1, 13)] + [(2028, 2), (2028, 10)]:
        first = date(year, month, 1)
        vtimezone = compose._vtimezone(zone_name, first)
        assert f"TZID:{zone_name}" in vtimezone
        for day in range(1, months.monthrange(year, month)[1] + 1):
            for hour in (0, 12, 23):
                local = datetime.combine(date(year, month, day), time(hour))
                assert (
                    offset_by_the_rules(vtimezone, local) == local.replace(tzinfo=zone).utcoffset()
                ), (zone_name, local)


def test_a_zone_and_month_are_built_once():
    compose._vtimezone.cache_clear()
    for _ in range(3):
        compose._vtimezone("Europe/Paris", date(2027, 3, 1))
    compose._vtimezone("Europe/Paris", date(2027, 4, 1))
    info = compose._vtimezone.cache_info()
    assert (info.misses, info.hits) == (2, 2)
