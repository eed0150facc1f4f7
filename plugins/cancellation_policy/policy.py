"""The rules: when a client may still cancel or move a booking online, and what they are told.

Limits are in elapsed hours: ``booking.start - ctx.now`` between two aware instants, so a
change of the clocks (DST) between now and the appointment neither adds nor removes an hour.
A client may act while at least the limit remains: exactly 24 hours before a 24-hour limit is
still in time, a second later is not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bookwell.hooks import BookingInfo, Context, TenantInfo

Settings = Mapping[str, Any]


def is_client(ctx: Context) -> bool:
    """A client acts: nobody signed in (the manage link, the API with a token) or a client's
    account. Staff (any other role) are not held to the online limits."""
    return ctx.actor is None or ctx.actor.role == "client"


def deadline(booking: BookingInfo, hours: int) -> datetime:
    return booking.start - timedelta(hours=hours)


def in_time(ctx: Context, hours: int) -> bool:
    assert ctx.booking is not None
    return ctx.now <= deadline(ctx.booking, hours)


def moved_late_key(reference: str) -> str:
    """The store key that marks a booking moved once its cancellation limit had passed."""
    return f"moved_late:{reference}"


def moved_late(ctx: Context) -> str | None:
    """When the booking's cancellation limit passed, if it was moved after that (ISO 8601):
    moving a booking to a later date must not reopen the cancellation (and the full refund)
    that had closed for it."""
    assert ctx.booking is not None
    if ctx.store is None or ctx.booking.reference is None:
        return None
    found = ctx.store.get(moved_late_key(ctx.booking.reference))
    return found if isinstance(found, str) else None


def refund_percent(ctx: Context, settings: Settings) -> int:
    before = in_time(ctx, settings["cancel_limit_hours"]) and moved_late(ctx) is None
    return int(settings["refund_percent_before" if before else "refund_percent_after"])


def window_passed_before_move(ctx: Context, hours: int, passed_at: str) -> str:
    assert ctx.tenant is not None
    passed = local(datetime.fromisoformat(passed_at), ctx.tenant)
    return (
        "This booking can no longer be cancelled online. Cancellations close "
        f"{_hours(hours)} before the appointment; that time passed on {passed} "
        f"({ctx.tenant.timezone} time), before the booking was moved. "
        f"To cancel it, {contact(ctx.tenant)}"
    )


def local(moment: datetime, tenant: TenantInfo) -> str:
    when = moment.astimezone(ZoneInfo(tenant.timezone))
    return f"{when:%A} {when.day} {when:%B %Y} at {when:%H:%M}"


def contact(tenant: TenantInfo) -> str:
    """How to reach the business, from whatever its owner filled in."""
    ways = [
        f"{label} {value}"
        for label, value in (
            ("by phone on", tenant.phone),
            ("by e-mail at", tenant.email),
            ("in person at", tenant.address),
        )
        if value
    ]
    if not ways:
        return f"please contact {tenant.name} directly."
    return f"please contact {tenant.name} " + ", or ".join(ways) + "."


def _hours(hours: int) -> str:
    return "1 hour" if hours == 1 else f"{hours} hours"


def window_passed(ctx: Context, hours: int, doing: str) -> str:
    """``doing`` is "cancelled" or "moved"."""
    assert ctx.booking is not None and ctx.tenant is not None
    change, verb = ("Cancellations", "cancel") if doing == "cancelled" else ("Changes", "change")
    passed = local(deadline(ctx.booking, hours), ctx.tenant)
    return (
        f"This booking can no longer be {doing} online. {change} close {_hours(hours)} before "
        f"the appointment, and that time passed on {passed} ({ctx.tenant.timezone} time). "
        f"To {verb} it, {contact(ctx.tenant)}"
    )


def too_many_moves(ctx: Context, most: int) -> str:
    assert ctx.booking is not None and ctx.tenant is not None
    times = "once" if most == 1 else f"{most} times"
    if most == 0:
        return f"Bookings cannot be moved online here. To change it, {contact(ctx.tenant)}"
    return (
        f"This booking has already been moved {times}, the most allowed online. "
        f"To change it again, {contact(ctx.tenant)}"
    )


def blocked(tenant: TenantInfo) -> str:
    return (
        f"We are sorry, but we cannot take or change bookings for you online. "
        f"To book or change an appointment, {contact(tenant)}"
    )


def summary(settings: Settings) -> str:
    """The rules in words, from the settings in force: shown with the owner's text and part
    of what the client accepts (and what core keeps the SHA-256 of)."""
    lines = [
        f"- You may cancel online up to {_hours(settings['cancel_limit_hours'])} before the "
        "appointment, and move it up to "
        f"{_hours(settings['reschedule_limit_hours'])} before.",
        f"- A booking can be moved online at most {settings['max_reschedules']} time(s).",
        f"- If you paid in advance, {settings['refund_percent_before']}% is refunded when you "
        f"cancel in time, {settings['refund_percent_after']}% after that.",
    ]
    if settings["block_after_no_shows"]:
        lines.append(
            f"- After {settings['block_after_no_shows']} missed appointment(s) without notice, "
            "you can no longer book online."
        )
    return "\n".join(lines)


def full_text(settings: Settings) -> str:
    return settings["text"].strip() + "\n\n" + summary(settings)


def version(text: str) -> str:
    """A version that changes whenever the policy does: the start of its text's SHA-256."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]
