"""The rules between plugins, decided here for the marketplace, the CLI and the API alike.

A manifest's ``requires`` switches other plugins on with it; ``conflicts`` (declared by either
side) keeps two plugins apart; a plugin that ``needs`` a capability cannot be on beside one that
``breaks`` it; ``floors`` holds a plugin's settings to a minimum while the plugin declaring them
is on. :func:`plan_enable` and :func:`check_disable` take the tenant's current state and either
say exactly what a change does or refuse it with a reason that names both plugins. Last, each
plugin's own ``check_settings`` judges the settings a change would save (:class:`SettingsChecks`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext, lazy_gettext

from bookwell.core.pluginhost import settings as plugin_settings
from bookwell.core.pluginhost.host import PluginFailed, PluginHost
from bookwell.hooks import Manifest

# A tenant's plugins as stored: name -> (enabled, saved settings).
TenantState = Mapping[str, tuple[bool, Mapping[str, Any]]]


class RuleBroken(Exception):
    """A change the rules refuse; ``code`` is the API's error code (HTTP 409)."""

    code = "plugin_conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PluginConflict(RuleBroken):
    """Two plugins that cannot be on together."""

    code = "plugin_conflict"


class PluginRequired(RuleBroken):
    """A plugin another one requires: it cannot be switched off, or cannot be switched on."""

    code = "plugin_required"


class PluginBroken(RuleBroken):
    """The plugin asked for is installed but broken, so it cannot be switched on."""

    code = "plugin_broken"


class SettingsCheckFailed(RuleBroken):
    """A plugin's own ``check_settings`` raised, overran or answered nonsense: settings nobody
    could check are not saved (security fails closed)."""

    code = "plugin_failed"


@dataclass(frozen=True)
class Step:
    """One plugin the change switches on or whose settings it changes.

    ``old`` is ``None`` when the plugin was off; ``because`` says why it is part of the change:
    ``None`` for the plugin asked for, else ``("required_by", name)`` or ``("floor_of", name)``.
    """

    name: str
    old: dict[str, Any] | None
    new: dict[str, Any]
    because: tuple[str, str] | None = None


@dataclass(frozen=True)
class Plan:
    """What enabling a plugin does, in order: what it requires first, itself last."""

    name: str
    steps: tuple[Step, ...]

    @property
    def requested(self) -> Step:
        return next(step for step in self.steps if step.name == self.name)

    @property
    def also_enabled(self) -> list[str]:
        return [s.name for s in self.steps if s.name != self.name and s.old is None]

    @property
    def raised(self) -> list[str]:
        """Plugins that were on and whose settings rose to a floor."""
        return [s.name for s in self.steps if s.name != self.name and s.old is not None]


def title_of(host: PluginHost, name: str) -> str:
    """The plugin's title, in the reader's language when it wrote it with ``lazy_gettext``."""
    plugin = host.installed.get(name)
    return str(plugin.manifest.title) if plugin is not None and plugin.manifest else name


# How a plugin's check of settings failed, each as a whole sentence for the catalogue.
_CHECK_FAILED = {
    "failed": lazy_gettext(
        "The settings check of %(plugin)s failed, so nothing was changed. "
        "Please try again later; if it goes on, tell the plugin's author."
    ),
    "took too long": lazy_gettext(
        "The settings check of %(plugin)s took too long, so nothing was changed. "
        "Please try again later; if it goes on, tell the plugin's author."
    ),
    "is not responding": lazy_gettext(
        "The settings check of %(plugin)s is not responding, so nothing was changed. "
        "Please try again later; if it goes on, tell the plugin's author."
    ),
    "answered nonsense": lazy_gettext(
        "The settings check of %(plugin)s answered nonsense, so nothing was changed. "
        "Please try again later; if it goes on, tell the plugin's author."
    ),
}


def _check_failed(title: str, how: str) -> str:
    sentence = _CHECK_FAILED.get(how)
    if sentence is None:
        return (
            f"The settings check of {title} {how}, so nothing was changed. "
            "Please try again later; if it goes on, tell the plugin's author."
        )
    return str(sentence) % {"plugin": title}


def _capability(name: str) -> str:
    return name.replace("_", " ").replace("-", " ")


def _working(host: PluginHost, name: str) -> Manifest | None:
    plugin = host.installed.get(name)
    return plugin.manifest if plugin is not None else None


def _on(host: PluginHost, state: TenantState) -> list[str]:
    """The tenant's enabled plugins that are installed and working (sorted, for stable reasons)."""
    return sorted(name for name, (enabled, _) in state.items() if enabled and _working(host, name))


def _switched_on(host: PluginHost, on: list[str], name: str) -> dict[str, str | None]:
    """``name`` and every plugin it requires, transitively, that is not on yet, each with the
    plugin that requires it; what is required comes first. A requirement that is not installed
    or is broken is refused."""
    order: dict[str, str | None] = {}
    seen: set[str] = set()

    def visit(current: str, required_by: str | None) -> None:
        if current in seen:
            return
        seen.add(current)
        plugin = host.installed.get(current)
        if plugin is None or plugin.manifest is None:
            asker = title_of(host, required_by or current)
            raise PluginRequired(
                gettext(
                    "%(plugin)s requires %(required)s, which is not installed.",
                    plugin=asker,
                    required=current,
                )
                if plugin is None
                else gettext(
                    "%(plugin)s requires %(required)s, which is broken (%(error)s).",
                    plugin=asker,
                    required=current,
                    error=plugin.error,
                )
            )
        for requirement in plugin.manifest.requires:
            visit(requirement, current)
        if current not in on:
            order[current] = required_by

    visit(name, None)
    return order


def _check_together(host: PluginHost, name: str, new: list[str], on: list[str]) -> None:
    """Refuse if any plugin switched on cannot be beside any plugin of the resulting set."""
    result = on + [other for other in new if other not in on]
    for first in new:
        one = host.manifest(first)
        why = (
            ""
            if first == name
            else " "
            + gettext(
                "(%(plugin)s requires %(required)s.)",
                plugin=title_of(host, name),
                required=one.title,
            )
        )
        for second in result:
            if second == first:
                continue
            other = host.manifest(second)
            if second in one.conflicts or first in other.conflicts:
                declarer, declared = (one, other) if second in one.conflicts else (other, one)
                raise PluginConflict(
                    gettext(
                        "%(one)s and %(other)s cannot be on together: "
                        "%(declarer)s conflicts with %(declared)s.",
                        one=one.title,
                        other=other.title,
                        declarer=declarer.title,
                        declared=declared.title,
                    )
                    + why
                )
            for user, breaker in ((one, other), (other, one)):
                for capability in user.needs:
                    if capability in breaker.breaks:
                        raise PluginConflict(
                            gettext(
                                "%(user)s needs %(capability)s, which %(breaker)s breaks.",
                                user=user.title,
                                capability=_capability(capability),
                                breaker=breaker.title,
                            )
                            + why
                        )


# --- floors ---------------------------------------------------------------------------------------


def meets_floor(value: Any, floor: Any) -> bool:
    """Whether ``value`` is at or above ``floor`` (see :class:`~bookwell.hooks.Manifest`)."""
    if isinstance(floor, bool):
        return value is True or not floor
    if isinstance(floor, int):
        return isinstance(value, int) and not isinstance(value, bool) and value >= floor
    if isinstance(floor, list | tuple):
        return isinstance(value, list) and all(item in value for item in floor)
    return value == floor


def raise_to_floor(value: Any, floor: Any) -> Any:
    if meets_floor(value, floor):
        return value
    if isinstance(floor, list | tuple):
        kept = list(value) if isinstance(value, list) else []
        return kept + [item for item in floor if item not in kept]
    return floor


def _floor_text(floor: Any) -> str:
    if isinstance(floor, bool):
        return gettext("must stay on")
    if isinstance(floor, int):
        return gettext("must be at least %(min)s", min=floor)
    if isinstance(floor, list | tuple):
        return gettext("must keep %(items)s", items=", ".join(str(item) for item in floor))
    return gettext("must be %(value)s", value=repr(floor))


def _hold_to_floors(
    host: PluginHost,
    name: str,
    settings: dict[str, Any],
    given: Mapping[str, Any],
    holders: list[str],
) -> dict[str, Any]:
    """``settings`` raised to every floor the ``holders`` set on ``name``; a value the user gave
    below one is refused field by field, naming the plugin that holds it."""
    manifest = host.manifest(name)
    labels = {setting.key: setting.label for setting in manifest.settings}
    problems: dict[str, str] = {}
    raised = dict(settings)
    for holder in holders:
        for key, floor in host.manifest(holder).floors.get(name, {}).items():
            if key not in labels:
                continue  # a floor on a setting the plugin no longer has holds nothing
            if key in given and not meets_floor(raised[key], floor):
                problems.setdefault(
                    key,
                    gettext(
                        "%(label)s %(rule)s while %(plugin)s is on.",
                        label=labels[key],
                        rule=_floor_text(floor),
                        plugin=title_of(host, holder),
                    ),
                )
            raised[key] = raise_to_floor(raised[key], floor)
    if problems:
        raise plugin_settings.InvalidSettings(problems)
    try:
        return plugin_settings.validate(manifest, {}, raised)
    except plugin_settings.InvalidSettings as error:
        raise PluginConflict(
            gettext(
                "The floors on the settings of %(plugin)s cannot be met: %(error)s",
                plugin=manifest.title,
                error=error,
            )
        ) from error


# --- the two questions ---------------------------------------------------------------------------


def plan_enable(host: PluginHost, state: TenantState, name: str, values: Mapping[str, Any]) -> Plan:
    """What switching ``name`` on with ``values`` (or changing its settings, when it is on) does.

    Raises :class:`PluginBroken`, :class:`PluginRequired`, :class:`PluginConflict`, or
    :class:`~bookwell.core.pluginhost.settings.InvalidSettings` (field by field).
    """
    plugin = host.installed[name]
    if plugin.manifest is None:
        raise PluginBroken(f"{name} is broken and cannot be switched on: {plugin.error}")
    on = _on(host, state)
    required_by = _switched_on(host, on, name)
    new = list(required_by)
    _check_together(host, name, new, on)
    holders = on + new

    def saved(current: str) -> Mapping[str, Any]:
        return state.get(current, (False, {}))[1]

    steps: list[Step] = []
    # Plugins already on that a newly switched-on plugin holds to its floors: raised first.
    for current in on:
        if current == name:
            continue
        floored_by = [holder for holder in new if current in host.manifest(holder).floors]
        if floored_by:
            before = plugin_settings.validate(host.manifest(current), {}, saved(current))
            after = _hold_to_floors(host, current, before, {}, holders)
            if after != before:
                steps.append(Step(current, before, after, ("floor_of", floored_by[0])))
    for current in new if name in new else [*new, name]:
        manifest = host.manifest(current)
        given = values if current == name else {}
        before = plugin_settings.validate(manifest, {}, saved(current)) if current in on else None
        after = plugin_settings.validate(manifest, given, saved(current))
        after = _hold_to_floors(host, current, after, given, holders)
        because = None if current == name else ("required_by", required_by[current] or "")
        steps.append(Step(current, before, after, because))
    return Plan(name, tuple(steps))


def check_disable(host: PluginHost, state: TenantState, name: str) -> None:
    """Refuse (:class:`PluginRequired`) to switch off a plugin an enabled plugin requires."""
    for other in _on(host, state):
        if other != name and name in host.manifest(other).requires:
            raise PluginRequired(
                gettext(
                    "%(plugin)s requires %(required)s: switch %(plugin)s off first.",
                    plugin=title_of(host, other),
                    required=title_of(host, name),
                )
            )


# --- the plugins' own checks ----------------------------------------------------------------------


class SettingsChecks:
    """What each plugin's own ``check_settings`` says of the settings a change would save.

    Its code must never run while the database's write lock is held (a slow check would stall
    every booking), yet the rules are decided under that lock. A check depends on the settings
    alone, so the answers are asked for a plan made before the lock (:meth:`ask`) and looked up
    again, by plugin and settings, for the plan made under it (:meth:`enforce`); a plan that
    changed meanwhile asks only what is new.
    """

    def __init__(self, host: PluginHost, tenant_id: int, now: datetime) -> None:
        self.host, self.tenant_id, self.now = host, tenant_id, now
        self._answers: dict[tuple[str, str], dict[str, str] | PluginFailed] = {}

    def _answer(self, name: str, settings: Mapping[str, Any]) -> dict[str, str] | PluginFailed:
        key = (name, json.dumps(settings, sort_keys=True))
        if key not in self._answers:
            try:
                self._answers[key] = self.host.check_settings(
                    name, settings, tenant_id=self.tenant_id, now=self.now
                )
            except PluginFailed as failed:
                self._answers[key] = failed
        return self._answers[key]

    def ask(self, changes: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        for name, settings in changes:
            self._answer(name, settings)

    def enforce(self, requested: str, changes: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Refuse the change if a plugin's check finds fault with its new settings: field by
        field for ``requested`` (:class:`~bookwell.core.pluginhost.settings.InvalidSettings`),
        naming both plugins for one that a rule brought in or raised (:class:`PluginConflict`),
        and :class:`SettingsCheckFailed` when a check itself failed. ``requested`` is judged
        first, so the user sees their own form's faults before anything else."""
        ordered = sorted(changes, key=lambda change: change[0] != requested)
        for name, settings in ordered:
            answer = self._answer(name, settings)
            title = title_of(self.host, name)
            if isinstance(answer, PluginFailed):
                raise SettingsCheckFailed(_check_failed(title, answer.how))
            if not answer:
                continue
            if name == requested:
                raise plugin_settings.InvalidSettings(answer)
            faults = "; ".join(f"{key}: {message}" for key, message in answer.items())
            raise PluginConflict(
                gettext(
                    "Switching %(plugin)s on would give %(other)s settings it refuses "
                    "(%(faults)s). Change the settings of %(other)s first.",
                    plugin=title_of(self.host, requested),
                    other=title,
                    faults=faults,
                )
            )
