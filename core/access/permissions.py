"""Who may do what: one table for the pages and the API alike.

A permission names an area and an action; a role holds a set of them. Platform support holds
read access only, and every use of it also passes ``before_data_access`` and the audit trail.
"""

from __future__ import annotations

from bookwell.core.storage.models import Role

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
