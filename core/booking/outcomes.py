"""After the appointment: staff mark a booking completed, or record that the client never came.

Only a confirmed booking whose appointment has started can get an outcome; the change runs in one
write transaction together with its audit entry, and once it is committed the tenant's plugins
hear of it (``after_outcome``), whichever door it came through.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_babel import gettext, lazy_gettext
from sqlalchemy import select

from bookwell.core import audit
from bookwell.core.booking.lifecycle import NotChangeable, find_booking
from bookwell.core.context import info_of, make_context, request_info
from bookwell.core.pluginhost import host as pluginhost
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    Booking,
    BookingConsent,
    BookingStatus,
    Provider,
    Service,
    Tenant,
    User,
)
from bookwell.hooks import UserInfo

OUTCOMES = (str(BookingStatus.COMPLETED), str(BookingStatus.NO_SHOW))
_ALREADY = {
    BookingStatus.CANCELLED: lazy_gettext("This booking is cancelled already."),
    BookingStatus.COMPLETED: lazy_gettext("This booking is completed already."),
    BookingStatus.NO_SHOW: lazy_gettext("This booking is no-show already."),
}


def mark_outcome(
    app: Flask,
    *,
    tenant_id: int,
    reference: str,
    outcome: str,
    now: datetime,
    actor: object,
) -> Booking:
    """Set ``outcome`` ("completed" or "no-show") on a confirmed booking that has started, then
    tell the plugins (``after_outcome``, with ``ctx.actor`` the staff member when ``actor`` is
    an account, and ``ctx.booking`` in its new status). Call in an app context."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")
    info = request_info()
    host = pluginhost.host_of(app)
    enabled = host.enabled_for(db.session(), tenant_id)
    with db.write_transaction(app) as session:
        booking = find_booking(session, tenant_id, reference)
        if booking.status != BookingStatus.CONFIRMED:
            raise NotChangeable(
                str(_ALREADY[booking.status])
                if booking.status in _ALREADY
                else f"This booking is {booking.status} already."
            )
        if booking.starts_at > now:
            raise NotChangeable(gettext("This appointment has not started yet."))
        booking.status = outcome
        booking.updated_at = now
        session.flush()
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=audit.actor_label(actor),
            ip=info.ip if info else None,
            action="booking.completed" if outcome == BookingStatus.COMPLETED else "booking.no_show",
            subject=f"booking:{booking.reference}",
            details={"status": outcome},
            now=now,
        )
        consents = session.scalars(
            select(BookingConsent.consent_id)
            .where(BookingConsent.booking_id == booking.id)
            .order_by(BookingConsent.id)
        )
        marked = info_of(
            booking,
            session.get(Service, booking.service_id),
            session.get(Provider, booking.provider_id),
            consents,
        )
        ctx = make_context(
            session.get(Tenant, tenant_id),
            now,
            # An audit label (a string) names someone, but plugins get only a real account.
            actor if isinstance(actor, User | UserInfo) else None,
            booking=marked,
        )
    host.event("after_outcome", ctx, enabled, outcome=outcome)
    return booking
