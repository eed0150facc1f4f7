"""Creating and upgrading the schema with Alembic, the only way tables are ever made.

Core's migrations run first. Then every installed plugin that ships migrations (its
``migrations`` hook) has its own run, with its own version table ``alembic_version_<name>``, so
that core's history never names a plugin's revision: a plugin that is uninstalled or blocked
leaves its tables and version table behind, and ``upgrade`` goes on working without it. A
plugin's tables are named with its prefix (``<name>_``, hyphens as underscores); a migration
that creates any other table is rolled back and reported. A plugin's failure never stops core's
upgrade or another plugin's: it is reported, and the plugin is marked broken in the host that
was upgraded (as one whose ``migrations`` hook fails already is, when it loads).

On PostgreSQL the schema may belong to a role of its own: with ``MIGRATION_DATABASE_URL`` set,
every run connects with it (the tables' owner) and ends by granting the app's role (the user of
``DATABASE_URL``) what the app does with the tables: reading and writing rows, but only reading
and adding to the audit trail and only reading the version tables. Tables a plugin adds later
are granted by the run that adds them. The app's role then can neither change the trail nor
switch off the trigger that refuses it to everyone (migration 0011): only the owner could.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.pyfiles import coerce_resource_to_filename
from flask import Flask
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from bookwell.core.pluginhost import host as pluginhost
from bookwell.core.storage import db

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


class SchemaPrivilegeError(Exception):
    """A database role lacks what the schema needs of it, or holds what it must not: the
    message says which role and what to do."""


INSUFFICIENT_PRIVILEGE = "42501"
# What the app's role may do with every table, and with the few it may only read and add to.
APP_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
APPEND_ONLY_TABLES = ("audit_entries",)


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
        if not _at_heads(connection, CORE_SCRIPTS, "alembic_version"):
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


def upgrade_app(app: Flask, host: pluginhost.PluginHost | None = None) -> list[PluginUpgradeFailed]:
    """What ``bookwell init`` does to ``app``'s database: :func:`upgrade` as the migration role
    (``MIGRATION_DATABASE_URL``, else the app's own), then :func:`grant_app_role`."""
    with db.migration_engine(app) as engine:
        return upgrade_as(engine, db.engine_of(app), host)


def upgrade_as(
    migration_engine: Engine, app_engine: Engine, host: pluginhost.PluginHost | None = None
) -> list[PluginUpgradeFailed]:
    """:func:`upgrade` through ``migration_engine``; then, on PostgreSQL, when ``app_engine``
    connects as another role, let that role use what the run made (:func:`grant_app_role`). A
    role that may not change the schema raises :class:`SchemaPrivilegeError`."""
    try:
        failures = upgrade(migration_engine, host)
    except DBAPIError as error:
        if db.sqlstate(error) != INSUFFICIENT_PRIVILEGE:
            raise
        role = role_of(migration_engine)
        refusal = str(error.orig).splitlines()[0]
        raise SchemaPrivilegeError(
            f"the database role {role!r} may not change the schema ({refusal}): run it with "
            "BOOKWELL_MIGRATION_DATABASE_URL set to the role that owns the tables (docs/deploy.md)"
        ) from error
    if migration_engine is not app_engine and migration_engine.dialect.name == "postgresql":
        grant_app_role(migration_engine, role_of(app_engine))
    return failures


def role_of(engine: Engine) -> str:
    """The database role ``engine`` connects as (what its privileges are checked against)."""
    with engine.connect() as connection:
        return str(connection.execute(text("SELECT current_user")).scalar_one())


def grant_app_role(engine: Engine, app_role: str) -> None:
    """As the tables' owner (``engine``), give ``app_role`` every table and sequence of the
    schema to use, but only SELECT and INSERT on the audit trail and SELECT on the version
    tables. Idempotent: every run grants what it finds, plugins' new tables included. Refuses
    (:class:`SchemaPrivilegeError`) an app role that could undo it: a superuser, one that can
    create roles, or one that is, or may act as, the trail's owner."""
    with engine.begin() as connection:
        owner = connection.execute(text("SELECT current_user")).scalar_one()
        if app_role == owner:
            return  # one role for both: there is nothing to keep apart
        _refuse_a_role_that_could_undo(connection, app_role)
        quote = connection.dialect.identifier_preparer.quote
        role = quote(app_role)
        schema_name = quote(connection.execute(text("SELECT current_schema()")).scalar_one())
        connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema_name} TO {role}")
        connection.exec_driver_sql(
            f"GRANT {APP_PRIVILEGES} ON ALL TABLES IN SCHEMA {schema_name} TO {role}"
        )
        connection.exec_driver_sql(
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_name} TO {role}"
        )
        tables = inspect(connection).get_table_names()
        # The version tables say which migrations ran: the app reads them, never writes them.
        version_tables = [table for table in tables if table.startswith("alembic_version")]
        for table in version_tables:
            connection.exec_driver_sql(
                f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {quote(table)} FROM {role}"
            )
        for table in APPEND_ONLY_TABLES:
            connection.exec_driver_sql(
                f"REVOKE UPDATE, DELETE, TRUNCATE ON {quote(table)} FROM {role}"
            )


def trail_unprotected_from(engine: Engine) -> str | None:
    """On PostgreSQL, why the role ``engine`` connects as could switch off the audit trail's
    protection (see :func:`grant_app_role`), for ``bookwell serve`` to warn about; else None."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        role = str(connection.execute(text("SELECT current_user")).scalar_one())
        why = _why_role_could_undo(connection, role)
    return None if why is None else f"the app's database role {role!r} {why}"


def _refuse_a_role_that_could_undo(connection: Connection, app_role: str) -> None:
    why = _why_role_could_undo(connection, app_role)
    if why is not None:
        raise SchemaPrivilegeError(
            f"the app's database role {app_role!r} (DATABASE_URL) {why}: it could switch off the "
            "audit trail's protection; give the app a role of its own (docs/deploy.md)"
        )


def _why_role_could_undo(connection: Connection, role: str) -> str | None:
    row = connection.execute(
        text(
            "SELECT r.rolsuper, r.rolcreaterole, t.tableowner, "
            "pg_has_role(r.oid, t.tableowner, 'MEMBER') "
            "FROM pg_roles r JOIN pg_tables t "
            "ON t.tablename = 'audit_entries' AND t.schemaname = current_schema() "
            "WHERE r.rolname = :role"
        ),
        {"role": role},
    ).one_or_none()
    if row is None:
        return None  # no trail yet: nothing to protect
    superuser, creates_roles, trail_owner, acts_as_owner = row
    if superuser:
        return "is a superuser"
    if creates_roles:  # such a role may grant itself the owner's membership
        return "can create roles (and so join the owner's)"
    if acts_as_owner:
        return f"is, or may act as, {trail_owner!r}, the owner of the audit trail"
    return None


def _upgrade_plugin(engine: Engine, plugin: PluginSchema) -> None:
    with engine.begin() as connection:
        if _at_heads(connection, plugin.script_location, plugin.version_table):
            return
        before = set(inspect(connection).get_table_names())
        config = alembic_config(connection, plugin.script_location, plugin.version_table)
        command.upgrade(config, "heads")
        created = set(inspect(connection).get_table_names()) - before - {plugin.version_table}
        stray = sorted(table for table in created if not table.startswith(plugin.prefix))
        if stray:  # raising rolls the whole run back, version table included
            raise TablesNotPrefixed(
                f"created {', '.join(stray)}: a plugin's tables must be named {plugin.prefix}*"
            )


# Heads by (script location, what its versions folder holds): Alembic reads and runs every
# revision file to find them, 10-15 ms for core's alone, on every start and every upgrade.
_heads_of: dict[tuple[str, tuple | None], frozenset[str]] = {}


def _script_heads(script_location: str) -> frozenset[str]:
    """The newest revisions of these migrations, read again whenever their files change."""
    try:
        folder = Path(coerce_resource_to_filename(script_location)) / "versions"
        stamp: tuple | None = tuple(
            sorted((entry.name, entry.stat().st_mtime_ns) for entry in os.scandir(folder))
        )
    except OSError:
        stamp = None  # not a folder Alembic reads from as such: never cached
    heads = _heads_of.get((script_location, stamp))
    if heads is None:
        script = ScriptDirectory.from_config(alembic_config(None, script_location))
        heads = frozenset(script.get_heads())
        if stamp is not None:
            _heads_of[(script_location, stamp)] = heads
    return heads


def _at_heads(connection: Connection, script_location: str, version_table: str) -> bool:
    """Whether the database is at these migrations' newest revisions: then an upgrade would
    do nothing, and Alembic need not be run."""
    migration = MigrationContext.configure(connection, opts={"version_table": version_table})
    return set(migration.get_current_heads()) == _script_heads(script_location)


def is_current(engine: Engine) -> bool:
    """Whether core's tables are at their newest revision (what core's commands need; see
    :func:`plugins_behind` for the plugins')."""
    with engine.connect() as connection:
        return _at_heads(connection, CORE_SCRIPTS, "alembic_version")


def plugins_behind(engine: Engine, host: pluginhost.PluginHost | None = None) -> list[str]:
    """The installed plugins whose tables are not at their newest revision."""
    behind = []
    with engine.connect() as connection:
        for plugin in plugin_schemas(host):
            try:
                heads = _script_heads(plugin.script_location)
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
