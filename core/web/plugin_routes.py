"""Mounting plugins' own pages (the ``routes`` hook), each answering 404 to tenants without it,
and its pages for platform support (``/support/<plugin>/...``) 404 unless the operator lists it
among the support plugins.

A plugin whose pages cannot be mounted (``routes`` raises or answers something other than a
blueprint, a URL rule Flask refuses, a page that would take over one of core's or another
plugin's, a template folder that is missing or whose templates would hide others) is marked
broken with the reason, and the app starts without it: no plugin can stop the server.

The plugin's blueprint is never changed here. Plugins usually make it once, at import, and one
process builds several apps from it (tests; gunicorn's workers after the master built one), so
the check that walls its pages off is registered on each app, under the blueprint's name there.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, abort, current_app, request

from bookwell.core.access import support
from bookwell.core.pluginhost.host import PluginHost, host_of
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


# Werkzeug tells <slug> from <name> by position only: compare rules with their variables unnamed.
_VARIABLE = re.compile(r"<(?:([^<>:]+):)?[^<>:]+>")
_AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


class Unmountable(Exception):
    """Why a plugin's pages cannot be mounted, in words for ``bookwell plugins list``."""


def _only_for_tenants_that_enabled(plugin: str) -> Callable[[], None]:
    support_pages = f"/support/{plugin}/"

    def check() -> None:
        slug = (request.view_args or {}).get("slug")
        if slug is None and (request.path + "/").startswith(support_pages):
            # Platform support's pages: the operator switches the plugin on for them.
            if plugin not in support.support_plugins(current_app._get_current_object()).enabled:
                abort(404)
            return
        tenant = current_tenant(slug) if isinstance(slug, str) else None
        # Any other page that names no tenant cannot be walled off by tenant: it does not exist.
        if tenant is None or plugin not in host_of().enabled_for(db.session(), tenant.id):
            abort(404)
        if request.endpoint == f"plugin_{plugin}.static" and request.view_args is not None:
            # A blueprint's static files are walled off by the <slug> in its url_prefix, but
            # Flask's static view takes the file name alone.
            request.view_args.pop("slug", None)

    return check


def _rules(app: Flask) -> dict[tuple[str, str], str]:
    """(rule with its variables unnamed, method) → the endpoint serving it, for ``app``."""
    found = {}
    for rule in app.url_map.iter_rules():
        shape = _VARIABLE.sub(lambda match: f"<{match.group(1) or 'default'}>", rule.rule)
        for method in (rule.methods or set()) - _AUTOMATIC_METHODS:
            found[(shape, method)] = rule.endpoint
    return found


def _whose(endpoint: str) -> str:
    blueprint = endpoint.rpartition(".")[0]
    if blueprint.startswith("plugin_"):
        return f"plugin {blueprint.removeprefix('plugin_')}'s"
    return "core's"


def _check_folder(blueprint: Blueprint, folder: str | os.PathLike[str] | None, what: str) -> None:
    if folder is None:
        return
    path = os.path.join(blueprint.root_path, os.fspath(folder))
    if not os.path.isdir(path):
        raise Unmountable(f"its {what} folder {path} is missing (is it declared as package data?)")


def _check_templates(blueprint: Blueprint, known: set[str]) -> set[str]:
    """The plugin's template names; refused if one of them is already core's or another
    plugin's, since only the first of a name is ever found."""
    loader = blueprint.jinja_loader
    names = set(loader.list_templates()) if loader is not None else set()
    hidden = sorted(names & known)
    if hidden:
        raise Unmountable(
            f"its template {hidden[0]} has the name of one of core's or another plugin's: keep "
            "templates in a folder named after the plugin"
        )
    return names


def _try_mount(app: Flask, plugin: str, blueprint: Blueprint) -> None:
    """Register the blueprint on a scratch app first: a URL rule Flask refuses fails there,
    halfway through, rather than leaving half the plugin's rules in the real app. Then refuse
    a page that core or another plugin already serves: Werkzeug would give it to the first."""
    scratch = Flask(__name__, static_folder=None)
    try:
        scratch.register_blueprint(blueprint, name=f"plugin_{plugin}")
    except Exception as error:
        raise Unmountable(f"its pages cannot be mounted: {error}") from error
    taken = _rules(app)
    for shape, method in _rules(scratch):
        if (shape, method) in taken:
            owner = _whose(taken[(shape, method)])
            raise Unmountable(f"its page {method} {shape} is already {owner}")


def _mount(app: Flask, plugin: str, routes: Callable[[], Any], templates: set[str]) -> None:
    try:
        blueprint = routes()
    except Exception as error:
        log.exception("plugin %s: routes failed", plugin)
        raise Unmountable(f"routes failed: {error!r}") from error
    if blueprint is None:
        return
    if not isinstance(blueprint, Blueprint):
        raise Unmountable(f"routes returned {type(blueprint).__name__}, not a Blueprint")
    name = f"plugin_{plugin}"
    _check_folder(blueprint, blueprint.template_folder, "templates")
    _check_folder(blueprint, blueprint.static_folder, "static")
    _try_mount(app, plugin, blueprint)
    templates |= _check_templates(blueprint, templates)
    # The wall first: should registering fail halfway after all, the rules it left behind are
    # walled off too (and a broken plugin is enabled nowhere).
    app.before_request_funcs.setdefault(name, []).append(_only_for_tenants_that_enabled(plugin))
    try:
        app.register_blueprint(blueprint, name=name)
    except Exception as error:
        raise Unmountable(f"its pages cannot be mounted: {error}") from error


def init_app(app: Flask) -> None:
    """Mount every working plugin's pages; call it after core's own routes are registered."""
    host: PluginHost = host_of(app)
    loader = app.jinja_loader
    templates = set(loader.list_templates()) if loader is not None else set()
    for blueprint in app.blueprints.values():
        if blueprint.jinja_loader is not None:
            templates |= set(blueprint.jinja_loader.list_templates())
    named = [
        (host.pm.get_name(implementation.plugin), implementation.function)
        for implementation in host.pm.hook.routes.get_hookimpls()
    ]
    for plugin, routes in sorted(named, key=lambda pair: pair[0]):
        try:
            _mount(app, plugin, routes, templates)
        except Unmountable as problem:
            host.mark_broken(plugin, str(problem), failed_in="routes")
