"""What a plugin may read and write beyond its hook's subject: :class:`~bookwell.hooks.TenantData`.

Each hook's context carries one :class:`PluginData`, bound to the context's tenant: every query
below filters by that tenant's id, so a plugin can never reach another business's rows. Nothing
is read until a method is called, so the contexts of hooks that never use it cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

# Module imports both ways: context builds PluginData, PluginData builds BookingInfo.
from bookwell.core import context
from bookwell.core.mail import compose, dispatch, outbox
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    Booking,
    BookingConsent,
    OutboxMessage,
    Provider,
    Service,
    Tenant,
)
from bookwell.hooks import BookingInfo, Context, TenantInfo

DEDUPE_KEY_LENGTH = 200  # outbox_messages.dedupe_key


class PluginData:
    """The tenant's bookings and outbox, as the plugins of one hook call may use them."""

    def __init__(self, app: Flask, tenant: TenantInfo, now: datetime, *, dry_run: bool) -> None:
        self._app = app
        self._tenant = tenant
        self._now = now
        self._dry_run = dry_run

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
        ctx = Context(tenant=self._tenant, now=self._now, booking=about, data=self)
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
