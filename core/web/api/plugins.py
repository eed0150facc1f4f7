"""A business's plugins through the API: every staff role may read them, the owner changes them.

The entries are those of ``bookwell plugins list --tenant SLUG --json`` (one function makes
both), and a change goes through the same rules as the marketplace and the CLI.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from pydantic import Field

from bookwell.core.foundation import clock
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost import rules as plugin_rules
from bookwell.core.pluginhost import settings as plugin_settings
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.web.api import bodies
from bookwell.core.web.api.auth import require, tenant_or_404
from bookwell.core.web.api.errors import ApiError
from bookwell.core.web.api.schemas import Body

plugins_api = Blueprint("plugins_api", __name__, url_prefix="/api/v1/tenants/<slug>/plugins")


class PluginChangeIn(Body):
    enabled: bool | None = Field(
        default=None,
        description="Switch the plugin on (with what it requires) or off. Left out, the plugin "
        "stays as it is and only `settings` change: an enabled plugin's at once, a disabled "
        "one's kept for when it is switched on.",
    )
    settings: dict[str, Any] | None = Field(
        default=None,
        description="Settings to change; they merge into the current ones. Each is checked "
        "against the plugin's `settings_schema`.",
    )


def _entry(tenant_id: int, name: str) -> dict[str, Any]:
    # A session of its own: the request's may hold a snapshot from before the change.
    with db.fresh_session() as reader:
        listing = plugin_changes.listing(host_of(), reader, tenant_id, clock.now())
    return next(entry for entry in listing if entry["name"] == name)


@plugins_api.get("")
def list_plugins(slug: str):
    tenant = tenant_or_404(slug)
    require(tenant, "plugins.read", "plugins")
    return jsonify(plugin_changes.listing(host_of(), db.session(), tenant.id, clock.now()))


@plugins_api.put("/<name>")
def change_plugin(slug: str, name: str):
    tenant = tenant_or_404(slug)
    who = require(tenant, "plugins.manage", "plugins")
    if name not in host_of().installed:
        raise ApiError(404, "not_found", f"No plugin named {name[:100]!r} is installed.")
    payload = bodies.read(PluginChangeIn)
    if payload.enabled is None and payload.settings is None:
        raise ApiError(
            422,
            "invalid",
            "Say what changes: `enabled`, `settings`, or both.",
            {"enabled": "Give `enabled` or `settings`."},
        )
    app = current_app._get_current_object()
    who_and_where = {"actor": who.user.audit_label, "ip": request.remote_addr}
    also_enabled: list[str] = []
    try:
        if payload.enabled is None:
            kept = plugin_changes.save_settings(
                app, tenant.id, name, payload.settings or {}, clock.now(), **who_and_where
            )
            also_enabled = kept.also_enabled if kept else []
        elif payload.enabled:
            done = plugin_changes.enable(
                app, tenant.id, name, payload.settings or {}, clock.now(), **who_and_where
            )
            also_enabled = done.also_enabled
        else:
            plugin_changes.disable(
                app, tenant.id, name, clock.now(), values=payload.settings, **who_and_where
            )
    except plugin_settings.InvalidSettings as error:
        raise ApiError(
            422, "invalid_settings", "Some settings are not valid.", error.fields
        ) from error
    except plugin_rules.SettingsCheckFailed as error:
        # plugin_failed is a 503 wherever a plugin's failure refuses something.
        raise ApiError(503, error.code, error.message) from error
    except plugin_rules.RuleBroken as error:
        raise ApiError(409, error.code, error.message) from error
    except plugin_changes.StateChanged as error:
        raise ApiError(
            409, "plugin_busy", "The plugin is being switched on and off: try again."
        ) from error
    return jsonify({**_entry(tenant.id, name), "also_enabled": also_enabled})
