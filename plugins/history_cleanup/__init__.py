"""History cleanup: archive, then delete, the bookings that ended long ago.

On every scheduled run, per business, the bookings that ended more than ``retention_days`` ago
go through core's ``ctx.data.archive_and_delete_ended``, a small batch per call, so that each
call holds the write lock briefly and new bookings keep flowing between calls. Core writes each
batch to an archive in the plugin's folder (JSON lines and CSV, each with its SHA-256), deletes
the bookings with everything that was theirs, and records the deletion in the audit trail, in
one transaction: a crash half-way loses nothing, the next run carries on, and runs at once never
take the same booking. Then the archives older than ``archive_retention_days`` are removed.

A run stops after ``RUN_SECONDS`` even with bookings left (the next tick carries on), well within
the schedule's time limit. On a dry run (``bookwell tick --dry-run``, or the staff page's
preview) it only says what would go.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask_babel import gettext, lazy_gettext

from bookwell.hooks import Context, Manifest, MenuItem, Setting, hookimpl

from . import archives

log = logging.getLogger(__name__)

# Bookings per call, one short write transaction each. A new booking that comes while a batch
# holds the write lock waits for it: at 200 a batch, bookings' p99 during a cleanup was 2.5-2.8x
# the quiet figure; at 50, 1.7-1.9x, with the pause below the cleanup as fast as before.
BATCH = 50
RUN_SECONDS = 60.0  # per run and business; the schedule's limit is 300 s by default
# Between batches the write lock is let go for this long, so that a writer queued for it goes
# first: on SQLite writers queue on the instance's file lock, polling it every 2 ms at most (a
# writer left to SQLite's own busy handler slept up to 100 ms between tries, and lost the lock to
# the next batch, batch after batch, until it gave up).
PAUSE_SECONDS = 0.02

MANIFEST = Manifest(
    name="history_cleanup",
    title=lazy_gettext("History cleanup"),
    description=lazy_gettext(
        "Archives, then deletes, the bookings that ended more than a set number of days ago, "
        "with their consents, reschedules and e-mails; staff download the archives, which are "
        "removed in turn after a second period. The audit trail is never deleted."
    ),
    version="1.0.0",
    category="Privacy",
    author="Bookwell",
    settings=(
        Setting(
            key="retention_days",
            type="int",
            default=365,
            label=lazy_gettext("Keep bookings for (days after they end)"),
            help=lazy_gettext(
                "Bookings that ended longer ago are archived, then deleted (30 days at least)."
            ),
            min=30,
            max=36500,
        ),
        Setting(
            key="archive_retention_days",
            type="int",
            default=90,
            label=lazy_gettext("Keep archives for (days)"),
            help=lazy_gettext("Archives older than this are removed: download what you must keep."),
            min=1,
            max=36500,
        ),
    ),
    # Deleting old bookings removes the history that loyalty schemes and the like count.
    breaks=("intact_history",),
)


@hookimpl
def on_schedule(ctx: Context, settings) -> None:
    """Archive and delete what is past ``retention_days``, then remove old archives."""
    if ctx.dry_run:
        plan = archives.plan(ctx, settings)
        ctx.progress(0, plan.bookings)
        log.info("%s: %s", ctx.tenant.slug, plan.summary())
        return
    cleanup(ctx, settings)
    removed = archives.remove_expired(ctx, settings["archive_retention_days"])
    if removed:
        ctx.audit(
            "archives.removed",
            "archives",
            {
                "archives": [archive.name for archive in removed],
                "count": len(removed),
                "archive_retention_days": settings["archive_retention_days"],
            },
        )


def cleanup(ctx: Context, settings) -> int:
    """Delete a batch at a time while whole batches come back and time is left; returns how
    many bookings went. Each batch is audited by core; the run as a whole, here."""
    before = ctx.now - timedelta(days=settings["retention_days"])
    deadline = time.monotonic() + RUN_SECONDS
    done, first_end, last_end, batches = 0, None, None, 0
    while True:
        result = ctx.data.archive_and_delete_ended(before, BATCH)
        done += result.deleted
        if result.deleted:
            batches += 1
            first_end = first_end or result.first_end
            last_end = result.last_end
        ctx.progress(done, done + result.remaining)
        # Fewer than a batch: none left, or the rest's mail is being sent right now (a later
        # run takes those).
        if result.deleted < BATCH or time.monotonic() >= deadline:
            break
        time.sleep(PAUSE_SECONDS)
    if done:
        ctx.audit(
            "cleanup.run",
            "bookings",
            {
                "deleted": done,
                "archives": batches,
                "first_end": first_end,
                "last_end": last_end,
                "ended_before": before,
                "retention_days": settings["retention_days"],
                "left_for_next_run": result.remaining,
            },
        )
    return done


@hookimpl
def routes():
    from .pages import blueprint

    return blueprint()


@hookimpl
def staff_menu(ctx: Context) -> list[MenuItem] | None:
    # The archives hold every client's details: only who may download the business's data in
    # bulk (data.export: owners and managers) sees it.
    if ctx.actor is None or ctx.actor.role not in ("owner", "manager"):
        return None
    return [MenuItem(gettext("History cleanup"), f"/admin/{ctx.tenant.slug}/history_cleanup/")]
