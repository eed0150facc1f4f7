"""Mounting plugins' own pages (the ``routes`` hook), each answering 404 to tenants without it."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, abort, current_app, request

from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.web.request_tenant import current_tenant

log = logging.getLogger("bookwell.plugins")
# Core registers each plugin's blueprint as "plugin_<name>" (see init_app).
BLUEPRINT_PREFIX = "plugin_"


def owner_of(blueprint: str | None) -> str | None:
    """The plugin whose ``routes`` blueprint ``blueprint`` (a request's ``request.blueprint``,
    perhaps a nested one's dotted name) is, or ``None`` for core's own and for no blueprint."""
    top = (blueprint or "").split(".", 1)[0]
    if not top.startswith(BLUEPRINT_PREFIX) or top not in current_app.blueprints:
        return None
    plugin = top.removeprefix(BLUEPRINT_PREFIX)
    return plugin if plugin in host_of().installed else None


def _only_for_tenants_that_enabled(plugin: str):
    def check() -> None:
        slug = (request.view_args or {}).get("slug")
        tenant = current_tenant(slug) if isinstance(slug, str) else None
        # A page that names no tenant cannot be walled off by tenant: it does not exist.
        if tenant is None or plugin not in host_of().enabled_for(db.session(), tenant.id):
            abort(404)
        if request.endpoint == f"plugin_{plugin}.static":
            # A blueprint's static files are walled off by the <slug> in its url_prefix, but
            # Flask's static view takes the file name alone.
            request.view_args.pop("slug", None)

    return check


def init_app(app: Flask) -> None:
    host = host_of(app)
    for implementation in host.pm.hook.routes.get_hookimpls():
        plugin = host.pm.get_name(implementation.plugin)
        try:
            blueprint = implementation.function()
        except Exception as error:
            log.exception("plugin %s: routes failed; its pages are not mounted", plugin)
            host.installed[plugin].error = f"routes failed: {error!r}"
            continue
        if blueprint is None:
            continue
        if not isinstance(blueprint, Blueprint):
            host.installed[plugin].error = "routes returned something other than a Blueprint"
            continue
        blueprint.before_request(_only_for_tenants_that_enabled(plugin))
        app.register_blueprint(blueprint, name=f"plugin_{plugin}")
