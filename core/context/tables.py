"""``ctx.tables``: a plugin's own tables, for one tenant (``bookwell.hooks.PluginTables``).

A plugin describes its tables (made by its migrations) as SQLAlchemy ``Table`` objects and reads
and writes them through here, where every statement is limited to the context's tenant: the
tenant's condition is added to every ``WHERE``, ``insert`` fills ``tenant_id``, and nothing a
plugin passes may widen that (plain SQL text, subqueries and other tables' columns are refused,
since they could reach rows the tenant's condition does not cover). Only the plugin's own tables
are accepted: named with its prefix, the rule :mod:`bookwell.core.schema` holds its migrations
to.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import ColumnElement, DateTime, Table, func
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy import select as sql_select
from sqlalchemy import update as sql_update
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ClauseElement, ColumnClause, TextClause
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import FromClause, SelectBase

from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db

TENANT_COLUMN = "tenant_id"


def prefix_of(plugin: str) -> str:
    """A plugin's table prefix: its name with hyphens as underscores, then ``_``."""
    return plugin.replace("-", "_") + "_"


class TenantTables:
    """``ctx.tables`` of one plugin for one tenant.

    Reads are real on a dry run and writes do nothing; each write answers as the real run
    would where it can (``update`` and ``delete`` the number of rows they would change) and
    ``insert`` answers ``None`` (there is no key without a row).
    """

    def __init__(self, app: Flask, tenant_id: int, plugin: str, *, dry_run: bool = False) -> None:
        self._app, self._tenant_id, self._plugin, self._dry_run = app, tenant_id, plugin, dry_run

    def select(
        self, table: Any, *where: Any, order_by: Any = (), limit: int | None = None
    ) -> list[dict[str, Any]]:
        conditions = self._conditions(table, where)
        statement = sql_select(table).where(*conditions)
        for order in order_by if isinstance(order_by, list | tuple) else (order_by,):
            statement = statement.order_by(self._order(table, order))
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                raise ValueError(f"limit is a whole number of rows, not {limit!r}")
            statement = statement.limit(limit)
        instants = [column.name for column in table.c if isinstance(column.type, DateTime)]
        with db.fresh_session(self._app) as session:
            rows = [dict(row) for row in session.execute(statement).mappings()]
        # The same instant on both databases: SQLite gives it back without a zone (it was
        # stored in UTC), PostgreSQL in its session's zone.
        for row in rows:
            for name in instants:
                row[name] = _in_utc(row.get(name))
        return rows

    def insert(self, table: Any, **values: Any) -> Any:
        self._check_table(table)
        given = values.pop(TENANT_COLUMN, self._tenant_id)
        if given != self._tenant_id:
            raise ValueError(f"{TENANT_COLUMN} is filled in for you: rows are the tenant's own")
        self._check_values(table, values)
        if self._dry_run:
            return None
        with db.write_transaction(self._app) as session:
            result = session.execute(
                sql_insert(table).values(**values, **{TENANT_COLUMN: self._tenant_id})
            )
            key = result.inserted_primary_key
        if key is None or len(key) == 0:
            return None
        return key[0] if len(key) == 1 else tuple(key)

    def update(self, table: Any, *where: Any, **values: Any) -> int:
        conditions = self._conditions(table, where)
        if values.pop(TENANT_COLUMN, self._tenant_id) != self._tenant_id:
            raise ValueError(f"{TENANT_COLUMN} cannot change: rows are the tenant's own")
        if not values:
            raise ValueError("update what? name at least one column to set")
        self._check_values(table, values)
        if self._dry_run:
            return self._count(table, conditions)
        with db.write_transaction(self._app) as session:
            changed = session.execute(sql_update(table).where(*conditions).values(**values))
            return changed.rowcount

    def delete(self, table: Any, *where: Any) -> int:
        conditions = self._conditions(table, where)
        if self._dry_run:
            return self._count(table, conditions)
        with db.write_transaction(self._app) as session:
            return session.execute(sql_delete(table).where(*conditions)).rowcount

    # --- inside -----------------------------------------------------------------------------

    def _check_table(self, table: Any) -> Table:
        if not isinstance(table, Table):
            raise ValueError(f"ctx.tables takes a sqlalchemy Table, not {type(table).__name__}")
        prefix = prefix_of(self._plugin)
        if table.schema is not None or not table.name.startswith(prefix):
            raise ValueError(
                f"{table.fullname} is not a table of plugin {self._plugin}: "
                f"its tables are named {prefix}*"
            )
        # "visit_notes_entries" starts with the prefix of a plugin "visit" too: a table that a
        # longer installed plugin's prefix claims is that plugin's.
        for other in host_of(self._app).installed:
            longer = prefix_of(other)
            if len(longer) > len(prefix) and table.name.startswith(longer):
                raise ValueError(f"{table.name} is a table of plugin {other}")
        if TENANT_COLUMN not in table.c:
            raise ValueError(f"{table.name} has no {TENANT_COLUMN} column to keep tenants apart")
        return table

    def _conditions(self, table: Any, where: Iterable[Any]) -> list[Any]:
        table = self._check_table(table)
        conditions = [table.c[TENANT_COLUMN] == self._tenant_id]
        for clause in where:
            _check_expression(table, clause, "a where clause")
            conditions.append(clause)
        return conditions

    def _order(self, table: Table, order: Any) -> Any:
        if isinstance(order, str):
            if order not in table.c:
                raise ValueError(f"{table.name} has no column {order!r} to order by")
            return table.c[order]
        _check_expression(table, order, "order_by")
        return order

    def _check_values(self, table: Table, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in table.c:
                raise ValueError(f"{table.name} has no column {name!r}")
            if isinstance(value, ClauseElement):
                _check_expression(table, value, f"the value of {name}")
            elif isinstance(value, datetime) and value.tzinfo is not None:
                # SQLite would keep the wall time and drop the zone: store the instant in UTC.
                values[name] = value.astimezone(UTC)

    def _count(self, table: Table, conditions: list[Any]) -> int:
        with db.fresh_session(self._app) as session:
            return session.scalar(sql_select(func.count()).select_from(table).where(*conditions))


def _in_utc(value: Any) -> Any:
    if not isinstance(value, datetime):
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_expression(table: Table, expression: Any, what: str) -> None:
    """Refuse what could reach beyond ``table``'s rows of the tenant: another table's columns,
    a subquery, or SQL text (which could also undo the tenant's condition: ``... OR 1=1``)."""
    if not isinstance(expression, ColumnElement):
        raise ValueError(f"{what} is a SQLAlchemy expression on {table.name}'s columns")
    for element in visitors.iterate(expression):
        if isinstance(element, TextClause | SelectBase) or (
            isinstance(element, FromClause) and not isinstance(element, FunctionElement)
        ):
            raise ValueError(f"{what} may use only {table.name}'s columns, not SQL text or queries")
        if isinstance(element, ColumnClause) and (element.is_literal or element.table is not table):
            raise ValueError(f"{what} may use only {table.name}'s columns, not {element}")
