"""``ctx.grants``: time-limited permissions a plugin records in one tenant
(``bookwell.hooks.Grants``), which core's permission checks consult.

A grant gives one permission of core's table, for 1 minute to 72 hours, to one staff account of
the tenant or to a role (platform support's included), on everything or on one subject
(``client:<e-mail>``, case-folded). It is active while not revoked and the context's ``now``
is before its expiry: expiry is judged against ``ctx.now`` (the app's clock), never the wall
clock, as ``ctx.store`` does. Each ``give`` and ``revoke`` is a transaction of its own carrying
its audit entry, so the trail never misses a grant and a grant never outlives a failed entry.

The names of core's permissions live in :mod:`bookwell.core.access.permissions`, a layer above
this one; the app hands them down when it starts (:func:`register_permissions`). An app that
has not leaves the set empty, and every ``give`` is refused: a grant is never recorded for a
permission core would not recognise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from bookwell.core import audit
from bookwell.core.storage import db
from bookwell.core.storage.models import STAFF_ROLES, AccessGrant, Role, User
from bookwell.hooks import Context, Grant

log = logging.getLogger("bookwell.plugins")

EXTENSION = "bookwell.permission_names"
MAX_HOURS = 72
MAX_REASON = 2000
MAX_SUBJECT = 300  # access_grants.subject
MAX_PERMISSION = 50  # access_grants.permission
HISTORY_LIMIT = 1000
# Who may hold a grant: the business's staff roles and platform support; never a client.
GRANTEE_ROLES = frozenset({*(str(role) for role in STAFF_ROLES), str(Role.SUPPORT)})


def register_permissions(app: Flask, names: Collection[str]) -> None:
    """Tell ``ctx.grants`` which permissions exist (core's table)."""
    app.extensions[EXTENSION] = frozenset(names)


def client_subject(email: str) -> str:
    """The subject of one client's record: a grant on it opens that client's bookings only."""
    return "client:" + email.strip().casefold()


class TenantGrants:
    """``ctx.grants`` of one plugin in one tenant, judging activity at ``ctx.now``.

    On a dry run nothing is written: ``give`` checks its arguments and answers the grant it would
    record (``id`` 0), ``revoke`` whether it would end one."""

    def __init__(self, app: Flask, ctx: Context, plugin: str) -> None:
        if ctx.tenant is None:
            raise ValueError("ctx.grants belongs to a tenant's context")
        self._app, self._ctx, self._plugin = app, ctx, plugin
        self._tenant_id = ctx.tenant.id

    def give(
        self,
        *,
        permission: str,
        hours: float,
        reason: str,
        user_id: int | None = None,
        role: str | None = None,
        subject: str | None = None,
        granted_by: int | None = None,
    ) -> Grant:
        permission = self._permission(permission)
        span = _hours(hours)
        reason = _reason(reason)
        subject = _subject(subject)
        if (user_id is None) == (role is None):
            raise ValueError("a grant goes to exactly one of user_id or role")
        if role is not None and role not in GRANTEE_ROLES:
            raise ValueError(f"a grant's role is one of {sorted(GRANTEE_ROLES)}, not {role!r}")
        now = self._ctx.now
        row = AccessGrant(
            tenant_id=self._tenant_id,
            user_id=user_id,
            role=role,
            permission=permission,
            subject=subject,
            reason=reason,
            plugin=self._plugin,
            granted_by=granted_by,
            created_at=now,
            expires_at=now + span,
        )
        if self._ctx.dry_run:
            with db.fresh_session(self._app) as session:
                self._check_accounts(session, user_id, granted_by)
            log.info("dry run: would grant %s to %s", permission, _grantee(row))
            row.id = 0
            return _grant_of(row)
        with db.write_transaction(self._app) as session:
            self._check_accounts(session, user_id, granted_by)
            session.add(row)
            session.flush()
            self._audit(session, "access.granted", row)
            return _grant_of(row)

    def revoke(self, grant_id: int, *, revoked_by: int | None = None) -> bool:
        if not isinstance(grant_id, int) or isinstance(grant_id, bool):
            return False
        now = self._ctx.now
        if self._ctx.dry_run:
            with db.fresh_session(self._app) as session:
                return self._live(session, grant_id, lock=False) is not None
        with db.write_transaction(self._app) as session:
            if revoked_by is not None:
                self._check_accounts(session, None, revoked_by)
            row = self._live(session, grant_id, lock=True)
            if row is None:
                return False
            row.revoked_at, row.revoked_by = now, revoked_by
            session.flush()
            self._audit(session, "access.revoked", row)
            return True

    def active(self, *, user_id: int | None = None, role: str | None = None) -> list[Grant]:
        query = self._tenant_rows().where(
            AccessGrant.revoked_at.is_(None), AccessGrant.expires_at > self._ctx.now
        )
        if user_id is not None:
            query = query.where(AccessGrant.user_id == user_id)
        if role is not None:
            query = query.where(AccessGrant.role == role)
        with db.fresh_session(self._app) as session:
            return [_grant_of(row) for row in session.scalars(query)]

    def history(self, *, limit: int = 100) -> list[Grant]:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit is a whole number from 1, not {limit!r}")
        query = self._tenant_rows().limit(min(limit, HISTORY_LIMIT))
        with db.fresh_session(self._app) as session:
            return [_grant_of(row) for row in session.scalars(query)]

    # --- inside -----------------------------------------------------------------------------

    def _permission(self, permission: Any) -> str:
        known = self._app.extensions.get(EXTENSION, frozenset())
        if not isinstance(permission, str) or permission not in known:
            raise ValueError(f"{permission!r} is not one of core's permissions")
        return permission

    def _tenant_rows(self) -> Select[tuple[AccessGrant]]:
        return (
            select(AccessGrant)
            .where(AccessGrant.tenant_id == self._tenant_id)
            .order_by(AccessGrant.created_at.desc(), AccessGrant.id.desc())
        )

    def _live(self, session: Session, grant_id: int, *, lock: bool) -> AccessGrant | None:
        query = select(AccessGrant).where(
            AccessGrant.id == grant_id,
            AccessGrant.tenant_id == self._tenant_id,
            AccessGrant.revoked_at.is_(None),
            AccessGrant.expires_at > self._ctx.now,
        )
        return session.scalars(query.with_for_update() if lock else query).one_or_none()

    def _check_accounts(self, session: Session, user_id: Any, granted_by: Any) -> None:
        """The grantee must be a staff account of this tenant; whoever grants or revokes, an
        account of this tenant or platform support (who may act on a tenant's behalf)."""
        if user_id is not None:
            grantee = _account(session, user_id)
            if (
                grantee is None
                or grantee.tenant_id != self._tenant_id
                or grantee.role not in GRANTEE_ROLES
            ):
                raise ValueError(f"user {user_id!r} is not a staff account of this business")
        if granted_by is not None:
            giver = _account(session, granted_by)
            if giver is None or (giver.tenant_id != self._tenant_id and giver.role != Role.SUPPORT):
                raise ValueError(f"user {granted_by!r} is not an account of this business")

    def _audit(self, session: Session, action: str, row: AccessGrant) -> None:
        audit.audit(
            session,
            self._ctx,
            action,
            f"grant:{row.id}",
            {
                "plugin": self._plugin,
                "grantee": _grantee(row),
                "permission": row.permission,
                "subject": row.subject,
                "reason": row.reason,
                "expires_at": row.expires_at,
            },
            # Whoever the plugin says acted (the owner granting), else the plugin itself.
            actor=_actor(row.revoked_by if action == "access.revoked" else row.granted_by)
            or (None if self._ctx.actor is not None else f"plugin:{self._plugin}"),
        )


def active_subjects(
    session: Session,
    *,
    tenant_id: int,
    permission: str,
    user_id: int,
    role: str,
    now: datetime,
) -> list[str | None]:
    """The subjects of the active grants of ``permission`` to this account or its role in the
    tenant (``None`` for a grant on everything): what core's permission checks consult."""
    return list(
        session.scalars(
            select(AccessGrant.subject).where(
                AccessGrant.tenant_id == tenant_id,
                AccessGrant.permission == permission,
                AccessGrant.revoked_at.is_(None),
                AccessGrant.expires_at > now,
                or_(AccessGrant.user_id == user_id, AccessGrant.role == role),
            )
        )
    )


def _account(session: Session, user_id: Any) -> User | None:
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    return session.get(User, user_id)


def _actor(user_id: int | None) -> str | None:
    return None if user_id is None else f"user:{user_id}"


def _grantee(row: AccessGrant) -> str:
    return f"user:{row.user_id}" if row.user_id is not None else f"role:{row.role}"


def _hours(hours: Any) -> timedelta:
    if (
        not isinstance(hours, int | float)
        or isinstance(hours, bool)
        or not math.isfinite(hours)
        or not 0 < hours <= MAX_HOURS
    ):
        raise ValueError(f"a grant lasts more than 0 and at most {MAX_HOURS} hours, not {hours!r}")
    return timedelta(hours=hours)


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("a grant needs a reason")
    if len(reason) > MAX_REASON:
        raise ValueError(f"a grant's reason is at most {MAX_REASON} characters")
    return reason.strip()


def _subject(subject: Any) -> str | None:
    if subject is None:
        return None
    if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT:
        raise ValueError(f"a grant's subject is None or 'client:<e-mail>', not {subject!r}")
    kind, _, name = subject.strip().partition(":")
    if kind != "client" or not name.strip():
        raise ValueError(f"a grant's subject is None or 'client:<e-mail>', not {subject!r}")
    return client_subject(name)


def _grant_of(row: AccessGrant) -> Grant:
    return Grant(
        id=row.id,
        permission=row.permission,
        reason=row.reason,
        plugin=row.plugin,
        created_at=row.created_at,
        expires_at=row.expires_at,
        user_id=row.user_id,
        role=row.role,
        subject=row.subject,
        granted_by=row.granted_by,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )
