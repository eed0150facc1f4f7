"""The staff side of the API: a tenant's bookings for its staff, with a bearer token."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from bookwell.core.access.permissions import READ_BOOKINGS, Subject, booking_reach
from bookwell.core.booking import lifecycle
from bookwell.core.booking.availability import local_day_bounds
from bookwell.core.context import make_context, protection
from bookwell.core.context.grants import client_subject
from bookwell.core.foundation import clock
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, BookingConsent, Role, Tenant
from bookwell.core.web.api import bodies, queries
from bookwell.core.web.api.auth import caller, require, tenant_or_404
from bookwell.core.web.api.errors import ApiError, invalid
from bookwell.core.web.api.schemas import StaffBookingIn, StaffCancelIn, StaffRescheduleIn
from bookwell.core.web.api.serialize import booking_json

staff = Blueprint("staff_api", __name__, url_prefix="/api/v1/tenants/<slug>")
MAX_LIST_DAYS = 93


def staff_booking_json(booking: Booking, tenant: Tenant, consents: list[dict]) -> dict[str, Any]:
    body = booking_json(booking, tenant.zone)
    body["consents"] = consents
    body["cancellation_reason"] = booking.cancellation_reason
    return body


def consents_of(booking_ids: list[int]) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {booking_id: [] for booking_id in booking_ids}
    if not booking_ids:
        return found
    # A session of its own: a booking this request just made was written by another one,
    # after the request's own had taken its snapshot (SQLite).
    with db.fresh_session() as session:
        rows = session.scalars(
            select(BookingConsent)
            .where(BookingConsent.booking_id.in_(booking_ids))
            .order_by(BookingConsent.id)
        ).all()
    for row in rows:
        found[row.booking_id].append(
            {
                "id": row.consent_id,
                "version": row.version,
                "text_sha256": row.text_sha256,
                "given_at": row.given_at.isoformat(),
                "ip": row.ip,
                "user_agent": row.user_agent,
            }
        )
    return found


def _days() -> tuple[date, date]:
    problems: dict[str, str] = {}
    days = {}
    for name in ("from", "to"):
        try:
            days[name] = queries.day_arg(name)
        except ApiError as error:
            problems.update(error.fields or {})
    if not problems:
        span = (days["to"] - days["from"]).days + 1
        if span < 1:
            problems["to"] = "Must be on or after 'from'."
        elif span > MAX_LIST_DAYS:
            problems["to"] = f"At most {MAX_LIST_DAYS} days at once."
    if problems:
        raise invalid(problems)
    return days["from"], days["to"]


def _viewed(tenant: Tenant, who, subject: str, references: list[str] | None = None) -> None:
    """Audit the view when a plugin asks for it (503 ``audit_unavailable`` if it cannot be),
    then tell plugins a staff member saw clients' details (``after_view``, best effort)."""
    if references is None:
        protection.audit_view(tenant, who.user, "booking", [subject.removeprefix("booking:")])
    elif references:
        protection.audit_view(tenant, who.user, "booking", references, listing=subject)
    host = host_of()
    host.event(
        "after_view",
        make_context(tenant, clock.now(), actor=who.user),
        host.enabled_for(db.session(), tenant.id),
        subject=subject,
    )


def _subject_of(tenant: Tenant, reference: str) -> Subject:
    """A booking's subject for the checks, its client's record; looked up only once the caller
    is known to belong to the business."""

    def find() -> str | None:
        email = db.session().scalar(
            select(Booking.client_email).where(
                Booking.tenant_id == tenant.id, Booking.reference == reference[:64]
            )
        )
        return client_subject(email) if email else None

    return find


def _readable(tenant: Tenant, who, reference: str, *, to_change: bool = False) -> Booking:
    """The booking, if the caller may read it (every booking, their provider's, or a grant on
    its client) and, ``to_change``, change it (read access alone, a grant, is not enough);
    else 403."""
    booking = lifecycle.find_booking(db.session(), tenant.id, reference[:64])
    reach = booking_reach(db.session(), who.user, tenant.id, clock.now())
    if not reach.reads(booking.provider_id, booking.client_email):
        raise ApiError(403, "forbidden", "Your role does not allow this booking.")
    if to_change and not reach.manages(booking.provider_id):
        raise ApiError(
            403, "forbidden", "You may read this booking, but change only your own agenda's."
        )
    return booking


def _may_use_provider(tenant: Tenant, who, provider_id: int | None, client_email: str) -> None:
    """Whoever reads only their own provider's agenda books and moves bookings only there."""
    reach = booking_reach(db.session(), who.user, tenant.id, clock.now())
    if not reach.by_role and (provider_id is None or not reach.manages(provider_id)):
        raise ApiError(
            403,
            "forbidden",
            "Your role allows bookings in your own agenda only.",
            {"provider_id": "Not yours."},
        )


def list_bookings(tenant: Tenant):
    who = require(tenant, READ_BOOKINGS, "bookings")
    day_from, day_to = _days()
    start, end = local_day_bounds(day_from, day_to, tenant.zone)
    reach = booking_reach(db.session(), who.user, tenant.id, clock.now())
    bookings = [
        booking
        for booking in db.session().scalars(
            select(Booking)
            .where(
                Booking.tenant_id == tenant.id,
                Booking.starts_at >= start,
                Booking.starts_at < end,
            )
            .order_by(Booking.starts_at, Booking.provider_id)
        )
        if reach.reads(booking.provider_id, booking.client_email)
    ]
    consents = consents_of([booking.id for booking in bookings])
    _viewed(
        tenant,
        who,
        f"bookings:{day_from.isoformat()}..{day_to.isoformat()}",
        [booking.reference for booking in bookings],
    )
    return jsonify(
        [staff_booking_json(booking, tenant, consents[booking.id]) for booking in bookings]
    )


def show_booking(tenant: Tenant, reference: str):
    who = require(tenant, READ_BOOKINGS, "booking", subject=_subject_of(tenant, reference))
    booking = _readable(tenant, who, reference)
    _viewed(tenant, who, f"booking:{booking.reference}")
    return jsonify(staff_booking_json(booking, tenant, consents_of([booking.id])[booking.id]))


def is_staff_of(tenant: Tenant) -> bool:
    """Whether the bearer is a staff member of ``tenant`` (a bad bearer answers 401). Booking
    is open to anyone: any other bearer (a client's account, another business) books as a
    client would."""
    who = caller()
    return who is not None and who.user.tenant_id == tenant.id and who.user.role != Role.CLIENT


def create_booking(tenant: Tenant):
    """Book for a client, as the staff page does: the client's consents as they gave them, and
    what they already paid. No manage token in the answer: the client gets theirs by e-mail."""
    who = require(tenant, "bookings.manage", "booking")
    if "Idempotency-Key" in request.headers:
        # Replays hand back the first answer, which for staff would need the consents read
        # inside the booking's transaction; until then, refuse rather than ignore the key.
        raise invalid({"Idempotency-Key": "Not taken on staff bookings (with a bearer)."})
    payload = bodies.read(StaffBookingIn)
    _may_use_provider(tenant, who, payload.provider_id, payload.client.email)
    booking, _token = lifecycle.create_booking(
        current_app._get_current_object(),
        tenant_id=tenant.id,
        service_id=payload.service_id,
        provider_id=payload.provider_id,
        start=payload.start,
        client=lifecycle.ClientDetails(
            name=payload.client.name,
            email=payload.client.email,
            phone=payload.client.phone or None,
            notes=payload.client.notes or None,
        ),
        now=clock.now(),
        consents=tuple(payload.consents),
        actor=who.user,
        prepaid_cents=payload.prepaid_cents,
    )
    body = staff_booking_json(booking, tenant, consents_of([booking.id])[booking.id])
    return jsonify(body), 201


def cancel_booking(tenant: Tenant, reference: str):
    who = require(tenant, "bookings.manage", "booking", subject=_subject_of(tenant, reference))
    payload = bodies.read(StaffCancelIn, when_empty=b"{}")
    _readable(tenant, who, reference, to_change=True)
    booking = lifecycle.cancel_booking(
        current_app._get_current_object(),
        tenant_id=tenant.id,
        reference=reference[:64],
        authorise=lambda _booking: None,  # require() above is the check for staff
        now=clock.now(),
        reason=(payload.reason or "").strip() or None,
        actor=who.user,
    )
    return jsonify(staff_booking_json(booking, tenant, consents_of([booking.id])[booking.id]))


@staff.get("/bookings")
def bookings_between(slug: str):
    return list_bookings(tenant_or_404(slug))


def reschedule_booking(tenant: Tenant, reference: str):
    who = require(tenant, "bookings.manage", "booking", subject=_subject_of(tenant, reference))
    payload = bodies.read(StaffRescheduleIn)
    booking = _readable(tenant, who, reference, to_change=True)
    _may_use_provider(
        tenant,
        who,
        booking.provider_id if payload.provider_id is None else payload.provider_id,
        booking.client_email,
    )
    booking = lifecycle.reschedule_booking(
        current_app._get_current_object(),
        tenant_id=tenant.id,
        reference=reference[:64],
        authorise=lambda _booking: None,  # require() above is the check for staff
        start=payload.start,
        provider_id=payload.provider_id,
        now=clock.now(),
        actor=who.user,
    )
    return jsonify(staff_booking_json(booking, tenant, consents_of([booking.id])[booking.id]))
