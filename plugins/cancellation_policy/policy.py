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

from babel.dates import format_datetime
from flask_babel import get_locale, gettext

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
    return gettext(
        "This booking can no longer be cancelled online. Cancellations close "
        "%(limit)s before the appointment; that time passed on %(passed)s "
        "(%(zone)s time), before the booking was moved. "
        "To cancel it, %(contact)s",
        limit=_hours(hours),
        passed=local(datetime.fromisoformat(passed_at), ctx.tenant),
        zone=ctx.tenant.timezone,
        contact=contact(ctx.tenant),
    )


def _locale() -> Any:
    # Outside a request (a job, a command), English, as core's own texts there.
    return get_locale() or "en"


def local(moment: datetime, tenant: TenantInfo) -> str:
    """``Monday 30 November 2026 at 14:05`` on the business's clock, in the reader's language."""
    zone = ZoneInfo(tenant.timezone)
    return gettext(
        "%(day)s at %(time)s",
        day=format_datetime(moment, "EEEE d MMMM y", tzinfo=zone, locale=_locale()),
        time=format_datetime(moment, "HH:mm", tzinfo=zone, locale=_locale()),
    )


def contact(tenant: TenantInfo) -> str:
    """How to reach the business, from whatever its owner filled in."""
    ways = []
    if tenant.phone:
        ways.append(gettext("by phone on %(phone)s", phone=tenant.phone))
    if tenant.email:
        ways.append(gettext("by e-mail at %(email)s", email=tenant.email))
    if tenant.address:
        ways.append(gettext("in person at %(address)s", address=tenant.address))
    if not ways:
        return gettext("please contact %(business)s directly.", business=tenant.name)
    joined = ways[0]
    for way in ways[1:]:
        joined = gettext("%(first)s, or %(then)s", first=joined, then=way)
    return gettext("please contact %(business)s %(ways)s.", business=tenant.name, ways=joined)


def _hours(hours: int) -> str:
    return gettext("1 hour") if hours == 1 else gettext("%(count)s hours", count=hours)


def window_passed(ctx: Context, hours: int, doing: str) -> str:
    """``doing`` is "cancelled" or "moved"."""
    assert ctx.booking is not None and ctx.tenant is not None
    values = {
        "limit": _hours(hours),
        "passed": local(deadline(ctx.booking, hours), ctx.tenant),
        "zone": ctx.tenant.timezone,
        "contact": contact(ctx.tenant),
    }
    if doing == "cancelled":
        return gettext(
            "This booking can no longer be cancelled online. Cancellations close %(limit)s "
            "before the appointment, and that time passed on %(passed)s (%(zone)s time). "
            "To cancel it, %(contact)s",
            **values,
        )
    return gettext(
        "This booking can no longer be moved online. Changes close %(limit)s "
        "before the appointment, and that time passed on %(passed)s (%(zone)s time). "
        "To change it, %(contact)s",
        **values,
    )


def too_many_moves(ctx: Context, most: int) -> str:
    assert ctx.booking is not None and ctx.tenant is not None
    if most == 0:
        return gettext(
            "Bookings cannot be moved online here. To change it, %(contact)s",
            contact=contact(ctx.tenant),
        )
    if most == 1:
        return gettext(
            "This booking has already been moved once, the most allowed online. "
            "To change it again, %(contact)s",
            contact=contact(ctx.tenant),
        )
    return gettext(
        "This booking has already been moved %(count)s times, the most allowed online. "
        "To change it again, %(contact)s",
        count=most,
        contact=contact(ctx.tenant),
    )


def blocked(tenant: TenantInfo) -> str:
    return gettext(
        "We are sorry, but we cannot take or change bookings for you online. "
        "To book or change an appointment, %(contact)s",
        contact=contact(tenant),
    )


def summary(settings: Settings) -> str:
    """The rules in words, from the settings in force: shown with the owner's text and part
    of what the client accepts (and what core keeps the SHA-256 of: the words the client read,
    in their language)."""
    lines = [
        gettext(
            "- You may cancel online up to %(cancel)s before the appointment, and move it up "
            "to %(move)s before.",
            cancel=_hours(settings["cancel_limit_hours"]),
            move=_hours(settings["reschedule_limit_hours"]),
        ),
        gettext(
            "- A booking can be moved online at most %(count)s time(s).",
            count=settings["max_reschedules"],
        ),
        gettext(
            "- If you paid in advance, %(before)s%% is refunded when you cancel in time, "
            "%(after)s%% after that.",
            before=settings["refund_percent_before"],
            after=settings["refund_percent_after"],
        ),
    ]
    if settings["block_after_no_shows"]:
        lines.append(
            gettext(
                "- After %(count)s missed appointment(s) without notice, you can no longer "
                "book online.",
                count=settings["block_after_no_shows"],
            )
        )
    return "\n".join(lines)


def full_text(settings: Settings) -> str:
    return settings["text"].strip() + "\n\n" + summary(settings)


def version(text: str) -> str:
    """A version that changes whenever the policy does: the start of its text's SHA-256."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]
