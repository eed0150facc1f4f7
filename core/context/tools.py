"""The per-plugin tools of a hook's context: ``ctx.store``, ``ctx.secrets``, ``ctx.tables``,
``ctx.files``, ``ctx.audit``, ``ctx.grants`` and ``ctx.progress``.

One context is built per hook call and shared by every plugin that call reaches, but these tools
belong to one plugin each (its store keys, its tables, its folder, its audit entries). So the
context carries a :class:`PluginTools` as its ``binder``, and the plugin host asks it for each
plugin's own copy just before the call (``Context.for_plugin``). Binding builds small objects
and reads nothing; each tool touches the database only when used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from bookwell.core import audit
from bookwell.core.context import data as plugin_data
from bookwell.core.context import grants, secrets, store, tables
from bookwell.core.storage import keys
from bookwell.hooks import Context

log = logging.getLogger("bookwell.plugins")
EXTENSION = "bookwell.progress"


class PluginTools:
    """Binds a context's tools to one plugin (the context's ``binder``); one per app.

    Binding runs before every call of every plugin, guards included, so it is kept cheap. What
    depends only on the plugin and the tenant (the folder, the progress report) is made once and
    kept; the secrets are not, their keys staying in the key ring's own bounded cache. And the
    bound context is a copy of the shared one's fields, not a ``dataclasses.replace`` (which
    runs every field through ``__init__`` again)."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._kept: dict[tuple[str, int, str], tuple[Path, _Progress]] = {}

    def __call__(self, ctx: Context, plugin: str) -> Context:
        tenant = ctx.tenant
        if tenant is None:  # instance-level calls (support logins): the instance's own tools
            return self._platform_tools(ctx, plugin)
        app = self._app
        kept = self._kept.get((plugin, tenant.id, tenant.slug))
        if kept is None:
            kept = (files_folder(app, plugin, tenant.slug), _Progress(app, plugin, tenant.slug))
            if len(self._kept) >= MAX_KEPT:  # a bounded memo: many tenants, many plugins
                self._kept.clear()
            self._kept[(plugin, tenant.id, tenant.slug)] = kept
        files, progress = kept
        data = ctx.data
        if isinstance(data, plugin_data.PluginData):  # its archives go to the plugin's folder
            data = data.for_plugin(plugin, files)
        return _copy(
            ctx,
            plugin=plugin,
            data=data,
            store=store.DatabaseStore(app, tenant.id, plugin, ctx.now, dry_run=ctx.dry_run),
            secrets=secrets.TenantSecrets(app, tenant.id),
            tables=tables.TenantTables(app, tenant.id, plugin, dry_run=ctx.dry_run),
            files=files,
            audit=_PluginAudit(app, ctx, plugin),
            grants=grants.TenantGrants(app, ctx, plugin),
            progress=progress,
        )

    def _platform_tools(self, ctx: Context, plugin: str) -> Context:
        """Support accounts belong to no tenant: the store and secrets are the instance's (the
        plugin's own keys, the instance's data key) and audit entries go to the platform's
        chain. No tenant, so no data, tables, files or grants."""
        app = self._app
        return _copy(
            ctx,
            plugin=plugin,
            store=store.PlatformStore(app, plugin, ctx.now, dry_run=ctx.dry_run),
            secrets=secrets.TenantSecrets(app, keys.PLATFORM),
            audit=_PluginAudit(app, ctx, plugin),
            grants=None,
        )


MAX_KEPT = 10_000
EXTENSION_BINDER = "bookwell.plugin_tools"


def binder_of(app: Flask) -> PluginTools:
    """The app's one :class:`PluginTools`."""
    binder = app.extensions.get(EXTENSION_BINDER)
    if binder is None:
        binder = app.extensions.setdefault(EXTENSION_BINDER, PluginTools(app))
    return binder


def _copy(ctx: Context, **changes: Any) -> Context:
    """``ctx`` with ``changes``: a frozen dataclass copied field for field, as replace() would
    but without running its checks again (every field is already a valid value)."""
    bound = object.__new__(Context)
    bound.__dict__.update(ctx.__dict__, **changes)
    return bound


def files_folder(app: Flask, plugin: str, tenant_slug: str) -> Path:
    """``<STORAGE or instance>/files/<plugin>/<tenant>/``; made on first use by the plugin."""
    return Path(app.config.get("STORAGE") or app.instance_path) / "files" / plugin / tenant_slug


class _PluginAudit:
    """``ctx.audit(action, subject, details=None)``: ``plugin.<name>.<action>`` in the tenant's
    chain, in a transaction of its own (it stays even if what it records is refused). A dry run
    logs it instead."""

    def __init__(self, app: Flask, ctx: Context, plugin: str) -> None:
        self._app, self._ctx, self._plugin = app, ctx, plugin

    def __call__(self, action: str, subject: str, details: Mapping[str, Any] | None = None) -> None:
        if not action or not all(part.isidentifier() for part in action.split(".")):
            raise ValueError(f"an audit action is dotted lowercase words, not {action!r}")
        full = f"plugin.{self._plugin}.{action}"
        if self._ctx.dry_run:
            log.info("dry run: would audit %s on %s %s", full, subject, dict(details or {}))
            return
        audit.audit_separately(self._app, self._ctx, full, subject, details)


class _Progress:
    """``ctx.progress(done, total)``: reported to whoever runs the scheduled work (``bookwell
    tick`` draws a bar in a terminal); nothing happens when nobody listens."""

    def __init__(self, app: Flask, plugin: str, tenant_slug: str) -> None:
        self._app, self._plugin, self._tenant = app, plugin, tenant_slug

    def __call__(self, done: int, total: int) -> None:
        listener = self._app.extensions.get(EXTENSION)
        if listener is not None:
            listener(self._plugin, self._tenant, int(done), int(total))
