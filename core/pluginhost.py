"""Loading plugins and calling their hooks for one tenant.

Built-in and third-party plugins load the same way, from the ``bookwell.plugins`` entry points.
pluggy's own ``pm.hook.x()`` is not used to call hooks: it stops at the first exception and knows
nothing of tenants, so a small runner walks the implementations itself, skips plugins the tenant
has not enabled, hands each its own settings, and contains failures (guards fail closed).
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pluggy
from flask import Flask, current_app, g, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from bookwell.hooks import GUARDS, Context, Manifest, Redirect, Refusal, specs

from . import plugin_settings
from .models import Tenant, TenantPlugin

log = logging.getLogger("bookwell.plugins")
EXTENSION = "bookwell.plugins"
ENTRY_POINT_GROUP = "bookwell.plugins"
BUILT_IN_PREFIX = "bookwell.plugins."


@dataclass
class InstalledPlugin:
    name: str
    source: str  # "built-in" or the distribution it came from
    manifest: Manifest | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        return "ok" if self.error is None else "broken"


@dataclass(frozen=True)
class PluginRefusal:
    plugin: str
    refusal: Refusal


class Refused(Exception):
    """One or more guards said no. ``refusals`` holds every one, in the order they ran."""

    def __init__(self, refusals: list[PluginRefusal]) -> None:
        super().__init__(
            "; ".join(getattr(item.refusal, "message", "redirect") for item in refusals)
        )
        self.refusals = refusals

    @property
    def first(self) -> Refusal:
        return self.refusals[0].refusal


@dataclass
class _TenantCache:
    version: int
    settings: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)


class PluginHost:
    """The app's plugin manager and runner; one per app, in ``app.extensions``."""

    def __init__(self, guard_timeout: float = 2.0, blocked: Iterable[str] = ()) -> None:
        self.pm = pluggy.PluginManager("bookwell")
        self.pm.add_hookspecs(specs)
        self.guard_timeout = guard_timeout
        self.blocked = frozenset(blocked)
        self.installed: dict[str, InstalledPlugin] = {}
        self._cache: dict[int, _TenantCache] = {}
        self._cache_lock = threading.Lock()
        # Guards run here so an overrunning one can be abandoned; a hung thread is lost, but the
        # request it guarded was refused, never let through.
        self._guard_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=32, thread_name_prefix="bookwell-guard"
        )

    # --- loading -----------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            source = _source_of(entry_point)
            if entry_point.name in self.blocked:
                self.pm.set_blocked(entry_point.name)
                continue
            try:
                module = entry_point.load()
            except Exception as error:  # a plugin that cannot import is listed, never fatal
                log.debug("plugin %s failed to import", entry_point.name, exc_info=True)
                self._mark_broken(entry_point.name, source, f"import failed: {error!r}")
                continue
            self.add(module, source=source, name=entry_point.name)

    def add(self, module: Any, *, source: str, name: str | None = None) -> InstalledPlugin:
        """Register one plugin module; a bad manifest or hook leaves it listed as broken."""
        manifest = getattr(module, "MANIFEST", None)
        name = name or getattr(manifest, "name", None) or getattr(module, "__name__", "?")
        problem = _manifest_problem(manifest, name)
        if problem is None and name in self.blocked:
            problem = "blocked by BOOKWELL_DISABLED_PLUGINS"
        if problem is not None:
            return self._mark_broken(name, source, problem)
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except Exception as error:  # pluggy's validation: unknown hook or wrong arguments
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            return self._mark_broken(name, source, f"invalid hook implementation: {error}")
        plugin = InstalledPlugin(name, source, manifest)
        self.installed[name] = plugin
        return plugin

    def _mark_broken(self, name: str, source: str, error: str) -> InstalledPlugin:
        log.warning("plugin %s is broken: %s", name, error)
        plugin = InstalledPlugin(name, source, error=error)
        self.installed[name] = plugin
        return plugin

    def manifest(self, name: str) -> Manifest:
        plugin = self.installed.get(name)
        if plugin is None:
            raise KeyError(name)
        if plugin.manifest is None:
            raise LookupError(f"plugin {name} is broken: {plugin.error}")
        return plugin.manifest

    # --- per-tenant state --------------------------------------------------------------------

    def state_for(self, session: Session, tenant_id: int) -> _TenantCache:
        """The tenant's enabled plugins, their settings and which of them are broken; cached
        per process until the tenant's version changes, and asked once per request."""
        memo = g.setdefault("plugin_states", {}) if has_app_context() else {}
        if tenant_id in memo:
            return memo[tenant_id]
        version = session.scalar(select(Tenant.plugins_version).where(Tenant.id == tenant_id))
        cached = self._cache.get(tenant_id)
        if cached is None or cached.version != (version or 0):
            cached = self._load_state(session, tenant_id, version or 0)
            with self._cache_lock:
                self._cache[tenant_id] = cached
        memo[tenant_id] = cached
        return cached

    def _load_state(self, session: Session, tenant_id: int, version: int) -> _TenantCache:
        rows = session.execute(
            select(TenantPlugin.plugin_name, TenantPlugin.settings).where(
                TenantPlugin.tenant_id == tenant_id, TenantPlugin.enabled.is_(True)
            )
        )
        state = _TenantCache(version)
        for name, raw in rows:
            plugin = self.installed.get(name)
            if plugin is None:
                continue  # uninstalled since: nothing of it can run
            if plugin.manifest is None:
                state.broken.append(name)  # enabled but broken: its guards must fail closed
                continue
            merged = {**plugin_settings.defaults(plugin.manifest), **json.loads(raw or "{}")}
            state.settings[name] = MappingProxyType(merged)
        return state

    def enabled_for(self, session: Session, tenant_id: int) -> dict[str, Mapping[str, Any]]:
        """The tenant's enabled (and working) plugins with their settings."""
        return self.state_for(session, tenant_id).settings

    def broken_enabled_for(self, session: Session, tenant_id: int) -> list[str]:
        """Plugins the tenant enabled that are broken: their guards must fail closed."""
        return self.state_for(session, tenant_id).broken

    def forget_request_state(self) -> None:
        """After a change within this request, let the next call read the new state."""
        if has_app_context():
            g.pop("plugin_states", None)

    # --- running -----------------------------------------------------------------------------

    def _implementations(self, hook: str, enabled: Mapping[str, Mapping[str, Any]]):
        caller = getattr(self.pm.hook, hook)
        # pluggy calls the last registered first (tryfirst/trylast respected): mirror that order.
        for implementation in reversed(caller.get_hookimpls()):
            name = self.pm.get_name(implementation.plugin)
            if name in enabled:
                yield name, implementation

    def _arguments(self, implementation: Any, available: Mapping[str, Any]) -> dict[str, Any]:
        return {name: available[name] for name in implementation.argnames}

    def guard(
        self,
        hook: str,
        ctx: Context,
        enabled: Mapping[str, Mapping[str, Any]],
        broken: Iterable[str] = (),
        **arguments: Any,
    ) -> None:
        """Ask every enabled plugin; raise :class:`Refused` with every refusal, if any."""
        assert hook in GUARDS, hook
        refusals = [PluginRefusal(name, _failed(name, "is not working")) for name in broken]
        # All guards start at once: a hand-off to a worker thread is the dominant cost of a
        # guard, so paying it in parallel rather than in turn keeps guards cheap. Each keeps its
        # own time limit; the answers are read back in the hook's order.
        deadline = time.monotonic() + self.guard_timeout
        pending = [
            (
                name,
                self._guard_pool.submit(
                    implementation.function,
                    **self._arguments(
                        implementation, {"ctx": ctx, "settings": enabled[name], **arguments}
                    ),
                ),
            )
            for name, implementation in self._implementations(hook, enabled)
        ]
        for name, call in pending:
            try:
                answer = call.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                log.error("plugin %s: %s ran past %.1fs; refused", name, hook, self.guard_timeout)
                refusals.append(PluginRefusal(name, _failed(name, "took too long")))
                continue
            except Exception:
                log.exception("plugin %s: %s raised; refused", name, hook)
                refusals.append(PluginRefusal(name, _failed(name, "failed")))
                continue
            if isinstance(answer, Refusal) or (
                hook == "before_request" and isinstance(answer, Redirect)
            ):
                refusals.append(PluginRefusal(name, answer))
            elif answer is not None:
                log.error("plugin %s: %s returned %r, not a Refusal; refused", name, hook, answer)
                refusals.append(PluginRefusal(name, _failed(name, "answered nonsense")))
        if refusals:
            raise Refused(refusals)

    def event(
        self, hook: str, ctx: Context, enabled: Mapping[str, Mapping[str, Any]], **arguments: Any
    ) -> None:
        """Tell every enabled plugin; a failure is logged and the others still hear of it."""
        for name, implementation in self._implementations(hook, enabled):
            available = {"ctx": ctx, "settings": enabled[name], **arguments}
            try:
                implementation.function(**self._arguments(implementation, available))
            except Exception:
                log.exception("plugin %s: %s failed (isolated; others went on)", name, hook)

    def contributions(
        self, hook: str, ctx: Context, enabled: Mapping[str, Mapping[str, Any]], **arguments: Any
    ) -> list[tuple[str, Any]]:
        """Each enabled plugin's non-``None`` answer, with its name. A failure is logged and
        re-raised: a contribution that cannot be computed must not be silently dropped."""
        answers = []
        for name, implementation in self._implementations(hook, enabled):
            available = {"ctx": ctx, "settings": enabled[name], **arguments}
            try:
                answer = implementation.function(**self._arguments(implementation, available))
            except Exception as error:
                log.exception("plugin %s: %s failed", name, hook)
                raise PluginFailed(name, hook) from error
            if answer is not None:
                answers.append((name, answer))
        return answers


class PluginFailed(Exception):
    def __init__(self, plugin: str, hook: str) -> None:
        super().__init__(f"plugin {plugin} failed in {hook}")
        self.plugin, self.hook = plugin, hook


def _failed(name: str, what: str) -> Refusal:
    return Refusal(
        f"A safety check ({name}) {what}, so this was refused. Please try again later.",
        code="plugin_failed",
        status=503,
    )


def _source_of(entry_point: importlib.metadata.EntryPoint) -> str:
    if entry_point.value.startswith(BUILT_IN_PREFIX):
        return "built-in"
    distribution = getattr(entry_point, "dist", None)
    return distribution.name if distribution is not None else entry_point.value.split(":")[0]


def _manifest_problem(manifest: Any, name: str) -> str | None:
    if not isinstance(manifest, Manifest):
        return "has no MANIFEST = Manifest(...)"
    if manifest.name != name:
        return f"its manifest is named {manifest.name!r} but it is installed as {name!r}"
    for text_field in ("title", "description", "version", "category"):
        if not getattr(manifest, text_field):
            return f"its manifest has no {text_field}"
    keys = [setting.key for setting in manifest.settings]
    if len(keys) != len(set(keys)):
        return "its manifest declares a setting twice"
    for setting in manifest.settings:
        if setting.type == "choice" and not setting.choices:
            return f"setting {setting.key!r} is a choice with no choices"
        try:
            plugin_settings.check_value(setting, setting.default)
        except ValueError as error:
            return f"setting {setting.key!r} has a bad default: {error}"
    return None


def init_app(app: Flask) -> None:
    blocked = [
        name.strip()
        for name in os.environ.get("BOOKWELL_DISABLED_PLUGINS", "").split(",")
        if name.strip()
    ]
    blocked += list(app.config.get("DISABLED_PLUGINS", ()))
    host = PluginHost(float(app.config["GUARD_TIMEOUT_SECONDS"]), blocked)
    if app.config.get("LOAD_ENTRY_POINTS", True):  # off only for benchmarks' bare baseline
        host.load_entry_points()
    for module in app.config.get("EXTRA_PLUGINS", ()):
        host.add(module, source=getattr(module, "__name__", "test"))
    app.extensions[EXTENSION] = host


def host_of(app: Flask | None = None) -> PluginHost:
    return (app or current_app).extensions[EXTENSION]
