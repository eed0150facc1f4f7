"""Creating and upgrading the schema with Alembic, the only way tables are ever made.

Core's migrations run first. Then every installed plugin that ships migrations (its
``migrations`` hook) has its own run, with its own version table ``alembic_version_<name>``, so
that core's history never names a plugin's revision: a plugin that is uninstalled or blocked
leaves its tables and version table behind, and ``upgrade`` goes on working without it. A
plugin's tables are named with its prefix (``<name>_``, hyphens as underscores); a migration
that creates any other table is rolled back and reported. A plugin's failure never stops core's
upgrade or another plugin's: it is reported, and the plugin is marked broken in the host that
was upgraded (as one whose ``migrations`` hook fails already is, when it loads).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from bookwell.core.pluginhost import host as pluginhost

log = logging.getLogger("bookwell.schema")
CORE_SCRIPTS = "bookwell.core.storage:migrations"


@dataclass(frozen=True)
class PluginSchema:
    """A plugin's own migrations: where its scripts are, and its names in the database."""

    plugin: str
    script_location: str

    @property
    def prefix(self) -> str:
        return self.plugin.replace("-", "_") + "_"

    @property
    def version_table(self) -> str:
        return "alembic_version_" + self.plugin.replace("-", "_")


@dataclass(frozen=True)
class PluginUpgradeFailed:
    plugin: str
    error: str


class TablesNotPrefixed(Exception):
    """A plugin's migration created tables outside its prefix."""


def alembic_config(
    connection: Connection | None = None,
    script_location: str = CORE_SCRIPTS,
    version_table: str = "alembic_version",
) -> Config:
    """The Alembic config of core's migrations, or of a plugin's: its ``env.py`` finds the live
    connection and the version table to use in ``config.attributes``."""
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table
    return config


def _installed() -> pluginhost.PluginHost:
    """The plugins installed through entry points, less ``BOOKWELL_DISABLED_PLUGINS``."""
    host = pluginhost.PluginHost(blocked=pluginhost.blocked_by_environment())
    host.load_entry_points()
    return host


def _migration_hooks(host: pluginhost.PluginHost | None) -> list[tuple[str, Callable[[], Any]]]:
    """(plugin, its ``migrations`` function) for each working plugin, in name order. Without
    ``host``, those of :func:`_installed`."""
    if host is None:
        host = _installed()
    hooks = []
    for implementation in host.pm.hook.migrations.get_hookimpls():
        name = host.pm.get_name(implementation.plugin)
        installed = host.installed.get(name)
        if installed is not None and installed.status == "ok":
            hooks.append((name, implementation.function))
    return sorted(hooks, key=lambda hook: hook[0])


def plugin_schemas(host: pluginhost.PluginHost | None = None) -> list[PluginSchema]:
    """The working plugins that ship migrations, in name order (a failing hook is logged)."""
    found = []
    for name, migrations in _migration_hooks(host):
        try:
            location = migrations()
        except Exception:
            log.exception("plugin %s: its migrations hook failed", name)
            continue
        if location is not None:
            found.append(PluginSchema(name, str(location)))
    return found


def upgrade(engine: Engine, host: pluginhost.PluginHost | None = None) -> list[PluginUpgradeFailed]:
    """Bring core's tables, then each plugin's, to their newest revision. Core's failure
    raises; a plugin's is logged and returned (with those whose ``migrations`` hook broke them
    when they loaded), the plugin is marked broken in ``host``, and the others go on."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    host = host or _installed()
    failures = [
        PluginUpgradeFailed(name, plugin.error or "")
        for name, plugin in sorted(host.installed.items())
        if plugin.failed_in == "migrations"
    ]
    for name, migrations in _migration_hooks(host):
        try:
            location = migrations()
            if location is not None:
                _upgrade_plugin(engine, PluginSchema(name, str(location)))
        except Exception as error:
            log.exception("plugin %s: its migrations failed; core is upgraded", name)
            failure = PluginUpgradeFailed(name, f"{type(error).__name__}: {error}")
            failures.append(failure)
            host.mark_broken(name, f"migrations failed: {failure.error}", failed_in="migrations")
    return failures


def _upgrade_plugin(engine: Engine, plugin: PluginSchema) -> None:
    with engine.begin() as connection:
        before = set(inspect(connection).get_table_names())
        config = alembic_config(connection, plugin.script_location, plugin.version_table)
        command.upgrade(config, "heads")
        created = set(inspect(connection).get_table_names()) - before - {plugin.version_table}
        stray = sorted(table for table in created if not table.startswith(plugin.prefix))
        if stray:  # raising rolls the whole run back, version table included
            raise TablesNotPrefixed(
                f"created {', '.join(stray)}: a plugin's tables must be named {plugin.prefix}*"
            )


def is_current(engine: Engine) -> bool:
    """Whether core's tables are at their newest revision (what core's commands need; see
    :func:`plugins_behind` for the plugins')."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


def plugins_behind(engine: Engine, host: pluginhost.PluginHost | None = None) -> list[str]:
    """The installed plugins whose tables are not at their newest revision."""
    behind = []
    with engine.connect() as connection:
        for plugin in plugin_schemas(host):
            try:
                heads = set(
                    ScriptDirectory.from_config(
                        alembic_config(None, plugin.script_location)
                    ).get_heads()
                )
            except Exception:
                log.exception("plugin %s: its migrations cannot be read", plugin.plugin)
                behind.append(plugin.plugin)
                continue
            migration = MigrationContext.configure(
                connection, opts={"version_table": plugin.version_table}
            )
            if set(migration.get_current_heads()) != heads:
                behind.append(plugin.plugin)
    return behind


def break_plugins_behind(engine: Engine, host: pluginhost.PluginHost) -> list[str]:
    """Mark broken, in ``host``, the plugins whose tables are not at their newest revision (their
    upgrade failed, or was never run): their hooks would find tables missing or old. Returns
    their names. A database that cannot be read marks nothing: that is core's to report."""
    try:
        behind = plugins_behind(engine, host)
    except Exception:
        log.exception("could not tell which plugins' tables are behind")
        return []
    for name in behind:
        host.mark_broken(
            name,
            "its tables are not at their newest revision (its migration failed or `bookwell "
            "init` has not run since it was installed)",
            failed_in="tables",
        )
    return behind
