"""The booking domain: tenants, their catalogue, providers' time, and bookings.

Every row below a tenant carries ``tenant_id`` so that each query can be walled off by it.
Instants are UTC (:class:`UTCDateTime`); wall-clock rules (working hours) are local to the
tenant's zone; money is integer cents.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, deferred, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from bookwell.core.storage.db import Base, UTCDateTime


class BookingStatus(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no-show"


# Statuses whose time stays taken; only a cancellation frees a slot.
BLOCKING_STATUSES = (BookingStatus.CONFIRMED, BookingStatus.COMPLETED, BookingStatus.NO_SHOW)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Bumped on every plugin change, so every process drops its cached plugin state at once.
    plugins_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    theme: Mapped[str] = mapped_column(String(50), default="default", server_default="default")
    brand_colour: Mapped[str | None] = mapped_column(String(7))
    # JSON list of origins (https://salon.example) allowed to frame the booking pages.
    frame_origins: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    client_accounts: Mapped[bool] = mapped_column(default=False, server_default="0")
    # ISO 4217; prices are integers in its minor unit (see core/foundation/money.py).
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default="EUR")
    # A language tag (en, fr, de-CH): the language of its pages and mail.
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    # The longest any of its services has ever blocked (duration plus buffers): no booking
    # blocks longer, so availability reads only bookings that start this close to its window.
    # Only ever raised (by _raise_longest_block, below, on every flush), never lowered.
    longest_block_minutes: Mapped[int] = mapped_column(Integer, server_default="0")
    # The brand (core/booking/branding.py): a few lines for clients, and a logo kept here because
    # app processes share only the database. The logo is pixels re-encoded on upload; deferred,
    # since every request reads its tenant's row and almost none needs the picture.
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    logo: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    logo_type: Mapped[str | None] = mapped_column(String(20))
    logo_width: Mapped[int | None] = mapped_column(Integer)
    logo_height: Mapped[int | None] = mapped_column(Integer)
    # Changes with the picture: the logo's URL carries it, so browsers keep it until it changes.
    logo_version: Mapped[str | None] = mapped_column(String(16))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("buffer_before_minutes >= 0 AND buffer_after_minutes >= 0", name="buffers"),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        CheckConstraint("slot_step_minutes > 0", name="step_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=0)
    horizon_days: Mapped[int] = mapped_column(Integer, default=90)
    slot_step_minutes: Mapped[int] = mapped_column(Integer, default=15)
    active: Mapped[bool] = mapped_column(default=True)


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(default=True)

    services: Mapped[list[Service]] = relationship(secondary="provider_services")
    working_hours: Mapped[list[WorkingHours]] = relationship(
        cascade="all, delete-orphan", order_by="WorkingHours.weekday, WorkingHours.starts"
    )
    time_off: Mapped[list[TimeOff]] = relationship(cascade="all, delete-orphan")


class ProviderService(Base):
    __tablename__ = "provider_services"

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )


class WorkingHours(Base):
    """A weekly opening of one provider, in the tenant's wall-clock time (0 = Monday)."""

    __tablename__ = "working_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("starts < ends", name="starts_before_ends"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)


class TimeOff(Base):
    """A dated absence of one provider: holidays, training, sick days."""

    __tablename__ = "time_off"
    __table_args__ = (CheckConstraint("starts_at < ends_at", name="starts_before_ends"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(200), default="")


class Booking(Base):
    """One appointment. ``blocked_from``/``blocked_until`` add the service's buffers as they were
    when it was booked, and are what the no-double-booking constraint compares."""

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="starts_before_ends"),
        CheckConstraint("blocked_from <= starts_at AND blocked_until >= ends_at", name="blocks"),
        Index("ix_bookings_provider_blocked", "provider_id", "blocked_from", "blocked_until"),
        Index("ix_bookings_tenant_start", "tenant_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    manage_token_hash: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_from: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[datetime] = mapped_column(UTCDateTime())
    client_name: Mapped[str] = mapped_column(String(200))
    client_email: Mapped[str] = mapped_column(String(254))
    # Text: when a plugin asks for client fields to be encrypted at rest, it holds ciphertext.
    client_phone: Mapped[str | None] = mapped_column(Text)
    client_notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.CONFIRMED)
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    prepaid_cents: Mapped[int] = mapped_column(Integer, default=0)
    # Given at confirmation by a plugin's ``booking_discount``; the client pays price - discount.
    discount_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    discount_label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancellation_reason: Mapped[str | None] = mapped_column(String(500))
    reschedule_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What a cancelled prepaid booking is due back (set by a plugin's refund rule); None: no rule.
    refund_due_cents: Mapped[int | None] = mapped_column(Integer)

    service: Mapped[Service] = relationship()
    provider: Mapped[Provider] = relationship()
    reschedules: Mapped[list[BookingReschedule]] = relationship(
        order_by="BookingReschedule.id", cascade="all, delete-orphan", lazy="selectin"
    )


class BookingReschedule(Base):
    """What a reschedule replaced: the booking keeps its reference, this keeps the old time."""

    __tablename__ = "booking_reschedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    previous_provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    previous_starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    previous_ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rescheduled_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    """The first answer given to a request carrying an ``Idempotency-Key``, kept a day."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class TenantPlugin(Base):
    """A plugin a tenant switched on, with its validated settings (JSON)."""

    __tablename__ = "tenant_plugins"
    __table_args__ = (UniqueConstraint("tenant_id", "plugin_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    plugin_name: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(default=True)
    settings: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BookingConsent(Base):
    """Proof of a consent given with a booking: which text, in which version, hashed."""

    __tablename__ = "booking_consents"
    __table_args__ = (UniqueConstraint("booking_id", "consent_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed: deleting a booking (history cleanup) looks its consents up by it.
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    consent_id: Mapped[str] = mapped_column(String(100))
    plugin_name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(50))
    text_sha256: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Who gave it, from where: part of the proof (None for consents stored before 0010).
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class AuditEntry(Base):
    """One link of a tamper-evident audit chain: who did what, when (UTC), from where, on what.

    Each tenant has its own chain (``chain`` = ``"tenant:<id>"``; platform-level events go to
    ``"platform"``), numbered 1, 2, 3, ... by ``sequence``. ``entry_hash`` is the SHA-256 of the
    entry's content including ``previous_hash``, the hash of the entry before it (64 zeros for
    the first), so an edited, removed or inserted entry breaks the chain; see ``core/audit.py``.
    No cascade from tenants: the trail outlives what it describes.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("chain", "sequence"),
        CheckConstraint("sequence > 0", name="sequence_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chain: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str | None] = mapped_column(String(45))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text, default="{}")
    previous_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditPerson(Base):
    """Who an audit entry's pseudonym stands for: the personal data the trail refers to, kept
    outside the hashed entries so that an erasure (``erased_at``, e-mail and name emptied)
    leaves the chain verifiable."""

    __tablename__ = "audit_people"
    __table_args__ = (
        UniqueConstraint("pseudonym", name="uq_audit_people_pseudonym"),
        Index("ix_audit_people_tenant_email", "tenant_id", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditPersonal(Base):
    """An entry's personal data outside its hash: the IP it came from and the person it names."""

    __tablename__ = "audit_personal"

    entry_id: Mapped[int] = mapped_column(ForeignKey("audit_entries.id"), primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("audit_people.id"), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))


class Role(StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    STAFF = "staff"
    RECEPTIONIST = "receptionist"
    CLIENT = "client"
    SUPPORT = "support"


STAFF_ROLES = (Role.OWNER, Role.MANAGER, Role.STAFF, Role.RECEPTIONIST)
PLATFORM_REALM = "platform"


class User(Base):
    """Anyone who logs in. ``realm`` is ``tenant:<id>`` for a tenant's staff and clients and
    ``platform`` for support; the e-mail (case-folded) is unique within a realm."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("realm", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    realm: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The provider a staff account works as: with ``bookings.read_own`` it sees that
    # provider's bookings only.
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id", ondelete="SET NULL", name="fk_users_provider_id_providers")
    )

    @property
    def audit_label(self) -> str:
        return f"user:{self.id}"


class AccessGrant(Base):
    """A permission given for a while: to one account (``user_id``) or to a role (``role``,
    e.g. platform support), on everything or on one ``subject`` (``client:<e-mail>``).
    Plugins record them through ``ctx.grants``; core's permission checks consult the active
    ones (not revoked, not expired)."""

    __tablename__ = "access_grants"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (role IS NULL)", name="ck_access_grants_one_grantee"),
        Index("ix_access_grants_tenant_expires", "tenant_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str | None] = mapped_column(String(20))
    permission: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str | None] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    plugin: Mapped[str] = mapped_column(String(100))
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AuthSession(Base):
    """A server-side session: a browser's (cookie) or an API client's (bearer token). Only the
    SHA-256 of its secret is stored."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "browser" or "api"
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    idle_minutes: Mapped[int] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # None: the user's full access. Otherwise the one scope a plugin's refusal granted (e.g.
    # "enroll_totp"): the session opens only routes marked with it.
    scope: Mapped[str | None] = mapped_column(String(40))


class ApiKey(Base):
    """A long-lived key for an integration, made with the CLI; only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UserToken(Base):
    """A single-use link for a user: e-mail verification or password reset. Only its SHA-256
    is stored; ``used_at`` makes it single-use, ``expires_at`` short-lived."""

    __tablename__ = "user_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # "verify_email" or "reset_password"
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A sign-up's chosen password, given to the account only when this (verification) link is
    # used by someone who types it: a link never activates a password its clicker did not choose.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # The name that sign-up gave: the account takes it with the password, not the first
    # sign-up's (which may be an impostor's).
    name: Mapped[str | None] = mapped_column(String(200))


class OutboxMessage(Base):
    """An e-mail to send, written in the same transaction as what it announces; a job sends it
    exactly once (``sent_at``), retrying with backoff (``attempts``, ``next_attempt_at``)."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_due", "sent_at", "next_attempt_at"),
        # Partial: every delivery round looks for placeholders left over, and without it that
        # look read the whole outbox, sent mail included. Only a few rows are ever in it.
        Index(
            "ix_outbox_placeholders",
            "created_at",
            sqlite_where=text("compose_event IS NOT NULL"),
            postgresql_where=text("compose_event IS NOT NULL"),
        ),
        UniqueConstraint("tenant_id", "dedupe_key", name="uq_outbox_messages_tenant_dedupe"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    # Indexed: without it, every deleted booking scans the whole outbox for its foreign key.
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))  # booking.confirmed, booking.cancelled, ...
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    ics: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A message sent "once only" (a reminder) carries a key; a second enqueue of it is a no-op.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    # A placeholder written in a booking's transaction, composed into the real messages after
    # the commit (see bookwell.core.mail): the event, and its sealed facts (the manage token...).
    # NULL once composed; a placeholder is never sent as it is.
    compose_event: Mapped[str | None] = mapped_column(String(40))
    compose_facts: Mapped[str | None] = mapped_column(Text)


class JobLease(Base):
    """Who runs a periodic job (per tenant and task) until when, when there is no Redis: the
    row is taken with a conditional write, so two processes never run the same work at once."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PluginFailure(Base):
    """A plugin's hook that raised, ran past its time or answered nonsense; the marketplace
    counts the recent ones on the plugin's card."""

    __tablename__ = "plugin_failures"
    __table_args__ = (
        Index("ix_plugin_failures_recent", "tenant_id", "plugin_name", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    plugin_name: Mapped[str] = mapped_column(String(100))
    hook: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PluginStoreEntry(Base):
    """One key of a plugin's ``ctx.store`` for one tenant: a JSON value, perhaps expiring."""

    __tablename__ = "plugin_store"
    __table_args__ = (UniqueConstraint("tenant_id", "plugin", "key", name="uq_plugin_store_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    plugin: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PlatformPluginStoreEntry(Base):
    """One key of a plugin's ``ctx.store`` for the whole instance: the store of platform
    support's logins, which belong to no business."""

    __tablename__ = "platform_plugin_store"
    __table_args__ = (UniqueConstraint("plugin", "key", name="uq_platform_plugin_store_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plugin: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantKey(Base):
    """A tenant's own data key, encrypted ("wrapped") by the instance's key ring; ``ctx.secrets``
    encrypts with it. Re-wrapped, never changed, when the instance key rotates."""

    __tablename__ = "tenant_keys"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    wrapped_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rewrapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RateLimitCounter(Base):
    """A fixed-window hit counter of a rate limit (key: limit, scope and caller), kept in the
    database when there is no Redis so that every worker of every process counts together.
    ``window_ends_at`` is in epoch seconds, as the limits library counts."""

    __tablename__ = "rate_limit_counters"
    __table_args__ = (Index("ix_rate_limit_counters_window_ends_at", "window_ends_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    window_ends_at: Mapped[float] = mapped_column(Float)


# --- the longest block, kept true on every flush --------------------------------------------------


def block_minutes(row: Service | Booking) -> int:
    """How long ``row`` blocks a provider, in whole minutes rounded up: a service's duration and
    buffers, or a booking's blocked range."""
    if isinstance(row, Service):
        return sum(
            getattr(row, name) or 0
            for name in ("duration_minutes", "buffer_before_minutes", "buffer_after_minutes")
        )
    if row.blocked_from is None or row.blocked_until is None:
        return 0
    return math.ceil((row.blocked_until - row.blocked_from).total_seconds() / 60)


@event.listens_for(Session, "after_flush")
def _raise_longest_block(session: Session, _context: object) -> None:
    """Raise each tenant's ``longest_block_minutes`` to what its services and bookings written
    in this flush block, in the flush's own transaction, whatever wrote them (the catalogue, a
    command, a test or bench through the ORM): availability's lower bound on ``blocked_from``
    is only as safe as this. Never lowers it: a booking made before its service got shorter
    still blocks its old length. Costs no statement when the tenant's row in the session
    already holds enough, as on the booking path, which loads the tenant first."""
    wanted: dict[int, int] = {}
    for row in itertools.chain(session.new, session.dirty):
        if isinstance(row, Service | Booking) and row.tenant_id is not None:
            minutes = block_minutes(row)
            if minutes > wanted.get(row.tenant_id, 0):
                wanted[row.tenant_id] = minutes
    for tenant_id, minutes in wanted.items():
        tenant = session.identity_map.get(identity_key(Tenant, tenant_id))
        known = None if tenant is None else tenant.__dict__.get("longest_block_minutes")
        if known is not None and known >= minutes:
            continue
        # A conditional UPDATE, not the ORM's absolute one: two writers raising it at once
        # (PostgreSQL) each keep the larger value, and neither can lower the other's.
        session.connection().execute(
            update(Tenant.__table__)
            .where(Tenant.__table__.c.id == tenant_id)
            .where(Tenant.__table__.c.longest_block_minutes < minutes)
            .values(longest_block_minutes=minutes)
        )
        if known is not None:
            set_committed_value(tenant, "longest_block_minutes", minutes)
