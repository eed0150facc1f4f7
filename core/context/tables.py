"""``ctx.tables``: a plugin's own tables, for one tenant (``bookwell.hooks.PluginTables``)."""

from __future__ import annotations

from typing import Any

from flask import Flask


class TenantTables:
    def __init__(self, app: Flask, tenant_id: int, plugin: str, *, dry_run: bool = False) -> None:
        self._app, self._tenant_id, self._plugin, self._dry_run = app, tenant_id, plugin, dry_run

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError("ctx.tables is not built yet")
