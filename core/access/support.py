"""The plugins of platform support's logins: an instance-level set the operator configures.

Support users belong to no tenant, so no tenant's marketplace can give their logins a lockout or
a password policy. The operator names those plugins, with their settings, in ``config.toml``::

    [support_plugins.password_policy]
    min_length = 14

or in ``BOOKWELL_SUPPORT_PLUGINS`` as JSON (``{"password_policy": {"min_length": 14}}``). Their
login guards and events, ``session_limits`` and ``before_password_set`` then run for support
accounts, with ``ctx.tenant`` ``None``. The settings are checked against each manifest when the
app starts; a plugin that is not installed, is broken or has bad settings is logged and counted
as broken, and a broken plugin's guards refuse (``plugin_failed``): a mistake in the
configuration closes support's door rather than opening it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from flask import Flask

from bookwell.core.context import request_info, tools, user_info
from bookwell.core.pluginhost import settings as plugin_settings
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage.models import User
from bookwell.hooks import Context, UserInfo

log = logging.getLogger("bookwell.plugins")
EXTENSION = "bookwell.support_plugins"
CONFIG_KEY = "SUPPORT_PLUGINS"


@dataclass(frozen=True)
class SupportPlugins:
    """What support logins run: working plugins with their settings, and the names of those
    that cannot run (their guards refuse)."""

    enabled: Mapping[str, Mapping[str, Any]]
    broken: tuple[str, ...] = ()


def load(app: Flask) -> SupportPlugins:
    """Check ``SUPPORT_PLUGINS`` against the installed plugins' manifests; log what is wrong."""
    configured = app.config.get(CONFIG_KEY) or {}
    if not isinstance(configured, Mapping):
        log.error(
            "%s must map plugin names to their settings (a TOML table, or a JSON object in "
            "BOOKWELL_SUPPORT_PLUGINS); support logins are refused until it is fixed",
            CONFIG_KEY,
        )
        return SupportPlugins({}, (CONFIG_KEY,))
    host = host_of(app)
    enabled: dict[str, Mapping[str, Any]] = {}
    broken: list[str] = []
    for name, values in configured.items():
        problem = None
        plugin = host.installed.get(str(name))
        if plugin is None:
            problem = "is not installed"
        elif plugin.manifest is None:
            problem = f"is broken: {plugin.error}"
        elif not isinstance(values, Mapping):
            problem = "needs a table of settings"
        if problem is None:
            try:
                checked = plugin_settings.validate(plugin.manifest, values)
            except plugin_settings.InvalidSettings as error:
                problem = f"has bad settings: {error}"
            else:
                enabled[str(name)] = MappingProxyType(checked)
                continue
        log.error("support plugin %s %s; support logins are refused", name, problem)
        broken.append(str(name))
    return SupportPlugins(MappingProxyType(enabled), tuple(broken))


def init_app(app: Flask) -> None:
    """Check the configuration when the app starts (after the plugins are loaded)."""
    app.extensions[EXTENSION] = load(app)


def support_plugins(app: Flask) -> SupportPlugins:
    found = app.extensions.get(EXTENSION)
    if found is None:
        found = app.extensions[EXTENSION] = load(app)
    return found


def context(
    app: Flask, now: datetime, actor: User | UserInfo | None = None, **fields: Any
) -> Context:
    """A hook's context for support: no tenant, so no ``ctx.data``, store, secrets, tables,
    files or audit of a tenant's (see :mod:`bookwell.core.context.tools`)."""
    if isinstance(actor, User):
        actor = user_info(actor)
    return Context(
        tenant=None,
        now=now,
        actor=actor,
        request=request_info(),
        binder=tools.PluginTools(app),
        **fields,
    )
