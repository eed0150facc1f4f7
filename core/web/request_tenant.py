"""The business a request names, found once per request: the tenant hooks, the view and the
error page share it (kept in ``g``)."""

from __future__ import annotations

from flask import g
from sqlalchemy import bindparam, select

from bookwell.core.booking.tenants import SLUG
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant

# Built once: every request naming a tenant runs it, and building costs more than running it.
_BY_SLUG = select(Tenant).where(Tenant.slug == bindparam("slug"))


def current_tenant(slug: str) -> Tenant | None:
    """The tenant a request names, looked up once per request (hooks and view share it)."""
    if not SLUG.match(slug):
        return None  # not a slug at all: no query, and no odd bytes sent to the database
    tenant = g.get("tenant")
    if tenant is None or tenant.slug != slug:
        tenant = db.session().scalar(_BY_SLUG, {"slug": slug})
        g.tenant = tenant
    return tenant
