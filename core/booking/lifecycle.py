"""The booking lifecycle: book, cancel, reschedule. Every change runs in one write transaction.

The slot is re-checked inside that transaction (after the write lock on SQLite), and on PostgreSQL
the exclusion constraint turns any race the check missed into :class:`SlotUnavailable`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from flask_babel import gettext, lazy_gettext
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bookwell.core import audit, mail
from bookwell.core.booking import idempotency, mailing
from bookwell.core.booking.availability import find_slots
from bookwell.core.context import booking_info, info_of, make_context, protection
from bookwell.core.foundation import text
from bookwell.core.pluginhost import host as pluginhost
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    Booking,
    BookingConsent,
    BookingReschedule,
    BookingStatus,
    Provider,
    Service,
    Tenant,
)
from bookwell.hooks import Consent, Context, Discount

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read over the phone
log = logging.getLogger("bookwell.booking")


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


class ConsentMissing(BookingError):
    status = 422
    code = "invalid"

    def __init__(self, missing: list[Consent]) -> None:
        labels = "; ".join(consent.label for consent in missing)
        super().__init__(gettext("Please accept: %(consents)s", consents=labels))
        self.missing = missing


class InvalidAmount(BookingError):
    """An amount of money out of its bounds (``field`` names it, as the forms and API do): a
    well-formed request the booking's own numbers refuse, as a taken slot is."""

    status = 422
    code = "prepaid_out_of_range"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidText(BookingError):
    """Text that breaks the one standard (:mod:`bookwell.core.foundation.text`). The API and the
    forms refuse it first; this guards every other caller, a plugin or a future entry point."""

    status = 422
    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _check_text(field: str, value: str | None, *, lines: bool = False) -> None:
    if value is None:
        return
    if lines and not text.is_multi_line(value):
        raise InvalidText(field, text.MULTI_LINE_MESSAGE)
    if not lines and not text.is_single_line(value):
        raise InvalidText(field, text.SINGLE_LINE_MESSAGE)


@dataclass(frozen=True)
class ClientDetails:
    name: str
    email: str
    phone: str | None = None
    notes: str | None = None

    def check(self) -> None:
        """:class:`InvalidText` unless each detail holds to the standard for typed text."""
        _check_text("name", self.name)
        _check_text("email", self.email)
        _check_text("phone", self.phone)
        _check_text("notes", self.notes, lines=True)


# booking_consents.ip and .user_agent: an IPv6 address is at most 45 characters; a user agent
# is cut, since any client may send one of any length.
MAX_IP_LENGTH = 45
MAX_USER_AGENT_LENGTH = 300


@dataclass(frozen=True)
class ConsentWitness:
    """Where consents were given from, kept with each as part of its proof: the request's
    address and user agent (``None`` outside a request)."""

    ip: str | None
    user_agent: str | None

    @classmethod
    def of(cls, ctx: Context) -> ConsentWitness:
        if ctx.request is None:
            return cls(None, None)
        ip, agent = ctx.request.ip, ctx.request.user_agent
        return cls(
            ip[:MAX_IP_LENGTH] if ip else None,
            agent[:MAX_USER_AGENT_LENGTH] if agent else None,
        )


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
        raise NotFound(gettext("No such service."))
    return service


def _load_provider(session: Session, tenant_id: int, provider_id: int) -> Provider:
    provider = session.scalar(
        select(Provider).where(
            Provider.id == provider_id, Provider.tenant_id == tenant_id, Provider.active.is_(True)
        )
    )
    if provider is None:
        raise NotFound(gettext("No such provider."))
    return provider


# Built once: every booking runs it, and building it cost a booking more than running it.
_OFFER = (
    select(Tenant, Service, Provider)
    .join_from(Tenant, Service, Service.tenant_id == Tenant.id)
    .join(Provider, Provider.tenant_id == Tenant.id)
    .where(
        Tenant.id == bindparam("tenant_id"),
        Service.id == bindparam("service_id"),
        Service.active.is_(True),
        Provider.id == bindparam("provider_id"),
        Provider.active.is_(True),
    )
)


def _load_offer(
    session: Session, tenant_id: int, service_id: int, provider_id: int
) -> tuple[Tenant, Service, Provider]:
    """The tenant, the active service and the active provider a booking needs, in one query
    (each of them is read once per session); :class:`NotFound` names what is missing."""
    found = session.execute(
        _OFFER, {"tenant_id": tenant_id, "service_id": service_id, "provider_id": provider_id}
    ).first()
    if found is not None:
        return found.Tenant, found.Service, found.Provider
    if session.get(Tenant, tenant_id) is None:
        raise NotFound(gettext("No such business."))
    _load_service(session, tenant_id, service_id)
    _load_provider(session, tenant_id, provider_id)
    raise NotFound(gettext("No such provider."))  # not reached: one of the two raised


def _offer_for_writing(
    session: Session, read: tuple[Tenant, Service, Provider]
) -> tuple[Tenant, Service, Provider]:
    """The offer a write transaction books against. On SQLite, read again under the write
    lock: what is booked is what stands now (the guards saw the reader's copy; the price, hours
    or the provider may have changed since), and no change can come in between. On PostgreSQL
    no lock would hold them either, so a second read bought nothing but a round trip: the
    reader's rows are handed to the writer's session as they are (the exclusion constraint,
    not this read, is what refuses an overlap there)."""
    tenant, service, provider = read
    if session.get_bind().dialect.name == "sqlite":
        return _load_offer(session, tenant.id, service.id, provider.id)
    return (
        session.merge(tenant, load=False),
        session.merge(service, load=False),
        session.merge(provider, load=False),
    )


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
        longest_block_minutes=tenant.longest_block_minutes,
        provider_id=provider.id,
        ignore_booking_id=ignore_booking_id,
    )
    wanted = start.timestamp()
    if not any(slot.start_epoch == wanted for slot in offered):
        raise SlotUnavailable(gettext("That time is not available. Please choose another slot."))


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
                gettext("That time was just taken. Please choose another slot.")
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
    consents: tuple[str, ...] = (),
    actor: object | None = None,
    idempotent: IdempotentRequest | None = None,
    prepaid_cents: int = 0,
) -> tuple[Booking, str]:
    """Book ``start`` with ``provider_id``; returns the booking and its manage token.

    The plugins' guards run first, outside the write lock; then the slot is checked and taken in
    one transaction together with the proof of every consent given. ``prepaid_cents`` is what
    staff record the client already paid (0 to the service's price).
    """
    client.check()
    host = pluginhost.host_of(app)
    reader = db.session()
    tenant, service, provider = _load_offer(reader, tenant_id, service_id, provider_id)
    _check_prepaid(prepaid_cents, service.price_cents)
    enabled = host.enabled_for(reader, tenant_id)
    required = requirements(app, tenant, now, enabled)
    missing = [consent for _, consent in required if consent.id not in consents]
    if missing:
        raise ConsentMissing(missing)
    ctx = make_context(
        tenant,
        now,
        actor,
        booking=booking_info(
            service=service,
            provider=provider,
            start=start,
            end=start + timedelta(minutes=service.duration_minutes),
            client_name=client.name,
            client_email=client.email,
            client_phone=client.phone,
            status=BookingStatus.CONFIRMED,
            consents=tuple(consents),
            prepaid_cents=prepaid_cents,
        ),
    )
    who = _who(actor, client.email)
    given_from = ConsentWitness.of(ctx)
    _guard_audited(
        app, host, "before_confirm", ctx, enabled, host.broken_enabled_for(reader, tenant_id), who
    )
    discount_cents, discount_label = best_discount(host, ctx, enabled, service.price_cents)
    # The client's phone and notes are encrypted as the row is flushed, if a plugin asks: the
    # tenant's key must exist before the write lock is taken.
    protection.prepare_writes(reader, tenant, now)
    with db.write_transaction(app) as session:
        if idempotent is not None:
            # Claimed first, so a concurrent retry with the same key waits on this row and
            # replays our answer rather than racing us for the slot.
            claim = idempotency.claim(
                session, tenant_id, idempotent.key, idempotent.request_hash, now
            )
        tenant, service, provider = _offer_for_writing(session, (tenant, service, provider))
        _check_prepaid(prepaid_cents, service.price_cents)
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
            prepaid_cents=prepaid_cents,
            discount_cents=discount_cents,
            discount_label=discount_label,
            created_at=now,
            updated_at=now,
            reschedules=[],
        )
        session.add(booking)
        _flush_or_refuse(session)
        session.add_all(
            BookingConsent(
                booking_id=booking.id,
                consent_id=consent.id,
                plugin_name=plugin,
                version=consent.version,
                text_sha256=hashlib.sha256(consent.text.encode()).hexdigest(),
                given_at=now,
                ip=given_from.ip,
                user_agent=given_from.user_agent,
            )
            for plugin, consent in required
        )
        if idempotent is not None:
            idempotency.complete(claim, 201, idempotent.render(booking, token))
        audit.audit(
            session,
            ctx,
            "booking.created",
            f"booking:{booking.reference}",
            {
                "service_id": service.id,
                "provider_id": provider.id,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "consents": [consent.id for _, consent in required],
                **(
                    {"discount": {"cents": discount_cents, "label": discount_label}}
                    if discount_cents
                    else {}
                ),
                **({"prepaid_cents": prepaid_cents} if prepaid_cents else {}),
            },
            actor=who,
        )
        placeholder = mailing.write_placeholder(
            app,
            session,
            "confirmed",
            tenant=tenant,
            booking=booking,
            service=service,
            provider=provider,
            now=now,
            consents=tuple(consents),
            actor_id=_actor_id(ctx),
            manage_token=token,
        )
    confirmed = _with_booking(ctx, info_of(booking, service, provider, consents))
    mailing.compose_after_commit(app, placeholder, confirmed, enabled)
    mail.kick(app)
    host.event("after_confirm", confirmed, enabled)
    return booking, token


def _actor_id(ctx: Context) -> int | None:
    return ctx.actor.id if ctx.actor is not None else None


def _check_prepaid(prepaid_cents: int, price_cents: int) -> None:
    if isinstance(prepaid_cents, bool) or not isinstance(prepaid_cents, int):
        raise TypeError("prepaid_cents must be an int")  # the API and forms parse it first
    if not 0 <= prepaid_cents <= price_cents:
        raise InvalidAmount(
            "prepaid_cents",
            gettext(
                "The prepaid amount must be between 0 and the price (%(cents)s cents).",
                cents=price_cents,
            ),
        )


def refund_due(
    host: pluginhost.PluginHost, ctx: Context, enabled, reason: str | None
) -> int | None:
    """The refund the tenant's plugins say a cancelled prepaid booking is due, in cents, or
    ``None`` when nothing was prepaid or no plugin has a rule.

    The smallest answer wins: like session limits, the strictest rule holds, and a business that
    runs two policies never owes more than either says. A rule that fails, or answers anything
    but whole cents, refuses the cancellation (``plugin_failed``): recording a wrong amount of
    money owed, or none, is worse than asking the client to try again."""
    prepaid = ctx.booking.prepaid_cents if ctx.booking else 0
    if prepaid <= 0:
        return None
    try:
        answers = host.contributions("cancellation_refund", ctx, enabled, reason=reason)
    except pluginhost.PluginFailed as failed:
        raise pluginhost.refused_by_failure(failed.plugin, "failed") from failed
    due: int | None = None
    for plugin, cents in answers:
        if isinstance(cents, bool) or not isinstance(cents, int):
            log.error("plugin %s: cancellation_refund answered %r, not cents", plugin, cents)
            host.note_failure(ctx, plugin, "cancellation_refund", "answered nonsense")
            raise pluginhost.refused_by_failure(plugin, "answered nonsense")
        cents = min(max(cents, 0), prepaid)
        due = cents if due is None else min(due, cents)
    return due


def cents_off(discount: Discount, price_cents: int) -> int:
    """What ``discount`` takes off ``price_cents``: a percent rounds down to whole cents, a
    percent and cents together add up, and the result stays within ``[0, price]``."""
    off = int(price_cents * discount.percent // 100) + int(discount.cents)
    return min(max(off, 0), price_cents)


def best_discount(
    host: pluginhost.PluginHost, ctx: Context, enabled, price_cents: int
) -> tuple[int, str | None]:
    """The largest discount the tenant's plugins offer for ``ctx.booking``, as (cents, label).

    Each plugin is asked on its own, so that one failing (logged) loses only its own offer: a
    discount is no security check, and must never stand between a client and a booking. On a
    tie the plugin first by name wins, so the answer does not depend on loading order."""
    best: tuple[int, str | None] = (0, None)
    for name in sorted(enabled):
        try:
            offers = host.contributions("booking_discount", ctx, {name: enabled[name]})
        except pluginhost.PluginFailed:
            log.warning("plugin %s: booking_discount failed; booked without its discount", name)
            continue
        for _, offer in offers:
            try:
                cents = cents_off(offer, price_cents)
            except (AttributeError, TypeError, ValueError):
                log.error("plugin %s: booking_discount answered %r, not a Discount", name, offer)
                continue
            if cents > best[0]:
                best = (cents, str(offer.label)[:200])
    return best


def _who(actor: object | None, client_email: str) -> str:
    """The audit trail's name for whoever acts: a signed-in user, else the client by e-mail."""
    return audit.actor_label(actor) if actor is not None else f"client:{client_email}"


def _guard_audited(app, host, hook, ctx, enabled, broken, who, **arguments) -> None:
    """Run a guard; a refusal is audited in its own transaction before it propagates."""
    try:
        host.guard(hook, ctx, enabled, broken, **arguments)
    except pluginhost.Refused as refused:
        reference = ctx.booking.reference if ctx.booking else None
        audit.audit_separately(
            app,
            ctx,
            "booking.refused",
            f"booking:{reference or 'new'}",
            {
                "hook": hook,
                "refusals": [
                    {"plugin": item.plugin, "refusal": getattr(item.refusal, "code", "redirect")}
                    for item in refused.refusals
                ],
            },
            actor=who,
        )
        raise


def requirements(
    app: Flask, tenant: Tenant, now: datetime, enabled=None
) -> list[tuple[str, Consent]]:
    """The consents the tenant's plugins ask of a client, with the plugin asking each."""
    host = pluginhost.host_of(app)
    if enabled is None:
        enabled = host.enabled_for(db.session(), tenant.id)
    found: list[tuple[str, Consent]] = []
    for plugin, consents in host.contributions(
        "booking_requirements", make_context(tenant, now), enabled
    ):
        found.extend((plugin, consent) for consent in consents)
    return found


CLIENT_ACTIONS = ("cancel", "reschedule")


def closed_client_actions(
    app: Flask, tenant: Tenant, booking: Booking, now: datetime, actor: object | None = None
) -> dict[str, str]:
    """The client's actions on ``booking`` that plugins say their guards would refuse now,
    with why: for the manage page to explain up front rather than after a click. Advice only:
    one that fails or answers nonsense is logged and left out, and the guards still decide."""
    host = pluginhost.host_of(app)
    reader = db.session()
    enabled = host.enabled_for(reader, tenant.id)
    service = reader.get(Service, booking.service_id)
    provider = reader.get(Provider, booking.provider_id)
    consents = reader.scalars(
        select(BookingConsent.consent_id).where(BookingConsent.booking_id == booking.id)
    )
    ctx = make_context(tenant, now, actor, booking=info_of(booking, service, provider, consents))
    closed: dict[str, str] = {}
    for name in sorted(enabled):
        try:
            answers = host.contributions("closed_client_actions", ctx, {name: enabled[name]})
        except pluginhost.PluginFailed:
            log.warning("plugin %s: closed_client_actions failed; the guards still decide", name)
            continue
        for _, answer in answers:
            try:
                items = list(answer.items())
            except AttributeError:
                log.error("plugin %s: closed_client_actions answered %r", name, answer)
                continue
            for action, message in items:
                if action in CLIENT_ACTIONS and isinstance(message, str) and message.strip():
                    closed.setdefault(action, message.strip())
    return closed


def _with_booking(ctx, booking):
    return dataclasses.replace(ctx, booking=booking)


REFERENCE_SHAPE = re.compile(r"^[A-Z0-9-]{1,32}$")


def find_booking(session: Session, tenant_id: int, reference: str) -> Booking:
    if not REFERENCE_SHAPE.match(reference):
        raise NotFound(gettext("No such booking."))
    booking = session.scalar(
        select(Booking).where(Booking.tenant_id == tenant_id, Booking.reference == reference)
    )
    if booking is None:
        raise NotFound(gettext("No such booking."))
    return booking


# Whole sentences, so that each language words them its own way: (status, action) and, for a
# booking that has started, action.
_NOT_CHANGEABLE = {
    ("cancelled", "cancelled"): lazy_gettext(
        "This booking is cancelled and can no longer be cancelled."
    ),
    ("cancelled", "rescheduled"): lazy_gettext(
        "This booking is cancelled and can no longer be rescheduled."
    ),
    ("completed", "cancelled"): lazy_gettext(
        "This booking is completed and can no longer be cancelled."
    ),
    ("completed", "rescheduled"): lazy_gettext(
        "This booking is completed and can no longer be rescheduled."
    ),
    ("no-show", "cancelled"): lazy_gettext(
        "This booking is no-show and can no longer be cancelled."
    ),
    ("no-show", "rescheduled"): lazy_gettext(
        "This booking is no-show and can no longer be rescheduled."
    ),
}
_STARTED = {
    "cancelled": lazy_gettext(
        "This appointment has already started and can no longer be cancelled."
    ),
    "rescheduled": lazy_gettext(
        "This appointment has already started and can no longer be rescheduled."
    ),
}


def _changeable(booking: Booking, now: datetime, action: str) -> None:
    if booking.status != BookingStatus.CONFIRMED:
        said = _NOT_CHANGEABLE.get((str(booking.status), action))
        raise NotChangeable(
            str(said)
            if said is not None
            else f"This booking is {booking.status} and can no longer be {action}."
        )
    if booking.starts_at <= now:
        said = _STARTED.get(action)
        raise NotChangeable(
            str(said)
            if said is not None
            else f"This appointment has already started and can no longer be {action}."
        )


@dataclasses.dataclass(frozen=True)
class _Prepared:
    ctx: Context
    enabled: dict
    tenant: Tenant
    service: Service
    provider: Provider


def _prepare_change(
    app: Flask,
    tenant_id: int,
    reference: str,
    authorise: Callable[[Booking], None],
    now: datetime,
    action: str,
    actor: object | None,
) -> _Prepared:
    """Read the booking, check the caller may touch it, and build the guards' context; all
    before any write lock."""
    reader = db.session()
    tenant = reader.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(gettext("No such business."))
    booking = find_booking(reader, tenant_id, reference)
    authorise(booking)
    _changeable(booking, now, action)
    service = reader.get(Service, booking.service_id)
    provider = reader.get(Provider, booking.provider_id)
    consents = reader.scalars(
        select(BookingConsent.consent_id).where(BookingConsent.booking_id == booking.id)
    )
    ctx = make_context(tenant, now, actor, booking=info_of(booking, service, provider, consents))
    enabled = pluginhost.host_of(app).enabled_for(reader, tenant_id)
    return _Prepared(ctx, enabled, tenant, service, provider)


def cancel_booking(
    app: Flask,
    *,
    tenant_id: int,
    reference: str,
    authorise: Callable[[Booking], None],
    now: datetime,
    reason: str | None = None,
    actor: object | None = None,
    manage_token: str | None = None,
) -> Booking:
    """Cancel and free the slot. ``authorise`` raises when the caller may not touch the booking.

    ``reason`` is the cancelling staff member's (``None`` from a client, or when staff gave
    none): ``before_cancel`` and ``after_cancel`` get it as it is, and the booking keeps it, or
    says who cancelled. ``manage_token``, when the caller has it (the client's own request),
    puts the manage link in the client's e-mail; only its hash is stored, so staff changes
    send none."""
    _check_text("reason", reason, lines=True)
    host = pluginhost.host_of(app)
    prepared = _prepare_change(app, tenant_id, reference, authorise, now, "cancelled", actor)
    who = _who(actor, prepared.ctx.booking.client_email)
    _guard_audited(
        app,
        host,
        "before_cancel",
        prepared.ctx,
        prepared.enabled,
        host.broken_enabled_for(db.session(), tenant_id),
        who,
        reason=reason,
    )
    refund = refund_due(host, prepared.ctx, prepared.enabled, reason)
    with db.write_transaction(app) as session:
        booking = find_booking(session, tenant_id, reference)
        authorise(booking)
        _changeable(booking, now, "cancelled")
        booking.status = BookingStatus.CANCELLED
        booking.refund_due_cents = refund
        booking.cancelled_at = now
        booking.cancellation_reason = reason or _cancelled_by(actor)
        booking.updated_at = now
        session.flush()
        audit.audit(
            session,
            prepared.ctx,
            "booking.cancelled",
            f"booking:{reference}",
            {
                "reason": booking.cancellation_reason,
                **({"refund_due_cents": refund} if refund is not None else {}),
            },
            actor=who,
        )
        placeholder = mailing.write_placeholder(
            app,
            session,
            "cancelled",
            tenant=prepared.tenant,
            booking=booking,
            service=prepared.service,
            provider=prepared.provider,
            now=now,
            consents=prepared.ctx.booking.consents,
            actor_id=_actor_id(prepared.ctx),
            manage_token=manage_token,
        )
    cancelled = _with_booking(
        prepared.ctx, dataclasses.replace(prepared.ctx.booking, status=BookingStatus.CANCELLED)
    )
    mailing.compose_after_commit(app, placeholder, cancelled, prepared.enabled)
    mail.kick(app)
    host.event("after_cancel", cancelled, prepared.enabled, reason=reason)
    return booking


def _cancelled_by(actor: object | None) -> str:
    client = actor is None or getattr(actor, "role", None) == "client"
    return "cancelled by the client" if client else "cancelled by the business"


def reschedule_booking(
    app: Flask,
    *,
    tenant_id: int,
    reference: str,
    authorise: Callable[[Booking], None],
    start: datetime,
    now: datetime,
    provider_id: int | None = None,
    actor: object | None = None,
    manage_token: str | None = None,
) -> Booking:
    """Move a booking, keeping its reference and token, and record the time it replaced.

    ``manage_token`` as for :func:`cancel_booking`: the client's e-mail links back only with it."""
    host = pluginhost.host_of(app)
    prepared = _prepare_change(app, tenant_id, reference, authorise, now, "rescheduled", actor)
    new_end = start + timedelta(minutes=prepared.service.duration_minutes)
    who = _who(actor, prepared.ctx.booking.client_email)
    _guard_audited(
        app,
        host,
        "before_reschedule",
        prepared.ctx,
        prepared.enabled,
        host.broken_enabled_for(db.session(), tenant_id),
        who,
        new_start=start,
        new_end=new_end,
    )
    with db.write_transaction(app) as session:
        booking = find_booking(session, tenant_id, reference)
        authorise(booking)
        _changeable(booking, now, "rescheduled")
        tenant, service, provider = _load_offer(
            session, tenant_id, booking.service_id, provider_id or booking.provider_id
        )
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
        booking.reschedule_count = (booking.reschedule_count or 0) + 1
        end, blocked_from, blocked_until = _blocked_range(service, start)
        booking.provider_id = provider.id
        booking.starts_at, booking.ends_at = start, end
        booking.blocked_from, booking.blocked_until = blocked_from, blocked_until
        booking.updated_at = now
        _flush_or_refuse(session)
        moved = info_of(booking, service, provider, prepared.ctx.booking.consents)
        audit.audit(
            session,
            prepared.ctx,
            "booking.rescheduled",
            f"booking:{reference}",
            {
                "from": {
                    "start": prepared.ctx.booking.start.isoformat(),
                    "provider_id": prepared.ctx.booking.provider.id,
                },
                "to": {"start": start.isoformat(), "provider_id": provider.id},
            },
            actor=who,
        )
        placeholder = mailing.write_placeholder(
            app,
            session,
            "rescheduled",
            tenant=tenant,
            booking=booking,
            service=service,
            provider=provider,
            now=now,
            consents=prepared.ctx.booking.consents,
            actor_id=_actor_id(prepared.ctx),
            manage_token=manage_token,
            previous_start=prepared.ctx.booking.start,
            previous_provider=prepared.provider,
        )
    mailing.compose_after_commit(
        app, placeholder, _with_booking(prepared.ctx, moved), prepared.enabled
    )
    mail.kick(app)
    host.event(
        "after_reschedule",
        _with_booking(prepared.ctx, moved),
        prepared.enabled,
        old_start=prepared.ctx.booking.start,
        old_end=prepared.ctx.booking.end,
    )
    return booking
