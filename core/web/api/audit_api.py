"""``GET /api/v1/tenants/{slug}/audit``: a business's audit trail for its owners, as JSON or CSV.

Every answer is an export (``audit.read`` and ``data.export``), audited as ``audit.exported``
before it is handed out. Only that tenant's chain is read; people appear by pseudonym, with the
e-mail address they stand for unless it was erased (``"[erased]"``)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, current_app, request

from bookwell.core import audit
from bookwell.core.access.permissions import allowed
from bookwell.core.foundation import clock
from bookwell.core.storage.models import Tenant
from bookwell.core.web.api.auth import require, tenant_or_404
from bookwell.core.web.api.errors import ApiError, invalid

audit_api = Blueprint("audit_api", __name__, url_prefix="/api/v1/tenants/<slug>")
BOUND_MESSAGE = "Must be a date (YYYY-MM-DD) or a date and time with its offset (RFC 3339)."


def _selection(tenant: Tenant) -> tuple[audit.Filter, str]:
    """The query's bounds and format, every problem at once (422 ``invalid``)."""
    problems: dict[str, str] = {}
    bounds = {}
    for name, end in (("from", False), ("to", True)):
        raw = request.args.get(name)
        if raw is None:
            bounds[name] = None
            continue
        try:
            if len(raw) > 40:
                raise ValueError("too long")
            bounds[name] = audit.parse_bound(raw, tenant.zone, end=end)
            if len(raw) > 10 and datetime.fromisoformat(raw).tzinfo is None:
                raise ValueError("an instant without its offset is ambiguous")
        except ValueError:
            problems[name] = BOUND_MESSAGE
    export_format = request.args.get("format", "json")
    if export_format not in audit.EXPORT_FORMATS:
        problems["format"] = "Must be json or csv."
    if not problems and bounds["from"] and bounds["to"] and bounds["to"] <= bounds["from"]:
        problems["to"] = "Must be on or after 'from'."
    if problems:
        raise invalid(problems)
    return audit.Filter(since=bounds["from"], until=bounds["to"]), export_format


@audit_api.get("/audit")
def audit_trail(slug: str):
    tenant = tenant_or_404(slug)
    who = require(tenant, "audit.read", "audit")
    wanted, export_format = _selection(tenant)
    # After the bounds are checked: a malformed request is a 422 whoever sends it.
    if not allowed(who.user.role, "data.export"):
        raise ApiError(403, "forbidden", "Your role does not allow exports.")
    body, _ = audit.export(
        current_app._get_current_object(),
        tenant.id,
        wanted,
        export_format,
        actor=who.user.audit_label,
        ip=request.remote_addr,
        now=clock.now(),
    )
    if export_format == "json":
        return Response(body, mimetype="application/json", headers={"Cache-Control": "no-store"})
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{tenant.slug}.csv"',
            "Cache-Control": "no-store",
        },
    )
