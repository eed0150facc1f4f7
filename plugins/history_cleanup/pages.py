"""The plugin's staff page: the archives (date, bookings, size, checksums) with their downloads,
and a preview of what the next run would delete. For those who may download the business's data
in bulk (``data.export``: owners and managers): the archives hold every client's details. Every
download is audited."""

from __future__ import annotations

from flask import Blueprint, abort, send_file

from bookwell.hooks.pages import plugin_context, plugin_settings, render_staff_page, require_staff

from . import archives

PERMISSION = "data.export"
MEDIA_TYPES = {".jsonl": "application/x-ndjson", ".csv": "text/csv"}


def blueprint() -> Blueprint:
    pages = Blueprint("history_cleanup", __name__, template_folder="templates")
    pages.add_url_rule("/admin/<slug>/history_cleanup/", view_func=overview)
    pages.add_url_rule("/admin/<slug>/history_cleanup/preview", view_func=preview)
    pages.add_url_rule("/admin/<slug>/history_cleanup/archives/<name>", view_func=download)
    return pages


def _page(slug: str, plan: archives.Plan | None = None):
    page = require_staff(slug, PERMISSION)
    settings = plugin_settings(slug)
    return render_staff_page(
        page,
        "history_cleanup/archives.html",
        archives=archives.listed(plugin_context(slug)),
        settings=settings,
        plan=plan,
    )


def overview(slug: str):
    return _page(slug)


def preview(slug: str):
    """What a run would do now, read on a dry run: nothing is deleted or removed. A GET, since
    it changes nothing."""
    require_staff(slug, PERMISSION)
    plan = archives.plan(plugin_context(slug, dry_run=True), plugin_settings(slug))
    return _page(slug, plan)


def download(slug: str, name: str):
    require_staff(slug, PERMISSION)
    ctx = plugin_context(slug)
    found = archives.file_to_download(ctx, name)
    if found is None:
        abort(404)
    path, archive = found
    ctx.audit(
        "archive.downloaded",
        f"archive:{name}",
        {
            "file": name,
            "bookings": archive.bookings,
            "checksum": archive.csv_checksum if name == archive.csv_name else archive.checksum,
        },
    )
    answer = send_file(
        path,
        mimetype=MEDIA_TYPES[path.suffix],
        as_attachment=True,
        download_name=name,
        max_age=0,
    )
    answer.headers["Cache-Control"] = "no-store"  # clients' details: no copy in a cache
    return answer
