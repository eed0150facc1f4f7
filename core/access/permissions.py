"""Who may do what: one table for the pages and the API alike.

A permission names an area and an action; a role holds a set of them. Platform support holds
read access only, and every use of it also passes ``before_data_access`` and the audit trail.

Beyond its role, an account may hold a permission for a while through a grant a plugin recorded
(``ctx.grants``, :mod:`bookwell.core.context.grants`): to the account or to its role, in one
tenant, on everything or on one subject (``client:<e-mail>``). :func:`may` is the check that
consults them.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from bookwell.core.context import grants
from bookwell.core.storage.models import Role, User

PERMISSIONS: dict[str, frozenset[Role]] = {
    "bookings.read": frozenset(
        {Role.OWNER, Role.MANAGER, Role.STAFF, Role.RECEPTIONIST, Role.SUPPORT}
    ),
    "bookings.read_own": frozenset({Role.OWNER, Role.MANAGER, Role.STAFF, Role.RECEPTIONIST}),
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


def may(
    session: Session,
    user: User,
    tenant_id: int,
    permission: str,
    *,
    now: datetime,
    subject: str | None = None,
) -> bool:
    """Whether ``user`` may use ``permission`` in tenant ``tenant_id``: by their role, or by an
    active grant of it there to them or to their role whose subject is everything or ``subject``
    (what is being accessed, say ``client:<e-mail>``). The caller has already made sure the
    account belongs to that tenant (or is platform support)."""
    if allowed(user.role, permission):
        return True
    if user.role not in grants.GRANTEE_ROLES or permission not in PERMISSIONS:
        return False
    if user.tenant_id is not None and user.tenant_id != tenant_id:
        return False  # a grant of one business never opens another's
    subjects = grants.active_subjects(
        session,
        tenant_id=tenant_id,
        permission=permission,
        user_id=user.id,
        role=str(user.role),
        now=now,
    )
    return any(granted is None or granted == subject for granted in subjects)


def init_app(app: Flask) -> None:
    """Hand the table's names down to ``ctx.grants``, which may grant only those."""
    grants.register_permissions(app, PERMISSIONS)
