"""Switching a tenant's plugins on and off and changing their settings, and how a tenant's plugins
are listed (the CLI's ``plugins list --json``, the API and the marketplace show the same entries).

The rules between plugins (:mod:`~bookwell.core.pluginhost.rules`) are checked inside the write
transaction, after the tenant's row is locked, so two changes at once cannot both pass them; the
plugins' own ``check_settings`` run before that lock is taken (their answers are looked up under
it), so no plugin's code holds it.
Every plugin a change switches on or changes gets its own audit entry with old and new settings.
Once a change has committed, the steps registered with :func:`after_change` run (core's layers
above this one react to a tenant's new plugin state there, without this module knowing them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bookwell.core import audit
from bookwell.core.pluginhost import health as plugin_health
from bookwell.core.pluginhost import rules as plugin_rules
from bookwell.core.pluginhost import settings as plugin_settings
from bookwell.core.pluginhost.host import InstalledPlugin, PluginHost, host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant, TenantPlugin

RECENT = timedelta(hours=24)
AFTER_CHANGE = "bookwell.after_plugin_change"
log = logging.getLogger("bookwell.plugins")

AfterChange = Callable[[Flask, int, datetime], None]


def after_change(app: Flask, step: AfterChange) -> None:
    """Run ``step(app, tenant_id, now)`` after each committed change of a tenant's plugins
    (switched on or off, settings changed), outside any transaction. A step that raises is
    logged; the change stands."""
    steps = app.extensions.setdefault(AFTER_CHANGE, [])
    if step not in steps:
        steps.append(step)


def _changed(app: Flask, tenant_id: int, now: datetime) -> None:
    for step in app.extensions.get(AFTER_CHANGE, ()):
        try:
            step(app, tenant_id, now)
        except Exception:
            log.exception("a step after the plugin change of tenant %s failed", tenant_id)


class UnknownPlugin(LookupError):
    pass


class StateChanged(Exception):
    """The plugin was switched on or off while a change that keeps its state was under way."""


@dataclass(frozen=True)
class Enabled:
    """What :func:`enable` did: the plugin's settings now and before (``None``: it was off), the
    plugins it switched on with it, and those whose settings it raised to its floors."""

    settings: dict[str, Any]
    old: dict[str, Any] | None
    also_enabled: list[str]
    raised: list[str]


def _row(session: Session, tenant_id: int, name: str) -> TenantPlugin | None:
    return session.scalar(
        select(TenantPlugin).where(
            TenantPlugin.tenant_id == tenant_id, TenantPlugin.plugin_name == name
        )
    )


def _lock_tenant(session: Session, tenant_id: int) -> None:
    # SQLite's write transaction already holds the database's lock; PostgreSQL needs the row's,
    # or two changes could each pass the rules against a state without the other.
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


def _bump(session: Session, tenant_id: int) -> None:
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(plugins_version=Tenant.plugins_version + 1)
    )


def _store(
    session: Session,
    tenant_id: int,
    name: str,
    enabled: bool,
    settings: Mapping[str, Any],
    now: datetime,
) -> None:
    row = _row(session, tenant_id, name)
    if row is None:
        row = TenantPlugin(tenant_id=tenant_id, plugin_name=name)
        session.add(row)
    row.enabled, row.settings, row.updated_at = enabled, json.dumps(settings), now


def enable(
    app: Flask,
    tenant_id: int,
    name: str,
    values: Mapping[str, Any],
    now: datetime,
    *,
    actor: str = "cli",
    ip: str | None = None,
    expect_enabled: bool | None = None,
) -> Enabled:
    """Enable ``name`` (or update its settings when it is on), with what it requires.

    Raises :class:`UnknownPlugin`, :class:`~bookwell.core.pluginhost.rules.RuleBroken` or
    :class:`~bookwell.core.pluginhost.settings.InvalidSettings` (also when the plugin's own
    ``check_settings`` refuses); then nothing changed. With ``expect_enabled``, raises
    :class:`StateChanged` (changing nothing) unless the plugin is on, or off, as expected.
    """
    host = host_of(app)
    if name not in host.installed:
        raise UnknownPlugin(f"no plugin named {name!r} is installed")
    checks = plugin_rules.SettingsChecks(host, tenant_id, now)
    try:
        with db.fresh_session(app) as reader:
            unlocked = plugin_rules.plan_enable(
                host, tenant_plugins(reader, tenant_id), name, values
            )
    except (plugin_rules.RuleBroken, plugin_settings.InvalidSettings):
        pass  # decided below, under the lock
    else:
        checks.ask(_changed_settings(unlocked))
    with db.write_transaction(app) as session:
        _lock_tenant(session, tenant_id)
        state = tenant_plugins(session, tenant_id)
        if expect_enabled is not None and state.get(name, (False, {}))[0] != expect_enabled:
            raise StateChanged(name)
        plan = plugin_rules.plan_enable(host, state, name, values)
        checks.enforce(name, _changed_settings(plan))
        changed = [step for step in plan.steps if step.old != step.new]
        for step in changed:
            _store(session, tenant_id, step.name, True, step.new, now)
        if changed:
            _bump(session, tenant_id)
        session.flush()
        for step in changed:
            details: dict[str, Any] = {"old": step.old, "new": step.new}
            if step.because is not None:
                details[step.because[0]] = step.because[1]
            audit.record(
                session,
                tenant_id=tenant_id,
                actor=actor,
                ip=ip,
                action="plugin.enabled" if step.old is None else "plugin.settings_changed",
                subject=f"plugin:{step.name}",
                details=details,
                now=now,
            )
    host.forget_request_state()
    if changed:
        _changed(app, tenant_id, now)
    requested = plan.requested
    return Enabled(requested.new, requested.old, plan.also_enabled, plan.raised)


def disable(
    app: Flask,
    tenant_id: int,
    name: str,
    now: datetime,
    *,
    values: Mapping[str, Any] | None = None,
    actor: str = "cli",
    ip: str | None = None,
    expect_enabled: bool | None = None,
) -> bool:
    """Switch ``name`` off; its settings (with ``values`` merged in) are kept for next time.
    Returns whether it was on. A plugin an enabled plugin requires is refused
    (:class:`~bookwell.core.pluginhost.rules.PluginRequired`); with ``expect_enabled``, a
    plugin not in that state (:class:`StateChanged`)."""
    host = host_of(app)
    checks = plugin_rules.SettingsChecks(host, tenant_id, now)
    if values and name in host.installed:
        try:
            with db.fresh_session(app) as reader:
                saved = tenant_plugins(reader, tenant_id).get(name, (False, {}))[1]
            checks.ask([(name, plugin_settings.validate(host.manifest(name), values, saved))])
        except (LookupError, plugin_settings.InvalidSettings):
            pass  # decided below, under the lock
    with db.write_transaction(app) as session:
        _lock_tenant(session, tenant_id)
        state = tenant_plugins(session, tenant_id)
        if name not in host.installed and name not in state:
            raise UnknownPlugin(f"no plugin named {name!r} is installed")
        enabled, saved = state.get(name, (False, {}))
        if expect_enabled is not None and enabled != expect_enabled:
            raise StateChanged(name)
        settings = dict(saved)
        if values:
            settings = plugin_settings.validate(host.manifest(name), values, saved)
            if settings != saved:
                checks.enforce(name, [(name, settings)])
        if enabled:
            plugin_rules.check_disable(host, state, name)
        if not enabled and settings == saved:
            return False
        _store(session, tenant_id, name, False, settings, now)
        _bump(session, tenant_id)
        session.flush()
        if enabled:
            action, details = "plugin.disabled", {"settings": settings}
        else:
            action, details = "plugin.settings_changed", {"old": saved, "new": settings}
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            ip=ip,
            action=action,
            subject=f"plugin:{name}",
            details=details,
            now=now,
        )
    host.forget_request_state()
    _changed(app, tenant_id, now)
    return enabled


def save_settings(
    app: Flask,
    tenant_id: int,
    name: str,
    values: Mapping[str, Any],
    now: datetime,
    *,
    actor: str = "cli",
    ip: str | None = None,
) -> Enabled | None:
    """Change ``name``'s settings and leave it on or off as it is: an enabled plugin's through
    :func:`enable` (its rules and floors apply), a disabled one's are kept for when it is switched
    on (as :func:`disable` keeps them). Returns what :func:`enable` did, or ``None`` when the
    plugin is off. Raises what those raise."""
    for _ in range(3):
        with db.fresh_session(app) as reader:
            enabled = tenant_plugins(reader, tenant_id).get(name, (False, {}))[0]
        # Checked again under the lock: a switch made meanwhile is never undone.
        try:
            if enabled:
                return enable(
                    app, tenant_id, name, values, now, actor=actor, ip=ip, expect_enabled=True
                )
            disable(
                app, tenant_id, name, now, values=values, actor=actor, ip=ip, expect_enabled=False
            )
            return None
        except StateChanged:
            continue
    raise StateChanged(name)


def _changed_settings(plan: plugin_rules.Plan) -> list[tuple[str, dict[str, Any]]]:
    """The settings a plan would save, per plugin: those its own ``check_settings`` judges."""
    return [(step.name, step.new) for step in plan.steps if step.old != step.new]


def tenant_plugins(session: Session, tenant_id: int) -> dict[str, tuple[bool, dict[str, Any]]]:
    rows = session.execute(
        select(TenantPlugin.plugin_name, TenantPlugin.enabled, TenantPlugin.settings).where(
            TenantPlugin.tenant_id == tenant_id
        )
    )
    return {name: (enabled, json.loads(settings)) for name, enabled, settings in rows}


# --- how plugins are listed ----------------------------------------------------------------------


def describe(plugin: InstalledPlugin) -> dict[str, Any]:
    """One installed plugin, as ``plugins list --json`` prints it. Its texts are read here, in
    the language of the request (English in the API and on the command line), so that the
    entry is plain JSON whether the plugin wrote them as strings or ``lazy_gettext``."""
    manifest = plugin.manifest
    entry: dict[str, Any] = {
        "name": plugin.name,
        "title": str(manifest.title) if manifest else plugin.name,
        "description": str(manifest.description) if manifest else "",
        "category": manifest.category if manifest else "",
        "version": manifest.version if manifest else "",
        "author": manifest.author if manifest else "",
        "source": plugin.source,
        "status": plugin.status,
    }
    if plugin.error:
        entry["error"] = plugin.error
    entry["requires"] = list(manifest.requires) if manifest else []
    entry["conflicts"] = list(manifest.conflicts) if manifest else []
    entry["needs"] = list(manifest.needs) if manifest else []
    entry["breaks"] = list(manifest.breaks) if manifest else []
    entry["settings_schema"] = [
        {
            **asdict(setting),
            "label": str(setting.label),
            "help": str(setting.help),
            "choices": list(setting.choices),
        }
        for setting in (manifest.settings if manifest else ())
    ]
    return entry


def listing(
    host: PluginHost,
    session: Session | None = None,
    tenant_id: int | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every installed plugin by name; for a tenant (``session``, ``tenant_id`` and ``now``)
    also whether it is on, its settings and its failures of the last 24 hours."""
    state: Mapping[str, tuple[bool, Mapping[str, Any]]] = {}
    failures: Mapping[str, Any] = {}
    if session is not None and tenant_id is not None and now is not None:
        state = tenant_plugins(session, tenant_id)
        failures = plugin_health.recent_failures(session, tenant_id, now - RECENT)
    entries = []
    for name in sorted(host.installed):
        plugin = host.installed[name]
        entry = describe(plugin)
        if tenant_id is not None:
            enabled, saved = state.get(name, (False, {}))
            defaults = plugin_settings.defaults(plugin.manifest) if plugin.manifest else {}
            entry["enabled"] = enabled
            entry["settings"] = {**defaults, **saved}
            failure = failures.get(name)
            entry["recent_errors"] = {
                "count": failure.count if failure else 0,
                "last_message": failure.last_message if failure else None,
                "last_at": failure.last_at.isoformat() if failure else None,
            }
        entries.append(entry)
    return entries
