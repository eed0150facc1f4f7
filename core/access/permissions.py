"""Who may do what: one table for the pages and the API alike.

A permission names an area and an action; a role holds a set of them. Platform support holds
read access only, and every use of it also passes ``before_data_access`` and the audit trail.

Beyond its role, an account may hold a permission for a while through a grant a plugin recorded
(``ctx.grants``, :mod:`bookwell.core.context.grants`): to the account or to its role, in one
tenant, on everything or on one subject (``client:<e-mail>``). :func:`may` is the check that
consults them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from bookwell.core.context import grants
from bookwell.core.storage.models import Role, User

PERMISSIONS: dict[str, frozenset[Role]] = {
    # Every booking of the business; platform support's is read-only and always audited.
    "bookings.read": frozenset({Role.OWNER, Role.MANAGER, Role.RECEPTIONIST, Role.SUPPORT}),
    # The bookings of the provider the account works as (``users.provider_id``).
    "bookings.read_own": frozenset({Role.OWNER, Role.MANAGER, Role.STAFF, Role.RECEPTIONIST}),
    # On the bookings one may read: booking for a client, cancelling, moving, outcomes.
    "bookings.manage": frozenset({Role.OWNER, Role.MANAGER, Role.STAFF, Role.RECEPTIONIST}),
    "catalogue.manage": frozenset({Role.OWNER, Role.MANAGER}),
    "staff.manage": frozenset({Role.OWNER, Role.MANAGER}),
    "business.manage": frozenset({Role.OWNER}),
    "plugins.read": frozenset({Role.OWNER, Role.MANAGER, Role.STAFF, Role.RECEPTIONIST}),
    "plugins.manage": frozenset({Role.OWNER}),
    # Downloads of the business's data in bulk (CSV/JSON exports, archives).
    "data.export": frozenset({Role.OWNER, Role.MANAGER}),
    "audit.read": frozenset({Role.OWNER, Role.MANAGER}),
}


def allowed(role: str, permission: str) -> bool:
    """Whether ``role`` holds ``permission``; an unknown permission is nobody's."""
    return role in PERMISSIONS.get(permission, frozenset())


# Reading bookings at all: every booking, or one's own provider's.
READ_BOOKINGS = ("bookings.read", "bookings.read_own")
# What a check is about: a subject, or how to find it once the caller is known to belong here.
Subject = str | Callable[[], str | None] | None


def may(
    session: Session,
    user: User,
    tenant_id: int,
    permission: str | tuple[str, ...],
    *,
    now: datetime,
    subject: Subject = None,
) -> bool:
    """Whether ``user`` may use ``permission`` (or one of several) in tenant ``tenant_id``: by
    their role, or by an active grant of it there to them or to their role whose subject is
    everything or ``subject`` (what is being accessed, say ``client:<e-mail>``; a callable is
    asked only when a grant on a subject could decide). The caller has already made sure the
    account belongs to that tenant (or is platform support)."""
    wanted = (permission,) if isinstance(permission, str) else permission
    if any(allowed(user.role, name) for name in wanted):
        return True
    subjects: list[str | None] = []
    for name in wanted:
        subjects += _granted_subjects(session, user, tenant_id, name, now)
    if None in subjects:
        return True
    if not subjects or subject is None:
        return False
    about = subject() if callable(subject) else subject
    return about is not None and about in subjects


def _granted_subjects(
    session: Session, user: User, tenant_id: int, permission: str, now: datetime
) -> list[str | None]:
    if user.role not in grants.GRANTEE_ROLES or permission not in PERMISSIONS:
        return []
    if user.tenant_id is not None and user.tenant_id != tenant_id:
        return []  # a grant of one business never opens another's
    return grants.active_subjects(
        session,
        tenant_id=tenant_id,
        permission=permission,
        user_id=user.id,
        role=str(user.role),
        now=now,
    )


@dataclass(frozen=True)
class BookingReach:
    """Which of a business's bookings an account may read: all of them (``bookings.read``),
    its provider's (``bookings.read_own`` and ``users.provider_id``), and those of the clients a
    grant of ``bookings.read`` on ``client:<e-mail>`` opens."""

    everything: bool = False
    provider_id: int | None = None
    clients: frozenset[str] = frozenset()
    # Whether the role itself reads every booking: a grant only ever opens bookings to read.
    by_role: bool = False

    def reads(self, provider_id: int, client_email: str) -> bool:
        return (
            self.everything
            or (self.provider_id is not None and provider_id == self.provider_id)
            or grants.client_subject(client_email) in self.clients
        )

    def manages(self, provider_id: int) -> bool:
        """Whether ``bookings.manage`` reaches a booking of ``provider_id``: a role that reads
        every booking, or the account's own provider. A grant (emergency access, support access)
        opens a record to read, never to cancel or move."""
        return self.by_role or (self.provider_id is not None and provider_id == self.provider_id)

    @property
    def nothing(self) -> bool:
        return not (self.everything or self.provider_id is not None or self.clients)


def booking_reach(session: Session, user: User, tenant_id: int, now: datetime) -> BookingReach:
    """What :class:`BookingReach` ``user`` has in tenant ``tenant_id`` now."""
    granted = _granted_subjects(session, user, tenant_id, "bookings.read", now)
    if allowed(user.role, "bookings.read"):
        return BookingReach(everything=True, by_role=True)
    if None in granted:
        return BookingReach(everything=True, provider_id=user.provider_id)
    own = None
    if user.provider_id is not None and may(session, user, tenant_id, "bookings.read_own", now=now):
        own = user.provider_id
    return BookingReach(
        provider_id=own, clients=frozenset(item for item in granted if item is not None)
    )


def init_app(app: Flask) -> None:
    """Hand the table's names down to ``ctx.grants``, which may grant only those."""
    grants.register_permissions(app, PERMISSIONS)
