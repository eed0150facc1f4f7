"""A booking change's mail: a placeholder in the change's transaction, composed after the commit.

Composing (templates, the ``.ics`` invitation, the plugins' ``filter_message``) is most of a
booking's work, so it is kept out of the write transaction, where every other booking of the
instance would wait for it (SQLite has one writer). The transaction writes one placeholder row
(:func:`write_placeholder`): the event, and the facts only that moment knows, sealed with the
instance's key since they hold the manage token (the booking keeps only its hash).

After the commit the placeholder is turned into the real messages exactly once, by whoever gets
there first: the request right away (:func:`compose_after_commit`, from what it holds in memory),
else the delivery job or ``bookwell tick`` (:func:`compose_placeholder`, from the sealed facts and
the rows). The claim is one conditional UPDATE (``compose_event`` to NULL where it is not yet) in
the transaction that stores the messages: the loser stores nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, has_request_context

from bookwell.core.context import booking_info, make_context, protection
from bookwell.core.foundation import locales
from bookwell.core.mail import compose, dispatch, outbox
from bookwell.core.pluginhost import host as pluginhost
from bookwell.core.storage import db, sealing
from bookwell.core.storage.models import (
    Booking,
    OutboxMessage,
    Provider,
    Role,
    Service,
    Tenant,
    User,
)
from bookwell.hooks import Context

log = logging.getLogger("bookwell.mail")


@dataclass(frozen=True)
class Placeholder:
    """The placeholder a change wrote, and what its request knows to compose it at once."""

    id: int
    event: str
    booking_id: int
    facts: compose.BookingFacts


def _instant(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def write_placeholder(
    app: Flask,
    session,
    event: str,
    *,
    tenant: Tenant,
    booking: Booking,
    service: Service,
    provider: Provider,
    now: datetime,
    consents: tuple[str, ...] = (),
    actor_id: int | None = None,
    manage_token: str | None = None,
    previous_start: datetime | None = None,
    previous_provider: Provider | None = None,
) -> Placeholder:
    """Add the placeholder of ``event``'s mail in ``session`` (the change's own transaction,
    after the booking was flushed)."""
    booked = compose.BookedAs.of(booking)
    facts = {
        "token": manage_token,
        "now": now.isoformat(),
        "start": booked.starts_at.isoformat(),
        "end": booked.ends_at.isoformat(),
        "status": str(booking.status),
        "service_id": service.id,
        "provider_id": provider.id,
        "refund_due_cents": booked.refund_due_cents,
        "reschedule_count": booked.reschedule_count,
        "previous_start": _instant(previous_start),
        "previous_provider_id": previous_provider.id if previous_provider else None,
        "consents": list(consents),
        "actor_id": actor_id,
        "language": _client_language(session, actor_id),
    }
    placeholder_id = outbox.enqueue_placeholder(
        session,
        tenant_id=tenant.id,
        booking_id=booking.id,
        event=event,
        sealed_facts=sealing.seal(json.dumps(facts), app),
        to=booking.client_email,
        now=now,
        at_rest=lambda values: protection.mail_at_rest(session, tenant, now, app, values),
    )
    return Placeholder(
        placeholder_id,
        event,
        booking.id,
        compose.BookingFacts(
            tenant=tenant,
            booking=booked,
            service=service,
            provider=provider,
            now=now,
            manage_token=manage_token,
            previous_start=previous_start,
            previous_provider=previous_provider,
            language=facts["language"],
        ),
    )


def _client_language(session, actor_id: int | None) -> str | None:
    """The language the client made this change in: the request's, when the client made it
    (anonymously or from their account); ``None`` (the business's default) when staff did, or
    no request did."""
    if not has_request_context():
        return None
    if actor_id is not None:
        actor = session.get(User, actor_id)
        if actor is None or actor.role != Role.CLIENT:
            return None
    return locales.reader_language()


def compose_after_commit(
    app: Flask, placeholder: Placeholder, ctx: Context, enabled: Mapping[str, Mapping[str, Any]]
) -> None:
    """The request's turn, right after its commit, from what it holds. Never raises: mail never
    fails a booking, and a placeholder left behind is composed by the delivery job."""
    try:
        _compose_and_store(
            app,
            placeholder.id,
            placeholder.event,
            placeholder.booking_id,
            placeholder.facts,
            ctx,
            enabled,
        )
    except Exception:
        log.exception(
            "could not compose the %s mail of booking %s; the delivery job will",
            placeholder.event,
            placeholder.facts.booking.reference,
        )


def compose_placeholder(app: Flask, placeholder_id: int, now: datetime) -> bool:
    """Compose a placeholder from its sealed facts and the rows (the delivery job's and
    ``bookwell tick``'s turn); ``False`` when it was composed already. Registered with the
    outbox (:func:`init_app`)."""
    with app.app_context(), db.fresh_session(app) as reader:
        row = reader.get(OutboxMessage, placeholder_id)
        if row is None or row.compose_event is None:
            return False
        event = row.compose_event
        try:
            facts = json.loads(sealing.unseal(row.compose_facts or "", app))
        except sealing.Unsealable:
            return _store_uncomposable(app, placeholder_id, now, "its facts do not unseal")
        tenant = reader.get(Tenant, row.tenant_id)
        booking = reader.get(Booking, row.booking_id) if row.booking_id is not None else None
        service = reader.get(Service, facts["service_id"])
        provider = reader.get(Provider, facts["provider_id"])
        if tenant is None or booking is None or service is None or provider is None:
            return _store_uncomposable(app, placeholder_id, now, "its booking is gone")
        previous = (
            reader.get(Provider, facts["previous_provider_id"])
            if facts["previous_provider_id"] is not None
            else None
        )
        actor = reader.get(User, facts["actor_id"]) if facts["actor_id"] is not None else None
        happened = datetime.fromisoformat(facts["now"])
        booked = compose.BookedAs.of(
            booking,
            starts_at=datetime.fromisoformat(facts["start"]),
            ends_at=datetime.fromisoformat(facts["end"]),
            refund_due_cents=facts["refund_due_cents"],
            reschedule_count=facts["reschedule_count"],
        )
        previous_start = facts["previous_start"]
        mail_facts = compose.BookingFacts(
            tenant=tenant,
            booking=booked,
            service=service,
            provider=provider,
            now=happened,
            manage_token=facts["token"],
            previous_start=datetime.fromisoformat(previous_start) if previous_start else None,
            previous_provider=previous,
            # Placeholders sealed before the language was kept have none: the business's default.
            language=facts.get("language"),
        )
        info = booking_info(
            service=service,
            provider=provider,
            start=booked.starts_at,
            end=booked.ends_at,
            client_name=booked.client_name,
            client_email=booked.client_email,
            client_phone=booked.client_phone,
            status=facts["status"],
            reference=booked.reference,
            consents=tuple(facts["consents"]),
            prepaid_cents=booked.prepaid_cents,
            discount_cents=booked.discount_cents,
            discount_label=booked.discount_label,
            reschedule_count=booked.reschedule_count,
        )
        ctx = make_context(tenant, happened, actor, booking=info)
        enabled = pluginhost.host_of(app).enabled_for(reader, tenant.id)
        return _compose_and_store(app, placeholder_id, event, booking.id, mail_facts, ctx, enabled)


def _compose_and_store(
    app: Flask,
    placeholder_id: int,
    event: str,
    booking_id: int,
    facts: compose.BookingFacts,
    ctx: Context,
    enabled: Mapping[str, Mapping[str, Any]],
) -> bool:
    tenant = facts.tenant
    try:
        messages = dispatch.booking_messages(app, event, facts, ctx=ctx, enabled=enabled)
    except Exception as error:
        log.exception("could not compose the %s mail of booking %s", event, facts.booking.reference)
        return _store_uncomposable(app, placeholder_id, facts.now, f"{error!r}")
    (first, held), *others = messages
    # The request's own session (its answer is memoised for the request), else a fresh one.
    with (
        contextlib.nullcontext(db.session())
        if has_request_context()
        else db.fresh_session(app) as reader
    ):
        values = protection.mail_at_rest(
            reader, tenant, facts.now, app, outbox.message_values(first, facts.now, held)
        )
    # The messages are made from the placeholder, which a crash that lost them would leave in
    # place for the delivery job to compose again: their commit need not wait for the disk,
    # which cost a booking a second flush of PostgreSQL's log.
    if not others and db.engine_of(app).dialect.name == "postgresql":
        # One message, one UPDATE: no transaction around it (BEGIN, SET LOCAL and COMMIT were
        # three of a booking's nineteen round trips).
        with db.statement_on_its_own(app) as connection:
            return outbox.claim_placeholder(
                connection, placeholder_id, values, commit_without_flush=True
            )
    with db.write_transaction(app) as session:
        db.asynchronous_commit(session)
        if not outbox.claim_placeholder(session, placeholder_id, values):
            return False
        for message, reason in others:
            # Flushed through the ORM: encrypted like any outbox row if the tenant asks.
            outbox.enqueue(session, message, tenant.id, booking_id, facts.now, held=reason)
    return True


def _store_uncomposable(app: Flask, placeholder_id: int, now: datetime, why: str) -> bool:
    """Claim a placeholder that can never be composed and hold it, saying why: it is never
    sent, and a person sees it in ``bookwell mail status``."""
    values = {"next_attempt_at": outbox.HELD_UNTIL, "last_error": f"held: not composed: {why}"}
    with db.write_transaction(app) as session:
        return outbox.claim_placeholder(session, placeholder_id, values)


def init_app(app: Flask) -> None:
    outbox.register_composer(app, compose_placeholder)
