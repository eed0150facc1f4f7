"""The languages Bookwell speaks, and dates, times and prices written the way each one writes
them. Everything here takes the language and the zone explicitly, so that the mail composed in a
background thread writes exactly what the page would; the web layer (``core/web/i18n.py``) picks
the language of a request and passes it on."""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo

from babel.dates import format_date, format_datetime, format_time, get_day_names

ENGLISH, FRENCH = "en", "fr"
SUPPORTED = (ENGLISH, FRENCH)
DEFAULT = ENGLISH
# Where the app keeps the function that finds the language of the person making a request.
READER_LANGUAGE = "bookwell.reader_language"
# The name of each language in itself, for the language switch.
NATIVE_NAMES = {ENGLISH: "English", FRENCH: "Français"}
# CLDR's plain "en" is American (month before day, "$" ambiguous); British English writes
# "Monday 30 November 2026" and "US$30.00", as the pages always have.
FORMATTING_LOCALE = {ENGLISH: "en_GB", FRENCH: "fr_FR"}

# One pattern per kind for both languages: day before month, 24-hour clock.
DAY_PATTERN = "EEEE d MMMM y"
DATE_PATTERN = "d MMMM y"
SHORT_DAY_PATTERN = "EEE d MMM"
TIME_PATTERN = "HH:mm"
MONTH_PATTERN = "LLLL y"
WEEKDAY_PATTERN = "EEEE"


def supported(tag: str | None) -> str | None:
    """The supported language a tag (``fr``, ``fr-CA``, ``en_GB``, ``FR``) names, else ``None``."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in SUPPORTED else None


def language_or_default(tag: str | None) -> str:
    return supported(tag) or DEFAULT


def formatting_locale(language: str | None) -> str:
    return FORMATTING_LOCALE[language_or_default(language)]


def _local(moment: datetime, zone: tzinfo | None) -> datetime:
    return moment.astimezone(zone) if zone is not None and moment.tzinfo is not None else moment


def long_day(day: date | datetime, language: str | None, zone: tzinfo | None = None) -> str:
    """``lundi 30 novembre 2026`` / ``Monday 30 November 2026``."""
    if isinstance(day, datetime):
        day = _local(day, zone).date()
    return format_date(day, DAY_PATTERN, locale=formatting_locale(language))


def plain_day(day: date, language: str | None) -> str:
    """``30 novembre 2026`` / ``30 November 2026``: a date without its weekday."""
    return format_date(day, DATE_PATTERN, locale=formatting_locale(language))


def short_day(day: date, language: str | None) -> str:
    """``lun. 1 mars`` / ``Mon 1 Mar``: a day in a narrow column."""
    return format_date(day, SHORT_DAY_PATTERN, locale=formatting_locale(language))


def clock_time(moment: datetime, language: str | None, zone: tzinfo | None = None) -> str:
    """``14:05`` in every language: the 24-hour clock of the business's zone."""
    local = _local(moment, zone)
    return format_datetime(
        local, TIME_PATTERN, tzinfo=local.tzinfo, locale=formatting_locale(language)
    )


def long_moment(moment: datetime, language: str | None, zone: tzinfo | None = None) -> str:
    """``lundi 30 novembre 2026, 14:05``."""
    return f"{long_day(moment, language, zone)}, {clock_time(moment, language, zone)}"


def weekday_name(day: date | datetime, language: str | None, zone: tzinfo | None = None) -> str:
    if isinstance(day, datetime):
        day = _local(day, zone).date()
    return format_date(day, WEEKDAY_PATTERN, locale=formatting_locale(language))


def month_label(month: date, language: str | None) -> str:
    """``novembre 2026`` / ``November 2026`` (the standalone form: no article, no case)."""
    return format_date(month, MONTH_PATTERN, locale=formatting_locale(language))


def current_language() -> str:
    """The language Flask-Babel chose for this request (or forced for this mail); English
    outside an app, or in an app without Flask-Babel."""
    from flask import current_app, has_app_context

    if not has_app_context() or "babel" not in current_app.extensions:
        return DEFAULT
    from flask_babel import get_locale

    chosen = get_locale()
    return language_or_default(chosen.language if chosen is not None else None)


def reader_language() -> str | None:
    """The language of the person making the current request (the web layer's rule: switch,
    browser, business), even on the API, whose answers stay English; ``None`` outside a
    request."""
    from flask import current_app, has_request_context

    if not has_request_context():
        return None
    finder = current_app.extensions.get(READER_LANGUAGE)
    return finder() if finder is not None else None


def weekday_names(language: str | None, width: str = "wide") -> list[str]:
    """Monday first, capitalised as a table's row heads: ``Monday`` / ``Lundi`` (``abbreviated``:
    ``Mon`` / ``Lun.``)."""
    names = get_day_names(width, locale=formatting_locale(language))
    return [names[weekday][:1].upper() + names[weekday][1:] for weekday in range(7)]


def weekday_abbreviations(language: str | None) -> tuple[str, ...]:
    """Monday first, as a calendar's column heads: ``Mon`` / ``lun.``."""
    names = get_day_names("abbreviated", locale=formatting_locale(language))
    return tuple(names[weekday] for weekday in range(7))


def spoken_day(day: date, language: str | None) -> str:
    """``Tuesday 2 March`` / ``mardi 2 mars``: a day as it is read aloud, its year left to the
    month's heading."""
    return format_date(day, "EEEE d MMMM", locale=formatting_locale(language))


def wall_clock(moment: time, language: str | None) -> str:
    """``09:00``: a time of day with no date and no zone (opening hours), as a language writes
    it."""
    return format_time(moment, TIME_PATTERN, locale=formatting_locale(language))
