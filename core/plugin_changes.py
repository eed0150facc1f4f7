"""Switching a tenant's plugins on and off, and changing their settings."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import audit, db, plugin_settings
from .models import Tenant, TenantPlugin
from .pluginhost import host_of


class UnknownPlugin(LookupError):
    pass


def _row(session: Session, tenant_id: int, name: str) -> TenantPlugin | None:
    return session.scalar(
        select(TenantPlugin).where(
            TenantPlugin.tenant_id == tenant_id, TenantPlugin.plugin_name == name
        )
    )


def _bump(session: Session, tenant_id: int) -> None:
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(plugins_version=Tenant.plugins_version + 1)
    )


def enable(
    app: Flask,
    tenant_id: int,
    name: str,
    values: Mapping[str, Any],
    now: datetime,
    *,
    actor: str = "cli",
    ip: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Enable ``name`` (or update its settings when it is on); returns (new, old) settings."""
    host = host_of(app)
    if name not in host.installed:
        raise UnknownPlugin(f"no plugin named {name!r} is installed")
    manifest = host.manifest(name)
    with db.write_transaction(app) as session:
        row = _row(session, tenant_id, name)
        old = json.loads(row.settings) if row is not None and row.enabled else None
        current = json.loads(row.settings) if row is not None else None
        settings = plugin_settings.validate(manifest, values, current)
        if row is None:
            row = TenantPlugin(tenant_id=tenant_id, plugin_name=name)
            session.add(row)
        row.enabled, row.settings, row.updated_at = True, json.dumps(settings), now
        _bump(session, tenant_id)
        host.forget_request_state()
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            ip=ip,
            action="plugin.enabled" if old is None else "plugin.settings_changed",
            subject=f"plugin:{name}",
            details={"old": old, "new": settings},
            now=now,
        )
    return settings, old


def disable(
    app: Flask,
    tenant_id: int,
    name: str,
    now: datetime,
    *,
    actor: str = "cli",
    ip: str | None = None,
) -> bool:
    """Switch ``name`` off (its settings are kept for next time). Returns whether it was on."""
    with db.write_transaction(app) as session:
        row = _row(session, tenant_id, name)
        if row is None or not row.enabled:
            if name not in host_of(app).installed:
                raise UnknownPlugin(f"no plugin named {name!r} is installed")
            return False
        row.enabled, row.updated_at = False, now
        _bump(session, tenant_id)
        host_of(app).forget_request_state()
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            ip=ip,
            action="plugin.disabled",
            subject=f"plugin:{name}",
            details={"settings": json.loads(row.settings)},
            now=now,
        )
        return True


def tenant_plugins(session: Session, tenant_id: int) -> dict[str, tuple[bool, dict[str, Any]]]:
    rows = session.execute(
        select(TenantPlugin.plugin_name, TenantPlugin.enabled, TenantPlugin.settings).where(
            TenantPlugin.tenant_id == tenant_id
        )
    )
    return {name: (enabled, json.loads(settings)) for name, enabled, settings in rows}
