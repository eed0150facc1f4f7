"""The language of a page (Flask-Babel), and the Jinja filters that write dates, times and prices
in it.

A request's language is, first found first kept:

1. the one the person picked with the language switch (``?lang=fr``), kept in a cookie;
2. their browser's preference (``Accept-Language``), among the languages Bookwell speaks;
3. the business's default (``tenants.language``, ``bookwell tenants set --language``);
4. English.

Staff pages choose the same way: a staff member's browser wins over the business's default.
Times are always written in the business's zone, whatever the reader's. The JSON API always
answers in English (its messages are documented with its codes): a plugin's refusal, written
with ``gettext`` when the hook runs, reads in English there and in the person's language on a
page.

The catalogue is ``core/translations/fr/LC_MESSAGES/messages.po`` (and its compiled ``.mo``,
committed beside it); ``docs/translations.md`` tells how to update both.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, has_request_context, request
from flask_babel import Babel
from werkzeug.local import LocalProxy

from bookwell.core.foundation import locales
from bookwell.core.storage.models import Tenant
from bookwell.core.web.request_tenant import current_tenant

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
API_PREFIX = "/api/"
QUERY_ARGUMENT = "lang"
COOKIE = "bookwell_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
UTC = ZoneInfo("UTC")


def _tenant_of_request() -> Tenant | None:
    tenant = g.get("tenant")
    if tenant is None and request.view_args and isinstance(request.view_args.get("slug"), str):
        tenant = current_tenant(request.view_args["slug"])
    return tenant


def switched_language() -> str | None:
    """The language the person picked: in this request's query, else in their cookie."""
    return locales.supported(request.args.get(QUERY_ARGUMENT)) or locales.supported(
        request.cookies.get(COOKIE)
    )


def browser_language() -> str | None:
    # Werkzeug matches a regional tag (fr-CA) to its language (fr) when nothing closer is offered.
    return locales.supported(request.accept_languages.best_match(locales.SUPPORTED))


def select_language() -> str:
    if not has_request_context():
        return locales.DEFAULT  # mail and jobs force theirs (flask_babel.force_locale)
    if request.path.startswith(API_PREFIX):
        return locales.ENGLISH
    return reader_language()


def reader_language() -> str:
    """The language of the person making this request, as a page would speak to them (the
    API's answers stay English, but a client booking through it gets mail in this one)."""
    chosen = switched_language() or browser_language()
    if chosen is not None:
        return chosen
    tenant = _tenant_of_request()
    return locales.language_or_default(tenant.language if tenant is not None else None)


def select_timezone() -> str:
    if has_request_context():
        tenant = _tenant_of_request()
        if tenant is not None:
            return tenant.timezone
    return "UTC"


def _zone() -> tzinfo:
    tenant = _tenant_of_request() if has_request_context() else None
    return tenant.zone if tenant is not None else UTC


def long_day(value: date | datetime) -> str:
    """``lundi 30 novembre 2026``: the day of the business's calendar."""
    return locales.long_day(value, locales.current_language(), _zone())


def plain_day(value: date | datetime) -> str:
    """``30 novembre 2026``: a day of the business's calendar, without its weekday."""
    if isinstance(value, datetime):
        value = value.astimezone(_zone()).date() if value.tzinfo is not None else value.date()
    return locales.plain_day(value, locales.current_language())


def short_day(value: date) -> str:
    """``lun. 1 mars``: a day in a narrow column (the week agenda's)."""
    return locales.short_day(value, locales.current_language())


def clock_time(value: datetime) -> str:
    """``14:05`` on the business's wall clock."""
    return locales.clock_time(value, locales.current_language(), _zone())


def long_moment(value: datetime) -> str:
    """``lundi 30 novembre 2026, 14:05``."""
    return locales.long_moment(value, locales.current_language(), _zone())


def weekday_name(value: date | datetime) -> str:
    return locales.weekday_name(value, locales.current_language(), _zone())


def month_label(value: date) -> str:
    return locales.month_label(value, locales.current_language())


def language_url(language: str) -> str:
    """This page's address with ``?lang=`` set: the language switch's links."""
    arguments = [(key, value) for key, value in request.args.items(multi=True)]
    arguments = [(key, value) for key, value in arguments if key != QUERY_ARGUMENT]
    arguments.append((QUERY_ARGUMENT, language))
    return f"{request.path}?{urlencode(arguments)}"


def _remember_switch(response: Response) -> Response:
    picked = locales.supported(request.args.get(QUERY_ARGUMENT))
    if picked is not None and request.cookies.get(COOKIE) != picked:
        # Read by the server only; Lax so that it follows the person back from a link.
        response.set_cookie(
            COOKIE,
            picked,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
            path="/",
        )
    if response.mimetype == "text/html":
        response.vary.update(("Accept-Language", "Cookie"))
    return response


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", locales.DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_language, timezone_selector=select_timezone)
    app.after_request(_remember_switch)
    app.extensions[locales.READER_LANGUAGE] = reader_language
    app.jinja_env.globals.update(
        # A proxy, so that `<html lang="{{ current_locale }}">` reads the request's language.
        current_locale=LocalProxy(locales.current_language),
        supported_languages=locales.NATIVE_NAMES,
        language_url=language_url,
    )
    app.add_template_filter(long_day, "long_day")
    app.add_template_filter(plain_day, "plain_day")
    app.add_template_filter(short_day, "short_day")
    app.add_template_filter(clock_time, "clock_time")
    app.add_template_filter(long_moment, "long_moment")
    app.add_template_filter(weekday_name, "weekday_name")
    app.add_template_filter(month_label, "month_label")
