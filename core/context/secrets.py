"""``ctx.secrets``: encryption with the tenant's own key (``bookwell.hooks.Secrets``)."""

from __future__ import annotations

from typing import Any

from flask import Flask


class TenantSecrets:
    def __init__(self, app: Flask, tenant_id: int) -> None:
        self._app, self._tenant_id = app, tenant_id

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError("ctx.secrets is not built yet")
