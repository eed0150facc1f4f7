"""``ctx.store``: a plugin's own key -> JSON store per tenant (``bookwell.hooks.PluginStore``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask


class DatabaseStore:
    def __init__(
        self, app: Flask, tenant_id: int, plugin: str, now: datetime, *, dry_run: bool = False
    ) -> None:
        self._app, self._tenant_id, self._plugin = app, tenant_id, plugin
        self._now, self._dry_run = now, dry_run

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError("ctx.store is not built yet")
