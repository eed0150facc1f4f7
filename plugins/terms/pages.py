"""The plugin's pages: each version's public page, and the owner's page with every version and
the consents' CSV."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import Blueprint, Response, abort, request
from flask_babel import get_locale, gettext

from bookwell.hooks.pages import (
    plugin_context,
    plugin_settings,
    render_client_page,
    render_staff_page,
    require_staff,
)

from .consents_csv import consents_csv
from .markdown import safe_html
from .versions import all_versions, one_version, page_path, version_of

# The largest number an integer column holds everywhere: a longer one in the address is a 404,
# never a database error.
MAX_VERSION = 2**31 - 1
# The CSV's default start: before any booking Bookwell could have taken.
EARLIEST_DAY = date(2000, 1, 1)

pages = Blueprint("terms", __name__, template_folder="templates")


@pages.get(f"/book/<slug>/terms/<int(min=1, max={MAX_VERSION}):number>")
def version_page(slug: str, number: int):
    """Version ``number`` of the business's terms, for anyone: clients follow the consent's link
    here, and an old version stays readable for as long as a booking names it."""
    ctx = plugin_context(slug)  # 404 unless this business enabled the plugin
    current = version_of(ctx, plugin_settings(slug)["text"])
    shown = current if current["version"] == number else one_version(ctx, number)
    if shown is None:
        abort(404)
    return render_client_page(
        slug,
        "terms/version.html",
        version=shown,
        current=current,
        current_path=page_path(slug, current["version"]),
        published=_local_day(shown["created_at"], ctx.tenant.timezone),
        body=safe_html(shown["text"]),
    )


@pages.get("/admin/<slug>/terms/")
def staff_page(slug: str):
    page = require_staff(slug, "plugins.manage")
    return _staff_page(page, slug)


@pages.get("/admin/<slug>/terms/consents.csv")
def consents_download(slug: str):
    """Every consent given between two days (the business's), as CSV; audited. A bulk
    download of clients' data: ``data.export``."""
    page = require_staff(slug, "data.export")
    ctx = plugin_context(slug)
    zone = ZoneInfo(page.tenant.timezone)
    today = ctx.now.astimezone(zone).date()
    first, last, problems = _days(EARLIEST_DAY, today)
    if problems:
        return _staff_page(page, slug, status=422, errors=problems)
    assert ctx.data is not None
    given = ctx.data.consents(
        given_from=datetime.combine(first, time(), zone),
        given_before=datetime.combine(last + timedelta(days=1), time(), zone),
    )
    ctx.audit(
        "consents.downloaded",
        "consents",
        {"from": first, "to": last, "rows": len(given)},
    )
    name = f"consents-{page.tenant.slug}-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(
        consents_csv(given),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",  # clients' names, addresses and IPs
        },
    )


def _staff_page(page, slug: str, status: int = 200, errors: list[str] | None = None):
    ctx = plugin_context(slug)
    current = version_of(ctx, plugin_settings(slug)["text"])
    zone = page.tenant.timezone
    versions = [
        {
            **row,
            "path": page_path(slug, row["version"]),
            "published": _local_time(row["created_at"], zone),
        }
        for row in all_versions(ctx)
    ]
    today = ctx.now.astimezone(ZoneInfo(zone)).date()
    return render_staff_page(
        page,
        "terms/staff.html",
        status=status,
        versions=versions,
        current=current,
        download_from=request.args.get("from", "")[:10],
        download_to=request.args.get("to", "")[:10] or today.isoformat(),
        errors=errors or [],
    )


def _days(default_first: date, default_last: date) -> tuple[date, date, list[str]]:
    """The CSV's first and last day from the query (``from``, ``to``: YYYY-MM-DD)."""
    problems = []
    days = {}
    for name, default in (("from", default_first), ("to", default_last)):
        raw = request.args.get(name, "").strip()
        if not raw:
            days[name] = default
            continue
        try:
            if len(raw) != 10:
                raise ValueError(raw)
            days[name] = date.fromisoformat(raw)
        except ValueError:
            problems.append(gettext("'%(name)s' must be a day, such as 2027-03-01.", name=name))
            days[name] = default
    if not problems and days["to"] < days["from"]:
        problems.append(gettext("'to' must be on or after 'from'."))
    return days["from"], days["to"], problems


def _local_day(moment: datetime, zone: str) -> str:
    """``30 November 2026`` (``30 novembre 2026``), in the page's language."""
    return format_datetime(moment, "d MMMM y", tzinfo=ZoneInfo(zone), locale=get_locale())


def _local_time(moment: datetime, zone: str) -> str:
    return format_datetime(moment, "d MMMM y, HH:mm", tzinfo=ZoneInfo(zone), locale=get_locale())
