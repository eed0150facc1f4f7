"""What a plugin may read and write beyond its hook's subject: :class:`~bookwell.hooks.TenantData`.

Each hook's context carries one :class:`PluginData`, bound to the context's tenant: every query
below filters by that tenant's id, so a plugin can never reach another business's rows. Nothing
is read until a method is called, so the contexts of hooks that never use it cost nothing.

Archiving and deleting old bookings also needs to know which plugin asks (the archive goes to
that plugin's own folder, and the audit trail names it): the plugin host binds a copy per
plugin (:meth:`PluginData.for_plugin`, through ``core/context/tools.py``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, raiseload

# Module imports both ways: context builds PluginData, PluginData builds BookingInfo.
from bookwell.core import audit, context
from bookwell.core.foundation import clock
from bookwell.core.mail import compose, dispatch, outbox, transport
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.files import write_durably
from bookwell.core.storage.models import (
    STAFF_ROLES,
    Booking,
    BookingConsent,
    BookingReschedule,
    OutboxMessage,
    Provider,
    Service,
    Tenant,
    User,
)
from bookwell.hooks import ArchiveResult, BookingInfo, Context, GivenConsent, TenantInfo, UserInfo

DEDUPE_KEY_LENGTH = 200  # outbox_messages.dedupe_key
# Bookings archived and deleted per call, at most: the deletion holds the write lock (on SQLite,
# every booking of every business waits for it), so a call must stay short.
ARCHIVE_LIMIT = 500
ARCHIVE_FORMAT = 1
ARCHIVED_ACTION = "bookings.archived_and_deleted"


@dataclass(frozen=True)
class _ArchiveFiles:
    archive: Path
    checksum: str
    csv_archive: Path
    csv_checksum: str


class PluginData:
    """The tenant's bookings and outbox, as the plugins of one hook call may use them."""

    def __init__(
        self,
        app: Flask,
        tenant: TenantInfo,
        now: datetime,
        *,
        dry_run: bool,
        plugin: str | None = None,
        files: Path | None = None,
    ) -> None:
        self._app = app
        self._tenant = tenant
        self._now = now
        self._dry_run = dry_run
        self._plugin = plugin
        self._files = files
        # Bookings left per ``before``, as the last call of this context knew them.
        self._remaining: dict[datetime, int] = {}

    def for_plugin(self, plugin: str, files: Path) -> PluginData:
        """The same data as plugin ``plugin`` uses it: its archives go to ``files`` (its
        ``ctx.files``) and the audit trail names it."""
        return PluginData(
            self._app, self._tenant, self._now, dry_run=self._dry_run, plugin=plugin, files=files
        )

    def bookings(
        self,
        *,
        starts_from: datetime,
        starts_before: datetime,
        statuses: Iterable[str] = ("confirmed",),
    ) -> list[BookingInfo]:
        """The tenant's bookings starting in ``[starts_from, starts_before)``, earliest first."""
        if isinstance(statuses, str):  # ("confirmed") without its comma
            statuses = (statuses,)
        return self._bookings(
            Booking.starts_at >= starts_from,
            Booking.starts_at < starts_before,
            Booking.status.in_(list(statuses)),
        )

    def client_bookings(self, email: str) -> list[BookingInfo]:
        """Every booking of one client (e-mail compared case-insensitively), oldest first (by
        start time)."""
        return self._bookings(func.lower(Booking.client_email) == email.strip().lower())

    def staff(self, roles: Iterable[str] | None = None) -> list[UserInfo]:
        """The tenant's active staff accounts (of ``roles`` only, when given), by id."""
        wanted = {str(role) for role in STAFF_ROLES}
        if roles is not None:
            asked = {roles} if isinstance(roles, str) else set(roles)
            unknown = asked - wanted
            if unknown:
                raise ValueError(f"not staff roles: {', '.join(sorted(unknown))}")
            wanted = asked
        with db.fresh_session(self._app) as session:
            users = session.scalars(
                select(User)
                .where(
                    User.tenant_id == self._tenant.id,
                    User.active.is_(True),
                    User.role.in_(sorted(wanted)),
                )
                .order_by(User.id)
            ).all()
            return [context.user_info(user) for user in users]

    def consents(
        self, *, given_from: datetime, given_before: datetime, consent_id: str | None = None
    ) -> list[GivenConsent]:
        """The proof of every consent given with the tenant's bookings in ``[given_from,
        given_before)`` (only those with id ``consent_id`` if given), earliest first."""
        for bound in (given_from, given_before):
            if not isinstance(bound, datetime) or bound.tzinfo is None:
                raise ValueError("given_from and given_before are aware datetimes")
        conditions = [
            Booking.tenant_id == self._tenant.id,
            BookingConsent.given_at >= given_from,
            BookingConsent.given_at < given_before,
        ]
        if consent_id is not None:
            conditions.append(BookingConsent.consent_id == consent_id)
        with db.fresh_session(self._app) as session:
            rows = session.execute(
                select(BookingConsent, Booking.reference, Booking.client_name, Booking.client_email)
                .join(Booking, Booking.id == BookingConsent.booking_id)
                .where(*conditions)
                .order_by(BookingConsent.given_at, BookingConsent.id)
            ).all()
        return [
            GivenConsent(
                booking_reference=reference,
                client_name=client_name,
                client_email=client_email,
                id=consent.consent_id,
                plugin=consent.plugin_name,
                version=consent.version,
                text_sha256=consent.text_sha256,
                given_at=consent.given_at,
                ip=consent.ip,
                user_agent=consent.user_agent,
            )
            for consent, reference, client_name, client_email in rows
        ]

    def send_mail(
        self,
        *,
        to: str,
        subject: str,
        text: str,
        kind: str,
        booking: str | None = None,
        once: str | None = None,
    ) -> bool:
        """Put an e-mail in the outbox, in the business's name (filtered by ``filter_message``
        like core's own). ``booking`` (a reference of this tenant's) ties it to a booking.
        With ``once``, a key unique within the tenant, a second call with the same key, even
        from another process at the same moment, writes nothing and returns ``False``. On a
        dry run nothing is written and it returns ``True``.

        Raises ``ValueError`` for an address or subject that could not be sent, a ``once`` key
        over 200 characters, or a ``booking`` reference the tenant does not have.
        """
        _check_mail(to, subject, once)
        with db.fresh_session(self._app) as session:
            # A dry run answers as the real run would (False for a key already used), so that
            # it reports only what would really be sent; it writes nothing.
            if once is not None and self._seen(session, once):
                return False
            if self._dry_run:
                return True
            booking_id, about = None, None
            if booking is not None:
                found = self._infos(session, Booking.reference == booking)
                if not found:
                    raise ValueError(f"this business has no booking {booking!r}")
                ((booking_id, about),) = found
            tenant = session.get(Tenant, self._tenant.id)
            enabled = host_of(self._app).enabled_for(session, self._tenant.id)
        message = compose.plugin_message(
            self._app, tenant, to=to, subject=subject, text=text, kind=kind
        )
        # Filtered before the write lock is taken: a slow filter must not hold up bookings.
        # The filters get the tenant's data unbound: not this plugin's archive and audit name.
        unbound = PluginData(self._app, self._tenant, self._now, dry_run=self._dry_run)
        ctx = Context(tenant=self._tenant, now=self._now, booking=about, data=unbound)
        message, held = dispatch.filtered_or_held(self._app, ctx, enabled, message)
        with db.write_transaction(self._app) as session:
            try:
                # The unique (tenant_id, dedupe_key) constraint is the guarantee: a concurrent
                # writer of the same key makes this insert fail, on PostgreSQL once the other
                # commits, on SQLite behind the write lock.
                with session.begin_nested():
                    outbox.enqueue(
                        session,
                        message,
                        self._tenant.id,
                        booking_id,
                        self._now,
                        held=held,
                        dedupe_key=once,
                    )
            except IntegrityError:
                if once is None:
                    raise
                return False
        dispatch.kick(self._app)
        return True

    def archive_and_delete_ended(self, before: datetime, limit: int) -> ArchiveResult:
        """Archive, then delete, up to ``limit`` of the tenant's bookings that ended before
        ``before``, oldest first, with their consents, reschedules, outbox messages and those
        messages' ``.eml`` files; see :meth:`bookwell.hooks.TenantData.archive_and_delete_ended`.

        The archive is read and written (and fsynced) before the write lock is taken; one write
        transaction then checks that it is still exactly what archiving those bookings would
        write, with each of them still there (on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so a
        concurrent call takes others), deletes them and appends the audit entry; the commit
        makes it all true at once. When the check fails (a concurrent call took some, or one
        changed in between), that archive is removed and the step is done again, all of it
        inside one write transaction. A booking with a message being delivered right then waits
        for a later call, so that no ``.eml`` file is written after its row went. Idempotency
        keys are not tied to bookings (and expire within a day): they are left alone.
        """
        if self._plugin is None or self._files is None:
            raise RuntimeError(
                "archive_and_delete_ended works in the contexts Bookwell hands to a plugin"
            )
        _check_archive_request(before, limit, self._now)
        if self._dry_run:
            with db.fresh_session(self._app) as session:
                going = session.execute(self._ended(before, limit)).all()
                left = session.scalar(self._count_ended(before)) - len(going)
            return _result(len(going), going, (None, None), (None, None), left)
        # First without the write lock, which every booking of the instance waits for: choose,
        # read and write the archive (fsyncs are the slow part), then take the lock only to check
        # that the archive is still exactly what would be archived and to delete. When it is not
        # (a concurrent call took some of them, or one changed meanwhile), its files go and the
        # whole step is done again under the lock.
        with db.fresh_session(self._app) as session:
            chosen = session.execute(self._ended(before, limit)).all()
            if not chosen:
                return ArchiveResult(deleted=0, remaining=session.scalar(self._count_ended(before)))
            records, _, delivering = _archive_records(
                session, self._tenant, [booking_id for booking_id, _ in chosen], self._moment()
            )
        records = [record for record in records if record["id"] not in delivering]
        archived = {record["id"] for record in records}
        chosen = [row for row in chosen if row[0] in archived]
        done = None
        if chosen:
            files = self._write_archives(before, chosen, records)
            done = self._delete_if_archived(before, chosen, records, files)
            if done is None:
                _remove_archive(files)
        if done is None:
            done = self._archive_and_delete_locked(before, limit)
        if not done.deleted:
            return done
        return replace(done, remaining=self._remaining_after(before, done.deleted))

    def _remaining_after(self, before: datetime, deleted: int) -> int:
        """How many bookings ended before ``before`` are left once this call deleted
        ``deleted``: counted at this context's first call, then less what it deleted. Counting
        reads every old booking's row (there is no index on their end), which a loop of calls
        over a million of them cannot afford each time; another worker's deletions show in the
        next context's count."""
        known = self._remaining.get(before)
        if known is None:
            with db.fresh_session(self._app) as session:
                known = session.scalar(self._count_ended(before))
        else:
            known = max(0, known - deleted)
        self._remaining[before] = known
        return known

    def _write_archives(
        self, before: datetime, chosen: Sequence[Any], records: list[dict[str, Any]]
    ) -> _ArchiveFiles:
        """Write ``records`` (of the bookings ``chosen``) as JSON lines and CSV, on disk."""
        assert self._files is not None
        header = {
            "type": "archive",
            "format": ARCHIVE_FORMAT,
            "tenant": self._tenant.slug,
            "plugin": self._plugin,
            "created_at": _iso(self._now),
            "ended_before": _iso(before),
            "bookings": len(chosen),
        }
        name = _archive_name(*_ends(chosen))
        archive, checksum = write_archive(self._files, name, [header, *records])
        csv_archive, csv_checksum = write_csv_archive(
            self._files, f"{name.removesuffix('.jsonl')}.csv", records
        )
        return _ArchiveFiles(archive, checksum, csv_archive, csv_checksum)

    def _delete_if_archived(
        self,
        before: datetime,
        chosen: Sequence[Any],
        records: list[dict[str, Any]],
        files: _ArchiveFiles,
    ) -> ArchiveResult | None:
        """Under the write lock: delete the bookings ``chosen`` if they are all still there,
        unchanged (``records`` is what archiving them now would write) and taken by no other
        call; else ``None``, changing nothing."""
        ids = [booking_id for booking_id, _ in chosen]
        with db.write_transaction(self._app) as session:
            # By id alone: with the tenant in the WHERE too, SQLite (which keeps no statistics)
            # walks the tenant's whole (tenant, start) index instead. Checked below instead.
            still = session.execute(
                select(Booking.id, Booking.ends_at, Booking.starts_at, Booking.tenant_id)
                .where(Booking.id.in_(ids))
                .order_by(Booking.starts_at, Booking.id)
                .with_for_update(skip_locked=True, of=Booking)
            ).all()
            kept = [
                (booking_id, ends_at)
                for booking_id, ends_at, starts_at, tenant_id in still
                if tenant_id == self._tenant.id and starts_at < before and ends_at < before
            ]
            if kept != [tuple(row) for row in chosen]:
                return None
            now_records, message_ids, delivering = _archive_records(
                session, self._tenant, ids, self._moment()
            )
            if delivering or now_records != records:
                return None
            return self._delete(session, before, chosen, message_ids, files)

    def _archive_and_delete_locked(self, before: datetime, limit: int) -> ArchiveResult:
        """The whole step in one write transaction: choose, archive, delete."""
        with db.write_transaction(self._app) as session:
            chosen = session.execute(self._ended(before, limit, lock=True)).all()
            if not chosen:
                return ArchiveResult(deleted=0, remaining=session.scalar(self._count_ended(before)))
            records, message_ids, delivering = _archive_records(
                session, self._tenant, [booking_id for booking_id, _ in chosen], self._moment()
            )
            if delivering:  # claimed by a sender since the choice (PostgreSQL): leave them
                chosen = [row for row in chosen if row[0] not in delivering]
                records = [record for record in records if record["id"] not in delivering]
            if not chosen:
                return ArchiveResult(deleted=0, remaining=session.scalar(self._count_ended(before)))
            files = self._write_archives(before, chosen, records)
            return self._delete(session, before, chosen, message_ids, files)

    def _delete(
        self,
        session: Session,
        before: datetime,
        chosen: Sequence[Any],
        message_ids: list[str],
        files: _ArchiveFiles,
    ) -> ArchiveResult:
        """Delete the archived bookings ``chosen`` and record it, in the caller's transaction."""
        ids = [booking_id for booking_id, _ in chosen]
        first_end, last_end = _ends(chosen)
        delete_archived(session, self._tenant.id, ids)
        audit.record(
            session,
            tenant_id=self._tenant.id,
            actor=f"plugin:{self._plugin}",
            ip=None,
            action=ARCHIVED_ACTION,
            subject=f"archive:{self._plugin}/{files.archive.name}"[: audit.MAX_SUBJECT],
            details={
                "count": len(ids),
                "first_end": first_end,
                "last_end": last_end,
                "ended_before": before,
                "archive": files.archive.name,
                "checksum": files.checksum,
                "csv_archive": files.csv_archive.name,
                "csv_checksum": files.csv_checksum,
            },
            now=self._now,
        )
        # Before the commit: should the commit fail, the rows (which hold each message's
        # text) stay and the next call archives them again; after it, a crash would leave
        # files nothing points to any more.
        _remove_mail_files(self._app, message_ids)
        # ``remaining`` is counted by the caller once the lock is let go: counting reads every
        # old booking's row.
        return _result(
            len(ids),
            chosen,
            (files.archive, files.checksum),
            (files.csv_archive, files.csv_checksum),
            0,
        )

    def _ended(self, before: datetime, limit: int, *, lock: bool = False) -> Any:
        """``(id, ends_at)`` of the tenant's first ``limit`` bookings ended before ``before``
        whose mail is not being delivered right now."""
        # Correlated, through the outbox's booking_id index: a probe per candidate, whatever
        # the outbox holds. Found once through the tenant's messages instead, SQLite's planner
        # read every message of the tenant on each call (2 s a call with 76,000 unsent).
        delivering = exists().where(
            OutboxMessage.booking_id == Booking.id,
            OutboxMessage.sent_at.is_(None),
            # A placeholder not composed yet counts as being delivered: its mail is to come.
            or_(
                OutboxMessage.claimed_until > self._moment(),
                OutboxMessage.compose_event.is_not(None),
            ),
        )
        # By start, the (tenant, start) index's order: the scan stops after ``limit`` rows,
        # where ordering by end would sort every old booking on each call.
        query = (
            select(Booking.id, Booking.ends_at)
            .where(*self._ended_before(before), ~delivering)
            .order_by(Booking.starts_at, Booking.id)
            .limit(limit)
        )
        # PostgreSQL: a concurrent call skips the rows this one took rather than waiting to
        # find them gone. SQLite has no FOR UPDATE (SQLAlchemy leaves it out): its write lock,
        # taken before this read, already keeps every other writer out.
        return query.with_for_update(skip_locked=True, of=Booking) if lock else query

    def _count_ended(self, before: datetime) -> Any:
        return select(func.count(Booking.id)).where(*self._ended_before(before))

    def _ended_before(self, before: datetime) -> tuple[Any, ...]:
        # A booking starts before it ends: the start bound lets the (tenant, start) index work.
        return (
            Booking.tenant_id == self._tenant.id,
            Booking.starts_at < before,
            Booking.ends_at < before,
        )

    def _moment(self) -> datetime:
        # Mail leases are taken on the app's clock, whatever instant this context was given.
        return clock.now(self._app)

    def _bookings(self, *conditions: Any) -> list[BookingInfo]:
        with db.fresh_session(self._app) as session:
            return [info for _, info in self._infos(session, *conditions)]

    def _infos(self, session: Session, *conditions: Any) -> list[tuple[int, BookingInfo]]:
        """``(id, info)`` of the tenant's bookings matching ``conditions``, by start time."""
        rows = session.execute(
            select(Booking, Service, Provider)
            .join(Service, Service.id == Booking.service_id)
            .join(Provider, Provider.id == Booking.provider_id)
            .where(Booking.tenant_id == self._tenant.id, *conditions)
            .order_by(Booking.starts_at, Booking.id)
        ).all()
        consents = _consents_of(session, [booking.id for booking, _, _ in rows])
        return [
            (booking.id, context.info_of(booking, service, provider, consents.get(booking.id, ())))
            for booking, service, provider in rows
        ]

    def _seen(self, session: Session, once: str) -> bool:
        found = session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.tenant_id == self._tenant.id, OutboxMessage.dedupe_key == once
            )
        )
        return found is not None


def _consents_of(session: Session, booking_ids: list[int]) -> dict[int, tuple[str, ...]]:
    if not booking_ids:
        return {}
    given: dict[int, list[str]] = {}
    for booking_id, consent_id in session.execute(
        select(BookingConsent.booking_id, BookingConsent.consent_id)
        .where(BookingConsent.booking_id.in_(booking_ids))
        .order_by(BookingConsent.id)
    ):
        given.setdefault(booking_id, []).append(consent_id)
    return {booking_id: tuple(ids) for booking_id, ids in given.items()}


def _check_mail(to: str, subject: str, once: str | None) -> None:
    # A line break in a header would fail every delivery attempt (or inject headers): refuse
    # it here, where the plugin's author sees the error.
    if "\n" in to or "\r" in to or "@" not in parseaddr(to)[1]:
        raise ValueError(f"not one e-mail address: {to!r}")
    if "\n" in subject or "\r" in subject:
        raise ValueError("a subject is one line")
    if once is not None and not 0 < len(once) <= DEDUPE_KEY_LENGTH:
        raise ValueError(f"a once key is 1 to {DEDUPE_KEY_LENGTH} characters")


# --- archiving and deleting ended bookings -------------------------------------------------------


def _check_archive_request(before: datetime, limit: int, now: datetime) -> None:
    if not isinstance(before, datetime) or before.tzinfo is None:
        raise ValueError("before is an aware datetime (with its zone)")
    if before > now:
        raise ValueError("before may not be later than ctx.now: only ended bookings can go")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= ARCHIVE_LIMIT:
        raise ValueError(f"limit is a whole number from 1 to {ARCHIVE_LIMIT}")


def _result(
    count: int,
    chosen: Sequence[Any],
    json_lines: tuple[Path | None, str | None],
    csv_table: tuple[Path | None, str | None],
    remaining: int,
) -> ArchiveResult:
    first_end, last_end = _ends(chosen) if chosen else (None, None)
    return ArchiveResult(
        deleted=count,
        archive=json_lines[0],
        checksum=json_lines[1],
        csv_archive=csv_table[0],
        csv_checksum=csv_table[1],
        first_end=first_end,
        last_end=last_end,
        remaining=remaining,
    )


def _ends(chosen: Sequence[Any]) -> tuple[datetime, datetime]:
    """The first and last end of the bookings ``chosen`` (``(id, ends_at)`` rows)."""
    ends = [row[1] for row in chosen]
    return min(ends), max(ends)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _archive_records(
    session: Session, tenant: TenantInfo, booking_ids: list[int], moment: datetime
) -> tuple[list[dict[str, Any]], list[str], set[int]]:
    """The archive's line for each booking (in ``booking_ids``' order), the Message-IDs of
    their outbox messages, and the bookings whose mail a sender claimed meanwhile. Four
    queries, whatever the number of bookings."""
    rows = session.execute(
        select(Booking, Service.name, Provider.name)
        .join(Service, Service.id == Booking.service_id)
        .join(Provider, Provider.id == Booking.provider_id)
        # By id alone (see _delete_if_archived); the tenant is checked on each row below.
        .where(Booking.id.in_(booking_ids))
        .options(raiseload(Booking.reschedules))  # read below, all at once
    ).all()
    rows = [row for row in rows if row[0].tenant_id == tenant.id]
    consents: dict[int, list[dict[str, Any]]] = {}
    for consent in session.scalars(
        select(BookingConsent)
        .where(BookingConsent.booking_id.in_(booking_ids))
        .order_by(BookingConsent.id)
    ):
        consents.setdefault(consent.booking_id, []).append(
            {
                "id": consent.consent_id,
                "plugin": consent.plugin_name,
                "version": consent.version,
                "text_sha256": consent.text_sha256,
                "given_at": _iso(consent.given_at),
                "ip": consent.ip,
                "user_agent": consent.user_agent,
            }
        )
    moves: dict[int, list[dict[str, Any]]] = {}
    for move, provider_name in session.execute(
        select(BookingReschedule, Provider.name)
        .outerjoin(Provider, Provider.id == BookingReschedule.previous_provider_id)
        .where(BookingReschedule.booking_id.in_(booking_ids))
        .order_by(BookingReschedule.id)
    ):
        moves.setdefault(move.booking_id, []).append(
            {
                "previous_provider": {"id": move.previous_provider_id, "name": provider_name},
                "previous_start": _iso(move.previous_starts_at),
                "previous_end": _iso(move.previous_ends_at),
                "rescheduled_at": _iso(move.rescheduled_at),
            }
        )
    messages: dict[int, list[dict[str, Any]]] = {}
    message_ids: list[str] = []
    delivering: set[int] = set()
    # Locked too (PostgreSQL): a sender claiming one of them now waits for our commit, then
    # finds it gone; one that claimed it just before is seen here, and its booking waits.
    for message in session.scalars(
        select(OutboxMessage)
        .where(_outbox_of(tenant.id), OutboxMessage.booking_id.in_(booking_ids))
        .order_by(OutboxMessage.id)
        .with_for_update()
    ):
        if message.compose_event is not None or (
            message.sent_at is None
            and message.claimed_until is not None
            and message.claimed_until > moment
        ):
            delivering.add(message.booking_id)
        message_ids.append(message.message_id)
        messages.setdefault(message.booking_id, []).append(
            {
                "message_id": message.message_id,
                "kind": message.kind,
                "to": message.to_address,
                "subject": message.subject,
                "created_at": _iso(message.created_at),
                "sent_at": _iso(message.sent_at),
                "attempts": message.attempts,
                "last_error": message.last_error,
            }
        )
    if delivering:
        message_ids = [
            message["message_id"]
            for booking_id, listed in messages.items()
            if booking_id not in delivering
            for message in listed
        ]
    by_id = {booking.id: (booking, service, provider) for booking, service, provider in rows}
    records = []
    for booking_id in booking_ids:
        if booking_id not in by_id:
            # Deleted since it was chosen, by a concurrent call (PostgreSQL reads each
            # statement afresh): nothing to archive; the caller drops it from its choice.
            continue
        booking, service_name, provider_name = by_id[booking_id]
        records.append(
            {
                "type": "booking",
                "id": booking.id,
                "reference": booking.reference,
                "status": str(booking.status),
                "service": {"id": booking.service_id, "name": service_name},
                "provider": {"id": booking.provider_id, "name": provider_name},
                "start": _iso(booking.starts_at),
                "end": _iso(booking.ends_at),
                "client": {
                    "name": booking.client_name,
                    "email": booking.client_email,
                    "phone": booking.client_phone,
                    "notes": booking.client_notes,
                },
                "price_cents": booking.price_cents,
                "prepaid_cents": booking.prepaid_cents,
                "discount_cents": booking.discount_cents or 0,
                "discount_label": booking.discount_label,
                "currency": tenant.currency,
                "created_at": _iso(booking.created_at),
                "updated_at": _iso(booking.updated_at),
                "cancelled_at": _iso(booking.cancelled_at),
                "cancellation_reason": booking.cancellation_reason,
                "reschedule_count": booking.reschedule_count or 0,
                "consents": consents.get(booking_id, []),
                "reschedules": moves.get(booking_id, []),
                "messages": messages.get(booking_id, []),
            }
        )
    return records, message_ids, delivering


def _archive_name(first_end: datetime, last_end: datetime) -> str:
    # Random, so that the archive of a step that failed is never overwritten by the next one's.
    first, last = first_end.astimezone(UTC), last_end.astimezone(UTC)
    return f"bookings-{first:%Y%m%d}-{last:%Y%m%d}-{secrets.token_hex(6)}.jsonl"


def write_archive(folder: Path, name: str, lines: list[dict[str, Any]]) -> tuple[Path, str]:
    """Write ``lines`` as JSON lines to ``folder/name`` (and its SHA-256 beside it, as
    ``sha256sum -c`` reads it), on disk before this returns; returns the file and its SHA-256."""
    body = b"".join(
        json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        for line in lines
    )
    return _write_with_checksum(folder, name, body)


# The CSV's columns: one row per booking, what the JSON line holds, flattened. The lists a
# booking carries (consents, reschedules, messages) are each one cell of JSON.
CSV_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("reference", lambda r: r["reference"]),
    ("status", lambda r: r["status"]),
    ("service_id", lambda r: r["service"]["id"]),
    ("service", lambda r: r["service"]["name"]),
    ("provider_id", lambda r: r["provider"]["id"]),
    ("provider", lambda r: r["provider"]["name"]),
    ("start", lambda r: r["start"]),
    ("end", lambda r: r["end"]),
    ("client_name", lambda r: r["client"]["name"]),
    ("client_email", lambda r: r["client"]["email"]),
    ("client_phone", lambda r: r["client"]["phone"]),
    ("client_notes", lambda r: r["client"]["notes"]),
    ("price_cents", lambda r: r["price_cents"]),
    ("prepaid_cents", lambda r: r["prepaid_cents"]),
    ("discount_cents", lambda r: r["discount_cents"]),
    ("discount_label", lambda r: r["discount_label"]),
    ("currency", lambda r: r["currency"]),
    ("created_at", lambda r: r["created_at"]),
    ("updated_at", lambda r: r["updated_at"]),
    ("cancelled_at", lambda r: r["cancelled_at"]),
    ("cancellation_reason", lambda r: r["cancellation_reason"]),
    ("reschedule_count", lambda r: r["reschedule_count"]),
    ("consents", lambda r: _json_cell(r["consents"])),
    ("reschedules", lambda r: _json_cell(r["reschedules"])),
    ("messages", lambda r: _json_cell(r["messages"])),
)
# A spreadsheet runs a cell starting with one of these as a formula; clients type names and notes.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _json_cell(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value  # shown as text; the JSON lines keep the exact value
    return value


def write_csv_archive(folder: Path, name: str, records: list[dict[str, Any]]) -> tuple[Path, str]:
    """Write the bookings ``records`` (the archive's booking lines) as CSV to ``folder/name``,
    with its SHA-256 beside it, like :func:`write_archive`; returns the file and its SHA-256."""
    text = io.StringIO()
    table = csv.writer(text, lineterminator="\r\n")
    table.writerow([column for column, _ in CSV_COLUMNS])
    for record in records:
        table.writerow([_csv_cell(cell(record)) for _, cell in CSV_COLUMNS])
    return _write_with_checksum(folder, name, text.getvalue().encode())


def _write_with_checksum(folder: Path, name: str, body: bytes) -> tuple[Path, str]:
    checksum = hashlib.sha256(body).hexdigest()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = folder / name
    write_durably(target, body)
    write_durably(folder / f"{name}.sha256", f"{checksum}  {name}\n".encode())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the new names, not only the contents, survive a crash
    finally:
        os.close(descriptor)
    return target, checksum


def _outbox_of(tenant_id: int) -> Any:
    """The tenant's messages, as a condition that leaves the choice of index to the bookings'
    ids beside it: ``tenant_id + 0`` is no column an index holds. On the plain column SQLite's
    planner took the tenant's index and read every message of the tenant for 200 bookings'."""
    return OutboxMessage.tenant_id + 0 == tenant_id


def delete_archived(session: Session, tenant_id: int, booking_ids: list[int]) -> None:
    """Delete the bookings ``booking_ids`` of ``tenant_id`` and every row that belongs to them,
    in the caller's transaction. The audit trail is never touched."""
    for statement in (
        delete(BookingConsent).where(BookingConsent.booking_id.in_(booking_ids)),
        delete(BookingReschedule).where(BookingReschedule.booking_id.in_(booking_ids)),
        delete(OutboxMessage).where(
            _outbox_of(tenant_id), OutboxMessage.booking_id.in_(booking_ids)
        ),
    ):
        session.execute(statement.execution_options(synchronize_session=False))
    # By id alone, for the index (see _delete_if_archived): the caller chose them within
    # the tenant, in this transaction.
    deleted = session.execute(
        delete(Booking)
        .where(Booking.id.in_(booking_ids))
        .execution_options(synchronize_session=False)
    )
    if deleted.rowcount != len(booking_ids):  # they were locked: anything else is a bug
        raise RuntimeError(f"deleted {deleted.rowcount} of {len(booking_ids)} archived bookings")


def _remove_archive(files: _ArchiveFiles) -> None:
    """Remove an archive that was not used (its bookings went otherwise), with its checksums."""
    for path in (files.archive, files.csv_archive):
        path.unlink(missing_ok=True)
        path.with_name(f"{path.name}.sha256").unlink(missing_ok=True)


def _remove_mail_files(app: Flask, message_ids: list[str]) -> None:
    folder = transport.outbox_folder(app)
    for message_id in message_ids:
        (folder / transport.file_name(message_id)).unlink(missing_ok=True)
