"""Loading plugins and calling their hooks for one tenant.

Built-in and third-party plugins load the same way, from the ``bookwell.plugins`` entry points.
pluggy's own ``pm.hook.x()`` is not used to call hooks: it stops at the first exception and knows
nothing of tenants, so a small runner walks the implementations itself, skips plugins the tenant
has not enabled, hands each its own settings, and contains failures (guards fail closed).
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import importlib.resources
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pluggy
from flask import Flask, current_app, g, has_app_context
from flask_babel import force_locale, get_locale, lazy_gettext
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bookwell.core.pluginhost import settings as plugin_settings
from bookwell.core.storage.models import Tenant, TenantPlugin
from bookwell.hooks import GUARDS, Context, Manifest, Redirect, Refusal, specs

log = logging.getLogger("bookwell.plugins")
EXTENSION = "bookwell.plugins"
# Built once: asked on every request that names a tenant.
_PLUGINS_VERSION = select(Tenant.plugins_version).where(Tenant.id == bindparam("tenant_id"))
ENTRY_POINT_GROUP = "bookwell.plugins"
BUILT_IN_PREFIX = "bookwell.plugins."


@dataclass
class InstalledPlugin:
    name: str
    source: str  # "built-in" or the distribution it came from
    manifest: Manifest | None = None
    error: str | None = None
    # What failed, for a plugin broken at start: "migrations" (so that a schema upgrade reports
    # it), "routes", ...; None for one that failed to import or has a bad manifest.
    failed_in: str | None = None

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

    def __init__(
        self,
        guard_timeout: float = 2.0,
        blocked: Iterable[str] = (),
        schedule_timeout: float = 300.0,
        app: Flask | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager("bookwell")
        self.pm.add_hookspecs(specs)
        self.guard_timeout = guard_timeout
        self.schedule_timeout = schedule_timeout
        self.app = app
        self.blocked = frozenset(blocked)
        self.installed: dict[str, InstalledPlugin] = {}
        self._cache: dict[int, _TenantCache] = {}
        self._cache_lock = threading.Lock()
        # Per plugin, its calls still running past their time limit (see _start).
        self._stuck: dict[str, int] = {}
        # Per hook, its implementations in calling order with their plugin's name; pluggy's
        # get_name walks every plugin, so it is asked once per hook, not once per call.
        self._ordered: dict[str, list[tuple[str, Any]]] = {}
        self._failures: list[tuple] = []
        # Every hook call runs here so that an overrunning one can be abandoned: a hung thread
        # is lost (and its plugin capped at MAX_STUCK_CALLS of them), but the page goes on.
        self._pool = _DaemonThreadPool(max_workers=64, thread_name_prefix=HOOK_THREADS)

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
        self._ordered.clear()
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except Exception as error:  # pluggy's validation: unknown hook or wrong arguments
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            return self._mark_broken(name, source, f"invalid hook implementation: {error}")
        problem = self._migrations_problem(module)
        if problem is not None:
            self.pm.unregister(module)
            return self._mark_broken(name, source, problem, failed_in="migrations")
        if "-" in name:
            log.warning(
                "plugin %s: hyphens in plugin names are deprecated; name it %s",
                name,
                name.replace("-", "_"),
            )
        plugin = InstalledPlugin(name, source, manifest)
        self.installed[name] = plugin
        return plugin

    def forget(self, name: str | None) -> None:
        """Unregister the plugin called ``name``, if one is, so another may take its name."""
        if name is None or name not in self.installed:
            return
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        del self.installed[name]
        self._ordered.clear()

    def _migrations_problem(self, module: Any) -> str | None:
        """Why the plugin's ``migrations`` hook cannot give its tables, if it cannot: it raises,
        answers something other than a script location, or names a folder with no ``env.py``
        (often: a package whose wheel left the migrations out)."""
        for implementation in self.pm.hook.migrations.get_hookimpls():
            if implementation.plugin is not module:
                continue
            try:
                location = implementation.function()
            except Exception as error:
                log.debug("plugin's migrations hook failed", exc_info=True)
                return f"migrations failed: {error!r}"
            if location is None:
                return None
            if not isinstance(location, str | os.PathLike) or not str(location).strip():
                return f"migrations returned {location!r}, not a script location"
            if not _has_env_py(str(location)):
                return f"migrations: {str(location)!r} is not a folder with an env.py"
        return None

    def _mark_broken(
        self, name: str, source: str, error: str, failed_in: str | None = None
    ) -> InstalledPlugin:
        log.warning("plugin %s is broken: %s", name, error)
        plugin = InstalledPlugin(name, source, error=error, failed_in=failed_in)
        self.installed[name] = plugin
        return plugin

    def mark_broken(self, name: str, error: str, *, failed_in: str) -> InstalledPlugin:
        """Take a plugin that loaded but then failed at start (its pages, its migrations) out of
        every tenant's calls, as if it had failed to load: its hooks are unregistered, and a
        tenant that enabled it has its guards fail closed (:meth:`broken_enabled_for`)."""
        installed = self.installed.get(name)
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self._ordered.clear()
        with self._cache_lock:
            self._cache.clear()
        source = installed.source if installed is not None else "unknown"
        return self._mark_broken(name, source, error, failed_in)

    def manifest(self, name: str) -> Manifest:
        plugin = self.installed.get(name)
        if plugin is None:
            raise KeyError(name)
        if plugin.manifest is None:
            raise LookupError(f"plugin {name} is broken: {plugin.error}")
        return plugin.manifest

    # --- per-tenant state --------------------------------------------------------------------

    def state_for(
        self, session: Session, tenant_id: int, *, known_version: int | None = None
    ) -> _TenantCache:
        """The tenant's enabled plugins, their settings and which of them are broken; cached
        per process until the tenant's version changes, and asked once per request.

        ``known_version`` is the tenant's ``plugins_version`` as the caller has just read it
        with the tenant's row, in this request: the version is then not read a second time
        (a request's first check; any later one in the request reads the memo, or, after
        :meth:`forget_request_state`, the database)."""
        memo = g.setdefault("plugin_states", {}) if has_app_context() else {}
        if tenant_id in memo:
            return memo[tenant_id]
        if known_version is not None:
            version = known_version
        else:
            version = session.scalar(_PLUGINS_VERSION, {"tenant_id": tenant_id})
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

    def enabled_for(
        self, session: Session, tenant_id: int, *, known_version: int | None = None
    ) -> dict[str, Mapping[str, Any]]:
        """The tenant's enabled (and working) plugins with their settings."""
        return self.state_for(session, tenant_id, known_version=known_version).settings

    def broken_enabled_for(self, session: Session, tenant_id: int) -> list[str]:
        """Plugins the tenant enabled that are broken: their guards must fail closed."""
        return self.state_for(session, tenant_id).broken

    def forget_request_state(self) -> None:
        """After a change within this request, let the next call read the new state."""
        if has_app_context():
            g.pop("plugin_states", None)

    # --- running -----------------------------------------------------------------------------

    def _implementations(self, hook: str, enabled: Mapping[str, Mapping[str, Any]]):
        ordered = self._ordered.get(hook)
        if ordered is None:
            caller = getattr(self.pm.hook, hook)
            # pluggy calls the last registered first (tryfirst/trylast respected): mirror it.
            ordered = [
                (self.pm.get_name(implementation.plugin), implementation)
                for implementation in reversed(caller.get_hookimpls())
            ]
            self._ordered[hook] = ordered
        for name, implementation in ordered:
            if name in enabled:
                yield name, implementation

    def _arguments(self, implementation: Any, available: Mapping[str, Any]) -> dict[str, Any]:
        return {name: available[name] for name in implementation.argnames}

    def timeout_for(self, hook: str) -> float:
        return self.schedule_timeout if hook == "on_schedule" else self.guard_timeout

    def _start(self, name: str, implementation: Any, available: Mapping[str, Any]):
        """Run one implementation on the hook pool, inside the app's context. Returns its
        future, or ``None`` when the plugin already has too many calls that never came back:
        a hung plugin then costs nothing more, and cannot use up the threads other plugins
        (and other tenants) need."""
        with self._cache_lock:
            if self._stuck.get(name, 0) >= MAX_STUCK_CALLS:
                return None
        function = implementation.function
        arguments = self._arguments(implementation, available)
        if isinstance(arguments.get("ctx"), Context):
            # Each plugin gets its own store, secrets, tables, files and audit (see
            # bookwell.core.context.tools): bound here, where the plugin is known.
            arguments["ctx"] = arguments["ctx"].for_plugin(name)
        app = self.app
        # Only calls past their time limit count against the plugin: a busy plugin whose calls
        # all return in time (twenty logins at once, say) is never refused for being busy.
        call_state = _CallState(name)
        # The hook's thread has the app's context, not the request's: it is handed the language
        # of the caller (the page's, English in the API, the one a mail is forced to), so that
        # what a plugin writes with gettext reads as the page or the mail around it.
        language = str(get_locale() or "") if has_app_context() else ""

        def call():
            try:
                _in_hook_thread.active = True
                if app is None:
                    return function(**arguments)
                with app.app_context():
                    if not language:
                        return function(**arguments)
                    with force_locale(language):
                        return function(**arguments)
            finally:
                with self._cache_lock:
                    call_state.done = True
                    if call_state.stuck:
                        self._stuck[name] -= 1

        future = self._pool.submit(call)
        future.bookwell_call = call_state
        return future

    def _mark_stuck(self, future) -> None:
        call_state = getattr(future, "bookwell_call", None)
        if call_state is None:
            return
        with self._cache_lock:
            if not call_state.done and not call_state.stuck:
                call_state.stuck = True
                self._stuck[call_state.plugin] = self._stuck.get(call_state.plugin, 0) + 1

    def _finish(
        self,
        name: str,
        hook: str,
        ctx: Context | None,
        future,
        deadline: float,
        *,
        quiet: bool = False,
        **noted: Any,
    ):
        """Wait for one call; returns ``(answer, failure)`` where ``failure`` says how it went
        wrong (and is logged and counted, with ``noted`` for a call without ``ctx``, unless
        ``quiet``: the caller already told of this plugin's failure), or ``None``."""
        if future is None:
            failure = "is not responding"
            if not quiet:
                log.error("plugin %s: %s skipped; earlier calls never returned", name, hook)
        else:
            try:
                return future.result(timeout=max(0.0, deadline - time.monotonic())), None
            except concurrent.futures.TimeoutError:
                self._mark_stuck(future)
                failure = "took too long"
                if not quiet:
                    log.error("plugin %s: %s ran past %.1fs", name, hook, self.timeout_for(hook))
            except Exception as error:
                failure = "failed"
                if not quiet:
                    log.error("plugin %s: %s raised", name, hook, exc_info=error)
                    self.note_failure(ctx, name, hook, f"raised {error!r}", **noted)
                return None, failure
        if not quiet:
            self.note_failure(ctx, name, hook, failure, **noted)
        return None, failure

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
        available = {"ctx": ctx, **arguments}
        pending = [
            (name, self._start(name, implementation, {**available, "settings": enabled[name]}))
            for name, implementation in self._implementations(hook, enabled)
        ]
        for name, future in pending:
            answer, failure = self._finish(name, hook, ctx, future, deadline)
            if failure is not None:
                refusals.append(PluginRefusal(name, _failed(name, failure)))
            elif isinstance(answer, Refusal) or (
                hook == "before_request" and isinstance(answer, Redirect)
            ):
                refusals.append(PluginRefusal(name, answer))
            elif answer is not None:
                log.error("plugin %s: %s returned %r, not a Refusal; refused", name, hook, answer)
                self.note_failure(ctx, name, hook, f"returned {type(answer).__name__}")
                refusals.append(PluginRefusal(name, _failed(name, "answered nonsense")))
        if refusals:
            self._tell_refusals(hook, ctx, enabled, refusals)
            raise Refused(refusals)

    def _tell_refusals(
        self,
        hook: str,
        ctx: Context,
        enabled: Mapping[str, Mapping[str, Any]],
        refusals: list[PluginRefusal],
    ) -> None:
        """``after_refusal``: every enabled plugin hears of each refusal (``plugin_failed``
        included: a safety check that cannot run is worth knowing of), all at once, like any
        event. Never from inside a hook call, so a listener that makes a guard refuse cannot
        start a loop; and nothing here can change the refusal, which stands whatever happens."""
        if getattr(_in_hook_thread, "active", False):
            return
        try:
            listeners = list(self._implementations("after_refusal", enabled))
            if not listeners:
                return
            deadline = time.monotonic() + self.timeout_for("after_refusal")
            started = []
            for item in refusals:
                code = getattr(item.refusal, "code", None)
                if code is None:
                    continue  # a Redirect sends the browser elsewhere; it refuses nothing
                told = {"ctx": ctx, "hook": hook, "code": code, "plugin": item.plugin}
                for name, implementation in listeners:
                    arguments = {**told, "settings": enabled[name]}
                    started.append((name, self._start(name, implementation, arguments)))
            for name, future in started:
                self._finish(name, "after_refusal", ctx, future, deadline)
        except Exception:
            log.exception("after_refusal could not be told of a refusal of %s", hook)

    def event(
        self, hook: str, ctx: Context, enabled: Mapping[str, Mapping[str, Any]], **arguments: Any
    ) -> None:
        """Tell every enabled plugin; one that fails or overruns is logged, counted and left
        behind, and the others still hear of it. Like guards, all of a hook's events start at
        once (the hand-off to a thread is most of their cost) and are waited for together."""
        available = {"ctx": ctx, **arguments}
        deadline = time.monotonic() + self.timeout_for(hook)
        started = [
            (name, self._start(name, implementation, {**available, "settings": enabled[name]}))
            for name, implementation in self._implementations(hook, enabled)
        ]
        for name, future in started:
            self._finish(name, hook, ctx, future, deadline)

    def contributions(
        self, hook: str, ctx: Context, enabled: Mapping[str, Mapping[str, Any]], **arguments: Any
    ) -> list[tuple[str, Any]]:
        """Each enabled plugin's non-``None`` answer, with its name. A failure (or overrun) is
        logged and raised as :class:`PluginFailed`: a contribution that cannot be computed must
        not be silently dropped; the caller decides what that means."""
        answers = []
        available = {"ctx": ctx, **arguments}
        for name, implementation in self._implementations(hook, enabled):
            deadline = time.monotonic() + self.timeout_for(hook)
            future = self._start(name, implementation, {**available, "settings": enabled[name]})
            answer, failure = self._finish(name, hook, ctx, future, deadline)
            if failure is not None:
                raise PluginFailed(name, hook, failure)
            if answer is not None:
                answers.append((name, answer))
        return answers

    def start_each(
        self,
        hook: str,
        ctx: Context,
        enabled: Mapping[str, Mapping[str, Any]],
        calls: Sequence[Mapping[str, Any]],
    ) -> Callable[[], list[tuple[str, int, Any, str | None]]]:
        """Start ``hook`` of every enabled plugin once for each argument set in ``calls``, all
        at once, and return without waiting: the caller does its own work meanwhile (a query),
        then calls the result for ``(plugin, index in calls, answer, failure)`` of each call.
        One time limit covers them all; a plugin failing in several calls is logged and counted
        once."""
        deadline = time.monotonic() + self.timeout_for(hook)
        started = [
            (
                name,
                index,
                self._start(
                    name, implementation, {"ctx": ctx, **arguments, "settings": enabled[name]}
                ),
            )
            for name, implementation in self._implementations(hook, enabled)
            for index, arguments in enumerate(calls)
        ]

        def collect() -> list[tuple[str, int, Any, str | None]]:
            failed: set[str] = set()
            results = []
            for name, index, future in started:
                # Every call is waited for, within the one deadline, so that a hung one is
                # counted against its plugin (and its thread not lost unnoticed).
                answer, failure = self._finish(
                    name, hook, ctx, future, deadline, quiet=name in failed
                )
                if failure is not None:
                    failed.add(name)
                results.append((name, index, answer, failure))
            return results

        return collect

    def check_settings(
        self,
        name: str,
        settings: Mapping[str, Any],
        *,
        tenant_id: int | None = None,
        now: datetime | None = None,
    ) -> dict[str, str]:
        """``name``'s own ``check_settings`` answer for ``settings`` (each value already valid):
        ``{key: message}`` for each field at fault; empty when it has no such hook or finds
        nothing. It runs like every hook, on the pool within the guard time limit. One that
        raises, overruns, is not responding or answers anything but messages keyed by its own
        settings raises :class:`PluginFailed`, logged and counted for ``tenant_id``: settings
        that could not be checked must not be saved."""
        hook = "check_settings"
        keys = {setting.key for setting in self.manifest(name).settings}
        # A copy the plugin cannot change: what it was shown is what gets saved.
        shown = MappingProxyType(json.loads(json.dumps(dict(settings))))
        problems: dict[str, str] = {}
        for _, implementation in self._implementations(hook, {name: shown}):
            future = self._start(name, implementation, {"settings": shown})
            deadline = time.monotonic() + self.guard_timeout
            answer, failure = self._finish(
                name, hook, None, future, deadline, tenant_id=tenant_id, at=now
            )
            if failure is not None:
                raise PluginFailed(name, hook, failure)
            if answer is None:
                continue
            if not (
                isinstance(answer, Mapping)
                and all(key in keys for key in answer)
                and all(isinstance(message, str) and message.strip() for message in answer.values())
            ):
                log.error("plugin %s: %s returned %r, not {setting: message}", name, hook, answer)
                self.note_failure(
                    None, name, hook, f"answered {answer!r:.200}", tenant_id=tenant_id, at=now
                )
                raise PluginFailed(name, hook, "answered nonsense")
            problems.update({key: message.strip()[:500] for key, message in answer.items()})
        return problems

    # --- failures, for the marketplace ------------------------------------------------------

    def note_failure(
        self,
        ctx: Context | None,
        plugin: str,
        hook: str,
        message: str,
        *,
        tenant_id: int | None = None,
        at: datetime | None = None,
    ) -> None:
        """Remember a plugin's failure; :meth:`flush_failures` stores it once no transaction
        of the caller's is open (a request's end, a job's end). A hook called without a
        context (``check_settings``) names its tenant and time itself."""
        if ctx is not None:
            tenant_id = getattr(getattr(ctx, "tenant", None), "id", None)
            at = getattr(ctx, "now", None)
        with self._cache_lock:
            if len(self._failures) < MAX_BUFFERED_FAILURES:
                self._failures.append((tenant_id, plugin, hook, message[:1000], at))

    def flush_failures(self) -> None:
        """Write the failures noted so far in a transaction of their own; never raises."""
        if not self._failures or self.app is None or getattr(_in_hook_thread, "active", False):
            return
        with self._cache_lock:
            noted, self._failures = self._failures, []
        try:
            from bookwell.core.pluginhost import health as plugin_health

            plugin_health.store(self.app, noted)
        except Exception:
            log.exception("could not store %d plugin failures", len(noted))


MAX_STUCK_CALLS = 4  # per plugin: calls still running past their time before it is skipped
HOOK_THREADS = "bookwell-hook"  # the name of every thread hooks run in, then _1, _2, ...
MAX_BUFFERED_FAILURES = 1000
_in_hook_thread = threading.local()


class _DaemonThreadPool:
    """``ThreadPoolExecutor.submit`` without its join at exit. concurrent.futures joins its
    threads when the interpreter exits, so a single hook call stuck in a plugin held a stopping
    server until the call returned (or gunicorn killed the worker). These threads are daemons:
    the process exits without waiting for them. Idle threads are reused, as the stdlib's are."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._work: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]]
        self._work = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = 0

    def submit(self, function: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._work.put((future, function))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._threads < self._max_workers:
                    self._threads += 1
                    threading.Thread(
                        target=self._serve, name=f"{self._prefix}_{self._threads}", daemon=True
                    ).start()
        return future

    def _serve(self) -> None:
        while True:
            future, function = self._work.get()
            if future.set_running_or_notify_cancel():
                try:
                    result = function()
                except BaseException as error:  # handed to whoever waits on the future
                    future.set_exception(error)
                else:
                    future.set_result(result)
            del future, function  # hold no answer while idle
            self._idle.release()


@dataclass
class _CallState:
    """One hook call on the pool: whether it has returned, and whether it overran (counted in
    ``PluginHost._stuck`` until it returns)."""

    plugin: str
    done: bool = False
    stuck: bool = False


class PluginFailed(Exception):
    def __init__(self, plugin: str, hook: str, how: str = "failed") -> None:
        super().__init__(f"plugin {plugin} {how} in {hook}")
        self.plugin, self.hook, self.how = plugin, hook, how


def refused_by_failure(name: str, what: str) -> Refused:
    """The refusal for a needed contribution of plugin ``name`` that failed (``what``): the
    same ``plugin_failed`` a failing guard gives, so every door answers it alike."""
    return Refused([PluginRefusal(name, _failed(name, what))])


# How a check failed, each as a whole sentence for the catalogue; written when the guard runs,
# in the language of the request that asked (English in the API and on the command line).
_FAILED_SENTENCES = {
    "is not working": lazy_gettext(
        "A safety check (%(plugin)s) is not working, so this was refused. Please try again later."
    ),
    "is not responding": lazy_gettext(
        "A safety check (%(plugin)s) is not responding, so this was refused. "
        "Please try again later."
    ),
    "took too long": lazy_gettext(
        "A safety check (%(plugin)s) took too long, so this was refused. Please try again later."
    ),
    "failed": lazy_gettext(
        "A safety check (%(plugin)s) failed, so this was refused. Please try again later."
    ),
    "answered nonsense": lazy_gettext(
        "A safety check (%(plugin)s) answered nonsense, so this was refused. "
        "Please try again later."
    ),
}


def _failed(name: str, what: str) -> Refusal:
    sentence = _FAILED_SENTENCES.get(what)
    return Refusal(
        str(sentence) % {"plugin": name}
        if sentence is not None
        else f"A safety check ({name}) {what}, so this was refused. Please try again later.",
        code="plugin_failed",
        status=503,
    )


def _source_of(entry_point: importlib.metadata.EntryPoint) -> str:
    if entry_point.value.startswith(BUILT_IN_PREFIX):
        return "built-in"
    distribution = getattr(entry_point, "dist", None)
    return distribution.name if distribution is not None else entry_point.value.split(":")[0]


def _has_env_py(location: str) -> bool:
    """Whether an Alembic script location (a path, or ``package:folder`` as Alembic reads it)
    is a folder holding ``env.py``."""
    if ":" in location and not os.path.isabs(location):
        package, _, folder = location.partition(":")
        try:
            return importlib.resources.files(package).joinpath(folder, "env.py").is_file()
        except (ImportError, TypeError, ValueError):
            return False
    return (Path(location) / "env.py").is_file()


# Lowercase letters, digits and underscores; hyphens are still loaded, with a warning, because
# plugins named before the rule used them (their tables are prefixed with underscores anyway).
PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]*")


def _manifest_problem(manifest: Any, name: str) -> str | None:
    if not isinstance(manifest, Manifest):
        return "has no MANIFEST = Manifest(...)"
    if manifest.name != name:
        return f"its manifest is named {manifest.name!r} but it is installed as {name!r}"
    if not PLUGIN_NAME.fullmatch(name):
        return f"its name {name!r} is not lowercase letters, digits and underscores"
    for text_field in ("title", "description", "version", "category"):
        if not getattr(manifest, text_field):
            return f"its manifest has no {text_field}"
    keys = [setting.key for setting in manifest.settings]
    if len(keys) != len(set(keys)):
        return "its manifest declares a setting twice"
    for setting in manifest.settings:
        if setting.type == "choice" and not setting.choices:
            return f"setting {setting.key!r} is a choice with no choices"
        if setting.choices and setting.type not in ("choice", "list"):
            return f"setting {setting.key!r} has choices, but only a choice or a list can"
        if setting.type == "list" and any(
            not isinstance(choice, str) or choice != choice.strip() or not choice or "," in choice
            for choice in setting.choices
        ):
            # Items are trimmed, and split at commas on the command line and in the form.
            return f"setting {setting.key!r} has a choice that is empty, padded or has a comma"
        try:
            plugin_settings.check_value(setting, setting.default)
        except ValueError as error:
            return f"setting {setting.key!r} has a bad default: {error}"
    return None


def blocked_by_environment() -> list[str]:
    """The plugins named in ``BOOKWELL_DISABLED_PLUGINS`` (comma-separated): never loaded."""
    return [
        name.strip()
        for name in os.environ.get("BOOKWELL_DISABLED_PLUGINS", "").split(",")
        if name.strip()
    ]


def init_app(app: Flask) -> None:
    blocked = blocked_by_environment() + list(app.config.get("DISABLED_PLUGINS", ()))
    host = PluginHost(
        float(app.config["GUARD_TIMEOUT_SECONDS"]),
        blocked,
        schedule_timeout=float(app.config["SCHEDULE_TIMEOUT_SECONDS"]),
        app=app,
    )
    if app.config.get("LOAD_ENTRY_POINTS", True):  # off only for benchmarks' bare baseline
        host.load_entry_points()
    for module in app.config.get("EXTRA_PLUGINS", ()):
        # A module given to this app stands in for an installed plugin of the same name (a
        # test's own stand-in for a built-in plugin, or the plugin under test, installed too).
        host.forget(getattr(getattr(module, "MANIFEST", None), "name", None))
        host.add(module, source=getattr(module, "__name__", "test"))
    app.extensions[EXTENSION] = host

    @app.teardown_appcontext
    def store_plugin_failures(_error: BaseException | None) -> None:
        host.flush_failures()


def host_of(app: Flask | None = None) -> PluginHost:
    return (app or current_app).extensions[EXTENSION]
