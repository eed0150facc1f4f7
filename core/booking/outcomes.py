"""After the appointment: staff mark a booking completed, or record that the client never came.

Only a confirmed booking whose appointment has started can get an outcome; the change runs in one
write transaction together with its audit entry.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from bookwell.core import audit
from bookwell.core.booking.lifecycle import NotChangeable, find_booking
from bookwell.core.context import request_info
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, BookingStatus

OUTCOMES = (str(BookingStatus.COMPLETED), str(BookingStatus.NO_SHOW))


def mark_outcome(
    app: Flask,
    *,
    tenant_id: int,
    reference: str,
    outcome: str,
    now: datetime,
    actor: object,
) -> Booking:
    """Set ``outcome`` ("completed" or "no-show") on a confirmed booking that has started."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")
    info = request_info()
    with db.write_transaction(app) as session:
        booking = find_booking(session, tenant_id, reference)
        if booking.status != BookingStatus.CONFIRMED:
            raise NotChangeable(f"This booking is {booking.status} already.")
        if booking.starts_at > now:
            raise NotChangeable("This appointment has not started yet.")
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
    return booking
