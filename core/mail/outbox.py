"""The outbox: messages written with the change they announce, then delivered by a job.

A booking's mail starts as a placeholder (``compose_event`` set), written in the booking's own
transaction and composed into the real messages after the commit, exactly once: by the request
(:mod:`bookwell.core.booking.mailing`), else here, before anything is sent. A placeholder is
never sent as it is.

Delivery claims each row with a conditional UPDATE (a lease in ``claimed_until``) in a write
transaction, so two workers never send the same row; it sends outside any transaction, then marks
the row sent, or counts the attempt and schedules the next one with a growing backoff.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid

from flask import Flask
from sqlalchemy import Connection, Select, Update, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from bookwell.core.mail import transport
from bookwell.core.mail.compose import OutgoingMessage
from bookwell.core.storage import db
from bookwell.core.storage.models import OutboxMessage, Tenant

log = logging.getLogger("bookwell.mail")

LEASE = timedelta(minutes=10)
BACKOFF_MINUTES = (1, 5, 30, 120)
MAX_ATTEMPTS = 12  # about a day of retries, then the message is held for a person to look at
SETTLE_BATCH = 10  # messages marked sent in one write (see deliver_due)
HELD_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)
# Where the app keeps the function that composes a placeholder (registered by the booking layer,
# which knows bookings and plugins' contexts; this layer may not import it).
COMPOSER = "bookwell.mail.composer"
# A placeholder is left this long to the request that wrote it, which composes it right after
# its commit; composing it here too would be wasted work (only one of the two would be stored).
PLACEHOLDER_GRACE = timedelta(seconds=10)

# composer(app, placeholder id, now) -> whether this call composed it.
Composer = Callable[[Flask, int, datetime], bool]
_monotonic = time.monotonic  # tests make the transport seem slow through this


@dataclass(frozen=True)
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0


def new_message_id() -> str:
    return make_msgid(idstring=secrets.token_hex(8), domain="bookwell.invalid")


def enqueue(
    session: Session,
    message: OutgoingMessage,
    tenant_id: int | None,
    booking_id: int | None,
    now: datetime,
    *,
    held: str | None = None,
    dedupe_key: str | None = None,
) -> OutboxMessage:
    """Add ``message`` to the outbox in the caller's transaction. A ``held`` message (the
    reason) is stored but never sent by the job. A ``dedupe_key`` is unique within the tenant:
    a second row with the same key fails the flush with an ``IntegrityError``."""
    row = OutboxMessage(
        tenant_id=tenant_id,
        booking_id=booking_id,
        message_id=new_message_id(),
        created_at=now,
        attempts=0,
        dedupe_key=dedupe_key,
        **message_values(message, now, held),
    )
    session.add(row)
    return row


def message_values(message: OutgoingMessage, now: datetime, held: str | None) -> dict:
    """The outbox columns that hold ``message`` (due ``now``, or held for ``held``)."""
    return {
        "kind": message.kind[:40],
        "to_address": message.to,
        "subject": message.subject[:300],
        "text_body": message.text,
        "html_body": message.html,
        "ics": message.ics,
        "next_attempt_at": HELD_UNTIL if held else now,
        "last_error": held,
    }


def enqueue_placeholder(
    session: Session,
    *,
    tenant_id: int,
    booking_id: int,
    event: str,
    sealed_facts: str,
    to: str,
    now: datetime,
    at_rest: Callable[[dict], dict] | None = None,
) -> int:
    """Add the placeholder of a booking's ``event`` mail in the booking's transaction: the
    event and the facts only that moment knows (sealed: they hold the manage token). Composed
    after the commit (:func:`claim_placeholder`), never sent as it is. Returns its id.

    A plain INSERT, not the ORM's flush, which cost a booking as much as its own row's:
    ``at_rest`` (:func:`~bookwell.core.context.protection.mail_at_rest`) turns the columns into
    what the tenant's protection stores, as a flush would."""
    values = {
        "tenant_id": tenant_id,
        "booking_id": booking_id,
        "kind": f"booking.{event}"[:40],
        "message_id": new_message_id(),
        "to_address": to,
        "subject": "",
        "text_body": "",
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
        "compose_event": event,
        "compose_facts": sealed_facts,
    }
    if at_rest is not None:
        values = at_rest(values)
    return session.execute(_INSERT_PLACEHOLDER, values).inserted_primary_key[0]


_INSERT_PLACEHOLDER = OutboxMessage.__table__.insert()


def claim_placeholder(
    session: Session | Connection,
    placeholder_id: int,
    values: dict,
    *,
    commit_without_flush: bool = False,
) -> bool:
    """Turn the placeholder into its first message (``values``: :func:`message_values`, its
    text already sealed if the tenant asks) in the caller's write transaction, if nobody did
    yet; ``False`` when another composer was first. One conditional UPDATE: on PostgreSQL a
    concurrent composer blocks on the row, then finds ``compose_event`` NULL and updates
    nothing; on SQLite the write lock serialises them.

    ``commit_without_flush`` (PostgreSQL, a statement committing on its own): the statement
    itself turns ``synchronous_commit`` off for its transaction, as ``SET LOCAL`` would in a
    transaction of several; see :func:`~bookwell.core.storage.db.asynchronous_commit`."""
    result = session.execute(
        _claim_statement(tuple(values), commit_without_flush),
        {
            "placeholder_id": placeholder_id,
            **{f"new_{name}": value for name, value in values.items()},
        },
    )
    return result.rowcount == 1


@functools.lru_cache(maxsize=8)
def _claim_statement(columns: tuple[str, ...], commit_without_flush: bool) -> Update:
    """The claim's UPDATE for these columns, built once. On the table, not the ORM entity: the
    ORM's bulk UPDATE path cost a booking's mail as much as the statement itself, and there is
    no session state to keep in step here."""
    outbox = OutboxMessage.__table__
    claim = (
        update(outbox)
        .where(outbox.c.id == bindparam("placeholder_id"), outbox.c.compose_event.is_not(None))
        .values(
            compose_event=None,
            compose_facts=None,
            **{name: bindparam(f"new_{name}") for name in columns},
        )
    )
    if commit_without_flush:
        # Evaluated for the one row the id finds, so set before there is anything to commit;
        # PostgreSQL reads the setting when the statement's transaction commits.
        claim = claim.where(func.set_config("synchronous_commit", "off", True) == "off")
    return claim


def register_composer(app: Flask, composer: Composer) -> None:
    app.extensions[COMPOSER] = composer


def placeholders_waiting(created_by: datetime, limit: int, tenant_id: int | None) -> Select:
    """The ids of up to ``limit`` placeholders written at ``created_by`` or before, oldest first."""
    waiting = (
        select(OutboxMessage.id)
        .where(OutboxMessage.compose_event.is_not(None), OutboxMessage.created_at <= created_by)
        # Ordered as the partial index is: by id alone SQLite walked the whole table instead.
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
        .limit(limit)
    )
    if tenant_id is not None:
        waiting = waiting.where(OutboxMessage.tenant_id == tenant_id)
    return waiting


def compose_placeholders(
    app: Flask,
    now: datetime,
    limit: int = 50,
    *,
    tenant_id: int | None = None,
    grace: timedelta = PLACEHOLDER_GRACE,
) -> int:
    """Compose up to ``limit`` placeholders older than ``grace`` (whose request died between
    its commit and its composing, or failed to compose); returns how many this call composed.
    A placeholder that fails to compose is logged and tried again next time."""
    composer: Composer | None = app.extensions.get(COMPOSER)
    if composer is None:
        return 0
    waiting = placeholders_waiting(now - grace, limit, tenant_id)
    with db.fresh_session(app) as reader:
        placeholders = list(reader.scalars(waiting))
    composed = 0
    for placeholder_id in placeholders:
        try:
            composed += bool(composer(app, placeholder_id, now))
        except Exception:
            log.exception("could not compose placeholder %s; tried again later", placeholder_id)
    return composed


def backoff(attempts: int) -> timedelta:
    return timedelta(minutes=BACKOFF_MINUTES[min(attempts, len(BACKOFF_MINUTES)) - 1])


def _claim(
    app: Flask, now: datetime, limit: int, tenant_id: int | None
) -> list[transport.Envelope]:
    free = or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now)
    unsent = (
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.compose_event.is_(None),  # a placeholder is never sent
        free,
    )
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.next_attempt_at <= now, *unsent)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if tenant_id is not None:
        due = due.where(OutboxMessage.tenant_id == tenant_id)
    with db.write_transaction(app) as session:
        # One statement: the conditions are checked again on each row as it is updated, so on
        # PostgreSQL a concurrent claimer that got there first (it blocks on the row, then sees
        # the new lease) leaves us nothing; on SQLite the write lock serialises claimers.
        rows = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.scalar_subquery()), *unsent)
            .values(claimed_until=now + LEASE)
            .returning(
                OutboxMessage.id,
                OutboxMessage.next_attempt_at,
                OutboxMessage.tenant_id,
                OutboxMessage.message_id,
                OutboxMessage.to_address,
                OutboxMessage.subject,
                OutboxMessage.text_body,
                OutboxMessage.html_body,
                OutboxMessage.ics,
            )
            .execution_options(synchronize_session=False)
        ).all()
        tenant_ids = {row.tenant_id for row in rows if row.tenant_id is not None}
        senders = {
            tenant.id: (tenant.name, tenant.contact_email)
            for tenant in (
                session.execute(
                    select(Tenant.id, Tenant.name, Tenant.contact_email).where(
                        Tenant.id.in_(tenant_ids)
                    )
                )
                if tenant_ids
                else ()
            )
        }
    claimed: list[transport.Envelope] = []
    # RETURNING promises no order: the oldest due first, as they were chosen.
    for row in sorted(rows, key=lambda row: (row.next_attempt_at, row.id)):
        business, reply_to = senders.get(row.tenant_id, (None, None))
        claimed.append(
            transport.Envelope(
                message_id=row.message_id,
                to=row.to_address,
                subject=row.subject,
                text=row.text_body,
                html=row.html_body,
                ics=row.ics,
                business=business,
                reply_to=reply_to,
            )
        )
    return claimed


def _settle(app: Flask, message_id: str, now: datetime, error: str | None) -> None:
    with db.write_transaction(app) as session:
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
        if row is None:
            return
        row.claimed_until = None
        if error is None:
            row.sent_at = now
            row.last_error = None
            return
        row.attempts = (row.attempts or 0) + 1
        row.last_error = error[:2000]
        if row.attempts >= MAX_ATTEMPTS:
            row.next_attempt_at = HELD_UNTIL
            row.last_error = f"gave up after {row.attempts} attempts: {error}"[:2000]
        else:
            row.next_attempt_at = now + backoff(row.attempts)


def _settle_sent(app: Flask, message_ids: list[str], now: datetime) -> None:
    with db.write_transaction(app) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.message_id.in_(message_ids))
            .values(claimed_until=None, sent_at=now, last_error=None)
            .execution_options(synchronize_session=False)
        )


def _release(app: Flask, message_ids: list[str]) -> None:
    with db.write_transaction(app) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.message_id.in_(message_ids), OutboxMessage.sent_at.is_(None))
            .values(claimed_until=None)
            .execution_options(synchronize_session=False)
        )


def deliver_due(
    app: Flask, now: datetime, limit: int = 50, *, tenant_id: int | None = None
) -> DeliveryReport:
    """Send the messages that are due, each at most once per claim; never raises for a
    message that fails (it is retried later), only for a database that cannot be reached.
    Placeholders left over are composed first, so that their mail goes out in this round."""
    compose_placeholders(app, now, limit, tenant_id=tenant_id)
    claimed = _claim(app, now, limit, tenant_id)
    started = _monotonic()
    failed = 0
    # Marked sent a few at a time, in one write each: a write per message took the write lock
    # from bookings twice per message. The cost: a process that dies right after sending may
    # send up to SETTLE_BATCH - 1 messages again once their lease ends (same Message-ID).
    unsettled: list[str] = []
    sent = 0
    try:
        for index, envelope in enumerate(claimed):
            if _monotonic() - started > LEASE.total_seconds() / 2:
                # Slow transport: hand the rest back before our lease could run out, so that
                # no other worker can claim a message while we may still be sending it.
                _release(app, [rest.message_id for rest in claimed[index:]])
                break
            try:
                transport.send(app, envelope, now)
            except Exception as error:  # any transport failure: count it and retry later
                # By the message's id: the address is a person's data, and an SMTP refusal
                # quotes it too. The whole error is kept on the row (`bookwell mail status`).
                log.warning("mail %s failed: %s", envelope.message_id, type(error).__name__)
                _settle(app, envelope.message_id, now, f"{type(error).__name__}: {error}")
                failed += 1
            else:
                unsettled.append(envelope.message_id)
                if len(unsettled) >= SETTLE_BATCH:
                    _settle_sent(app, unsettled, now)
                    sent += len(unsettled)
                    unsettled = []
    finally:
        if unsettled:
            _settle_sent(app, unsettled, now)
            sent += len(unsettled)
    return DeliveryReport(claimed=len(claimed), sent=sent, failed=failed)
