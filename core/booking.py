"""The booking lifecycle: book, cancel, reschedule. Every change runs in one write transaction.

The slot is re-checked inside that transaction (after the write lock on SQLite), and on PostgreSQL
the exclusion constraint turns any race the check missed into :class:`SlotUnavailable`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import db, idempotency
from .availability import find_slots
from .models import (
    Booking,
    BookingReschedule,
    BookingStatus,
    Provider,
    Service,
    Tenant,
)

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read over the phone


class BookingError(Exception):
    """A refusal the client can act on: ``code`` and ``status`` go to the API as they are."""

    status = 400
    code = "booking_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(BookingError):
    status = 404
    code = "not_found"


class SlotUnavailable(BookingError):
    status = 409
    code = "slot_unavailable"


class NotChangeable(BookingError):
    status = 409
    code = "booking_not_changeable"


@dataclass(frozen=True)
class ClientDetails:
    name: str
    email: str
    phone: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class IdempotentRequest:
    """Ties a booking to an ``Idempotency-Key`` in the booking's own transaction."""

    key: str
    request_hash: str
    render: Callable[[Booking, str], dict]


def new_reference() -> str:
    raw = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(16))
    return "-".join(raw[index : index + 4] for index in range(0, 16, 4))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(booking: Booking, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(booking.manage_token_hash, hash_token(token))


def _load_service(session: Session, tenant_id: int, service_id: int) -> Service:
    service = session.scalar(
        select(Service).where(
            Service.id == service_id, Service.tenant_id == tenant_id, Service.active.is_(True)
        )
    )
    if service is None:
        raise NotFound("No such service.")
    return service


def _load_provider(session: Session, tenant_id: int, provider_id: int) -> Provider:
    provider = session.scalar(
        select(Provider).where(
            Provider.id == provider_id, Provider.tenant_id == tenant_id, Provider.active.is_(True)
        )
    )
    if provider is None:
        raise NotFound("No such provider.")
    return provider


def _ensure_offered(
    session: Session,
    tenant: Tenant,
    service: Service,
    provider: Provider,
    start: datetime,
    now: datetime,
    ignore_booking_id: int | None = None,
) -> None:
    local_day = start.astimezone(tenant.zone).date()
    offered = find_slots(
        session,
        tenant_id=tenant.id,
        zone=tenant.zone,
        service=service,
        day_from=local_day,
        day_to=local_day,
        now=now,
        provider_id=provider.id,
        ignore_booking_id=ignore_booking_id,
    )
    if not any(slot.start == start for slot in offered):
        raise SlotUnavailable("That time is not available. Please choose another slot.")


def _blocked_range(service: Service, start: datetime) -> tuple[datetime, datetime, datetime]:
    end = start + timedelta(minutes=service.duration_minutes)
    return (
        end,
        start - timedelta(minutes=service.buffer_before_minutes),
        end + timedelta(minutes=service.buffer_after_minutes),
    )


def _flush_or_refuse(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as error:
        if db.sqlstate(error) == "23P01":  # exclusion_violation: a concurrent booking won
            raise SlotUnavailable(
                "That time was just taken. Please choose another slot."
            ) from error
        raise


def create_booking(
    app: Flask,
    *,
    tenant_id: int,
    service_id: int,
    provider_id: int,
    start: datetime,
    client: ClientDetails,
    now: datetime,
    idempotent: IdempotentRequest | None = None,
) -> tuple[Booking, str]:
    """Book ``start`` with ``provider_id``; returns the booking and its manage token."""
    with db.write_transaction(app) as session:
        if idempotent is not None:
            # Claimed first, so a concurrent retry with the same key waits on this row and
            # replays our answer rather than racing us for the slot.
            claim = idempotency.claim(
                session, tenant_id, idempotent.key, idempotent.request_hash, now
            )
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("No such business.")
        service = _load_service(session, tenant_id, service_id)
        provider = _load_provider(session, tenant_id, provider_id)
        _ensure_offered(session, tenant, service, provider, start, now)
        end, blocked_from, blocked_until = _blocked_range(service, start)
        token = secrets.token_urlsafe(32)
        booking = Booking(
            tenant_id=tenant_id,
            reference=new_reference(),
            manage_token_hash=hash_token(token),
            service_id=service.id,
            provider_id=provider.id,
            starts_at=start,
            ends_at=end,
            blocked_from=blocked_from,
            blocked_until=blocked_until,
            client_name=client.name,
            client_email=client.email,
            client_phone=client.phone,
            client_notes=client.notes,
            status=BookingStatus.CONFIRMED,
            price_cents=service.price_cents,
            prepaid_cents=0,
            created_at=now,
            updated_at=now,
            reschedules=[],
        )
        session.add(booking)
        _flush_or_refuse(session)
        if idempotent is not None:
            idempotency.complete(claim, 201, idempotent.render(booking, token))
        return booking, token


def find_booking(session: Session, tenant_id: int, reference: str) -> Booking:
    booking = session.scalar(
        select(Booking).where(Booking.tenant_id == tenant_id, Booking.reference == reference)
    )
    if booking is None:
        raise NotFound("No such booking.")
    return booking


def _changeable(booking: Booking, now: datetime, action: str) -> None:
    if booking.status != BookingStatus.CONFIRMED:
        raise NotChangeable(f"This booking is {booking.status} and can no longer be {action}.")
    if booking.starts_at <= now:
        raise NotChangeable(f"This appointment has already started and can no longer be {action}.")


def cancel_booking(
    app: Flask,
    *,
    tenant_id: int,
    reference: str,
    authorise: Callable[[Booking], None],
    now: datetime,
    reason: str | None = None,
) -> Booking:
    """Cancel and free the slot. ``authorise`` raises when the caller may not touch the booking."""
    with db.write_transaction(app) as session:
        booking = find_booking(session, tenant_id, reference)
        authorise(booking)
        _changeable(booking, now, "cancelled")
        booking.status = BookingStatus.CANCELLED
        booking.cancelled_at = now
        booking.cancellation_reason = reason
        booking.updated_at = now
        session.flush()
        return booking


def reschedule_booking(
    app: Flask,
    *,
    tenant_id: int,
    reference: str,
    authorise: Callable[[Booking], None],
    start: datetime,
    now: datetime,
    provider_id: int | None = None,
) -> Booking:
    """Move a booking, keeping its reference and token, and record the time it replaced."""
    with db.write_transaction(app) as session:
        booking = find_booking(session, tenant_id, reference)
        authorise(booking)
        _changeable(booking, now, "rescheduled")
        tenant = session.get(Tenant, tenant_id)
        service = _load_service(session, tenant_id, booking.service_id)
        provider = _load_provider(session, tenant_id, provider_id or booking.provider_id)
        _ensure_offered(
            session, tenant, service, provider, start, now, ignore_booking_id=booking.id
        )
        booking.reschedules.append(
            BookingReschedule(
                previous_provider_id=booking.provider_id,
                previous_starts_at=booking.starts_at,
                previous_ends_at=booking.ends_at,
                rescheduled_at=now,
            )
        )
        end, blocked_from, blocked_until = _blocked_range(service, start)
        booking.provider_id = provider.id
        booking.starts_at, booking.ends_at = start, end
        booking.blocked_from, booking.blocked_until = blocked_from, blocked_until
        booking.updated_at = now
        _flush_or_refuse(session)
        return booking
