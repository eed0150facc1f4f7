"""Hooks around every request that names a tenant: ``before_request`` and ``response_headers``.

The tenant is found once here and kept in ``g`` for the view, so plugins see the request before
any view runs and can add headers to whatever the view answers.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, redirect, request

from bookwell.core.context import make_context
from bookwell.core.foundation import clock
from bookwell.core.pluginhost.host import PluginFailed, Refused, host_of
from bookwell.core.storage import db
from bookwell.core.web.api.errors import answer
from bookwell.core.web.request_tenant import current_tenant
from bookwell.hooks import Redirect, Refusal

log = logging.getLogger("bookwell.plugins")


def init_app(app: Flask) -> None:
    @app.before_request
    def guard_tenant_request():
        slug = (request.view_args or {}).get("slug")
        if not isinstance(slug, str):
            return None
        tenant = current_tenant(slug)
        if tenant is None:
            return None  # the view answers its own 404
        host = host_of()
        session = db.session()
        g.enabled_plugins = host.enabled_for(session, tenant.id)
        try:
            host.guard(
                "before_request",
                make_context(tenant, clock.now()),
                g.enabled_plugins,
                host.broken_enabled_for(session, tenant.id),
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
                503, "plugin_failed", "A feature of this business is not working; please try later."
            )
        for _, headers in contributed:
            for name, value in headers.items():
                response.headers[name] = value
        return response
