"""Hooks around every request that names a tenant: ``before_request`` and ``response_headers``.

The tenant is found once here and kept in ``g`` for the view, so plugins see the request before
any view runs and can add headers to whatever the view answers. A request names a tenant by the
slug in its path, or, on an API route without one (``/api/v1/auth/...``), by its bearer: a token
or API key of a tenant's user makes the request that tenant's, so that what guards the tenant's
requests (HTTPS only, say) guards the logout and the password change of its users too.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, redirect, request
from flask_babel import gettext

from bookwell.core.context import make_context
from bookwell.core.foundation import clock
from bookwell.core.pluginhost.host import PluginFailed, Refused, host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant, User
from bookwell.core.web import identity, session_cookies
from bookwell.core.web.api.errors import ApiError, answer
from bookwell.core.web.request_tenant import current_tenant
from bookwell.hooks import Redirect, Refusal

log = logging.getLogger("bookwell.plugins")


def tenant_of_bearer() -> Tenant | None:
    """On an API route without a slug, the tenant whose user the bearer is (a restricted
    session's too); ``None`` for no bearer, a bad one, or a user of no tenant (support)."""
    if request.endpoint is None or not request.path.startswith(identity.API_PREFIX):
        return None
    if not request.headers.get("Authorization"):
        return None
    try:
        rows = identity.signed_in_rows() or identity.restricted_rows()
    except ApiError:
        return None  # a bad bearer: the view that needs the caller answers 401, doing nothing
    if rows is None or rows.user.tenant_id is None:
        return None
    tenant = db.session().get(Tenant, rows.user.tenant_id)
    g.tenant = tenant  # for response_headers, as a slug's tenant is
    return tenant


def actor_of_request(tenant: Tenant) -> User | None:
    """Who of ``tenant`` makes the request, for ``before_request``'s ``ctx.actor``: the account
    of its session cookie or bearer (a full login; a restricted one is nobody), read only when
    the request carries one, so that an anonymous request costs no query."""
    if not (request.headers.get("Authorization") or request.cookies.get(session_cookies.COOKIE)):
        return None
    try:
        rows = identity.signed_in_rows()
    except ApiError:
        return None  # a bad bearer: the view that needs the caller answers 401
    if rows is None or rows.user.tenant_id != tenant.id:
        return None
    return rows.user


def init_app(app: Flask) -> None:
    @app.before_request
    def guard_tenant_request():
        slug = (request.view_args or {}).get("slug")
        tenant = current_tenant(slug) if isinstance(slug, str) else tenant_of_bearer()
        if tenant is None:
            return None  # the view answers its own 404 (or 401 for a bad bearer)
        host = host_of()
        session = db.session()
        # The tenant's row was read just now, in this request: its plugins_version is as fresh
        # as a second query for it would be, so every process still sees a change at once.
        g.enabled_plugins = host.enabled_for(
            session, tenant.id, known_version=tenant.plugins_version
        )
        broken = host.broken_enabled_for(session, tenant.id)
        if not g.enabled_plugins and not broken:
            return None  # no guard to ask: spare the request the context it would be given
        try:
            host.guard(
                "before_request",
                make_context(tenant, clock.now(), actor=actor_of_request(tenant)),
                g.enabled_plugins,
                broken,
            )
        except Refused as refused:
            refusals = [item for item in refused.refusals if isinstance(item.refusal, Refusal)]
            redirects = [
                item.refusal for item in refused.refusals if isinstance(item.refusal, Redirect)
            ]
            if refusals:
                raise Refused(refusals) from None
            return redirect(redirects[0].url, redirects[0].status)
        return None

    @app.after_request
    def add_tenant_headers(response: Response) -> Response:
        tenant = g.get("tenant")
        enabled = g.get("enabled_plugins")
        if tenant is None or not enabled:
            return response
        try:
            contributed = host_of().contributions(
                "response_headers", make_context(tenant, clock.now()), enabled
            )
        except PluginFailed:
            # A security header that cannot be computed must not be silently left out.
            return answer(
                503,
                "plugin_failed",
                gettext("A feature of this business is not working; please try later."),
            )
        for _, headers in contributed:
            for name, value in headers.items():
                response.headers[name] = value
        return response
