"""Cancellation policy: how late a client may cancel or move a booking online, what a prepaid
booking gets back, and which clients may no longer book online.

* The policy's text (with its rules in words) is a consent every booking carries.
* A client (no one signed in, or a client's account) may cancel up to ``cancel_limit_hours`` and
  move up to ``reschedule_limit_hours`` before the start, in elapsed hours, and move a booking
  at most ``max_reschedules`` times. Past that they are told why, and how to reach the business.
* Staff are not held to those limits, but a staff cancellation past the client's limit needs a
  reason (core keeps it with the booking).
* A prepaid booking is due ``refund_percent_before`` or ``refund_percent_after`` percent of what
  was paid back, by whether it is cancelled in time (core stores the refund due).
* Staff block clients by e-mail or phone from the plugin's page; with ``block_after_no_shows``
  set, a client is blocked after that many no-shows (counted in the plugin's store, by the
  address's digest, so that deleting old bookings does not reset the count).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext, lazy_gettext

from bookwell.hooks import Consent, Context, Manifest, MenuItem, Refusal, Setting, hookimpl

from . import blocks, policy
from .pages import blueprint

NAME = "cancellation_policy"
DEFAULT_TEXT = (
    "Please cancel or move your appointment online in good time, within the limits below, so "
    "that someone else can have the slot. After that, contact us: a late cancellation may not "
    "be refunded, and clients who miss appointments without notice may no longer be able to "
    "book online."
)
YEAR_OF_HOURS = 24 * 366

MANIFEST = Manifest(
    name=NAME,
    title=lazy_gettext("Cancellation policy"),
    description=lazy_gettext(
        "How late clients may cancel or move a booking online, the refund of prepaid "
        "bookings, a policy clients accept when they book, and blocking clients (by hand or "
        "after repeated no-shows)."
    ),
    version="1.0.0",
    category="Scheduling",
    author="Bookwell",
    settings=(
        Setting(
            "cancel_limit_hours",
            "int",
            24,
            lazy_gettext("Cancel online until (hours before)"),
            help=lazy_gettext(
                "Elapsed hours before the start; staff can still cancel later, with a reason."
            ),
            min=0,
            max=YEAR_OF_HOURS,
        ),
        Setting(
            "reschedule_limit_hours",
            "int",
            24,
            lazy_gettext("Move online until (hours before)"),
            min=0,
            max=YEAR_OF_HOURS,
        ),
        Setting(
            "max_reschedules",
            "int",
            2,
            lazy_gettext("Most moves per booking"),
            help=lazy_gettext("How many times a client may move one booking online (0: never)."),
            min=0,
            max=100,
        ),
        Setting(
            "refund_percent_before",
            "int",
            100,
            lazy_gettext("Refund in time (%)"),
            help=lazy_gettext(
                "Of the prepaid amount, when cancelled before the cancellation limit."
            ),
            min=0,
            max=100,
        ),
        Setting(
            "refund_percent_after",
            "int",
            0,
            lazy_gettext("Refund when late (%)"),
            help=lazy_gettext("Of the prepaid amount, when cancelled after the limit (by staff)."),
            min=0,
            max=100,
        ),
        Setting(
            "text",
            "text",
            DEFAULT_TEXT,
            lazy_gettext("Policy"),
            help=lazy_gettext("Shown to clients when they book, with the rules above in words."),
            min=1,
            max=5000,
        ),
        Setting(
            "block_after_no_shows",
            "int",
            0,
            lazy_gettext("Block after no-shows"),
            help=lazy_gettext(
                "Block a client from booking online after this many no-shows (0: never)."
            ),
            min=0,
            max=100,
        ),
    ),
)

Settings = Mapping[str, Any]


@hookimpl
def check_settings(settings: Settings) -> Mapping[str, str] | None:
    if not settings["text"].strip():
        return {"text": gettext("Write the policy clients accept.")}
    return None


@hookimpl
def booking_requirements(ctx: Context, settings: Settings) -> list[Consent]:
    text = policy.full_text(settings)
    hours = settings["cancel_limit_hours"]
    url = f"{ctx.tenant.booking_url}{NAME}/" if ctx.tenant and ctx.tenant.booking_url else None
    return [
        Consent(
            id=NAME,
            label=gettext(
                "I accept the cancellation policy (cancel online up to %(hours)s hours before)",
                hours=hours,
            ),
            text=text,
            version=policy.version(text),
            url=url,
        )
    ]


def _blocked(ctx: Context) -> Refusal | None:
    assert ctx.booking is not None and ctx.tenant is not None
    if blocks.is_blocked(ctx, ctx.booking.client_email, ctx.booking.client_phone):
        return Refusal(policy.blocked(ctx.tenant), code="client_blocked")
    return None


@hookimpl
def before_confirm(ctx: Context) -> Refusal | None:
    return _blocked(ctx) if policy.is_client(ctx) else None


@hookimpl
def before_cancel(ctx: Context, settings: Settings, reason: str | None) -> Refusal | None:
    hours = settings["cancel_limit_hours"]
    if not policy.is_client(ctx):
        if not policy.in_time(ctx, hours) and not (reason or "").strip():
            return Refusal(
                gettext(
                    "This booking starts in less than %(hours)s hours, past the clients' "
                    "cancellation limit: give a reason to cancel it.",
                    hours=hours,
                ),
                code="reason_required",
                status=422,
                field="reason",
            )
        return None
    refusal = _blocked(ctx)
    if refusal is None and not policy.in_time(ctx, hours):
        refusal = Refusal(
            policy.window_passed(ctx, hours, "cancelled"),
            code="cancellation_window_passed",
            details={"limit_hours": hours, "passed_at": policy.deadline(ctx.booking, hours)},
        )
    passed_before_move = policy.moved_late(ctx) if refusal is None else None
    if passed_before_move is not None:
        refusal = Refusal(
            policy.window_passed_before_move(ctx, hours, passed_before_move),
            code="cancellation_window_passed",
            details={"limit_hours": hours, "passed_at": passed_before_move},
        )
    return refusal


@hookimpl
def after_reschedule(
    ctx: Context, settings: Settings, old_start: datetime, old_end: datetime
) -> None:
    """A booking moved once its cancellation limit had passed keeps that limit as passed:
    otherwise moving it to a later date (allowed while the move limit is shorter) would open a
    cancellation, and the full refund, that had closed."""
    assert ctx.booking is not None and ctx.store is not None
    if ctx.dry_run or ctx.booking.reference is None:
        return
    passed_at = old_start - timedelta(hours=settings["cancel_limit_hours"])
    if ctx.now > passed_at:
        key = policy.moved_late_key(ctx.booking.reference)
        ctx.store.compare_and_set(key, None, passed_at.isoformat())


@hookimpl
def before_reschedule(
    ctx: Context, settings: Settings, new_start: datetime, new_end: datetime
) -> Refusal | None:
    if not policy.is_client(ctx):
        return None
    assert ctx.booking is not None
    refusal = _blocked(ctx)
    hours, most = settings["reschedule_limit_hours"], settings["max_reschedules"]
    if refusal is None and not policy.in_time(ctx, hours):
        refusal = Refusal(
            policy.window_passed(ctx, hours, "moved"),
            code="cancellation_window_passed",
            details={"limit_hours": hours, "passed_at": policy.deadline(ctx.booking, hours)},
        )
    if refusal is None and ctx.booking.reschedule_count >= most:
        refusal = Refusal(
            policy.too_many_moves(ctx, most),
            code="max_reschedules_reached",
            details={"max_reschedules": most},
        )
    return refusal


@hookimpl
def closed_client_actions(ctx: Context, settings: Settings) -> Mapping[str, str] | None:
    """What the guards above would refuse the client now, for the manage page to say at once."""
    if not policy.is_client(ctx):
        return None
    assert ctx.booking is not None
    closed: dict[str, str] = {}
    refusal = before_reschedule(ctx, settings, ctx.booking.start, ctx.booking.end)
    if refusal is not None:
        closed["reschedule"] = refusal.message
    refusal = before_cancel(ctx, settings, None)
    if refusal is not None:
        closed["cancel"] = refusal.message
    return closed or None


@hookimpl
def cancellation_refund(ctx: Context, settings: Settings) -> int:
    assert ctx.booking is not None
    return ctx.booking.prepaid_cents * policy.refund_percent(ctx, settings) // 100


@hookimpl
def after_outcome(ctx: Context, settings: Settings, outcome: str) -> None:
    if outcome != "no-show" or ctx.dry_run:
        return
    assert ctx.booking is not None and ctx.store is not None
    email = blocks.normal_email(ctx.booking.client_email)
    count = ctx.store.increment("no_shows:" + blocks.email_digest(ctx, email))
    ctx.audit("no_show.counted", f"client:{email}", {"no_shows": count})
    limit = settings["block_after_no_shows"]
    if limit and count >= limit:
        added, _ = blocks.block(
            ctx, blocks.EMAIL, email, f"{count} no-shows (automatic)", "automatic"
        )
        if added:
            ctx.audit("client.blocked", f"client:{email}", {"automatic": True, "no_shows": count})


@hookimpl
def routes() -> Any:
    return blueprint


@hookimpl
def migrations() -> str:
    return f"bookwell.plugins.{NAME}:migrations"


@hookimpl
def staff_menu(ctx: Context) -> list[MenuItem]:
    assert ctx.tenant is not None
    return [MenuItem(gettext("Cancellation policy"), f"/admin/{ctx.tenant.slug}/{NAME}/")]
