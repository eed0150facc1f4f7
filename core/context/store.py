"""``ctx.store``: a plugin's own key -> JSON store per tenant (``bookwell.hooks.PluginStore``).

One row of ``plugin_store`` per (tenant, plugin, key), so every worker process shares it and no
plugin reaches another's keys or another tenant's. Each call is a transaction of its own: guards
run before the booking's write lock is taken and events after its commit, so what a plugin
counts stays counted whatever becomes of the booking.

Exact under concurrency: every change runs in :func:`~bookwell.core.storage.db.write_transaction`
with the key's row locked before it is read (on SQLite ``BEGIN IMMEDIATE`` holds the database's
write lock; on PostgreSQL ``SELECT ... FOR UPDATE`` holds the row, and a key that does not exist
yet is created with ``INSERT ... ON CONFLICT DO NOTHING``, so of two creators one inserts and the
other finds the row, locks it and decides again). Expiry is judged against the ``now`` the
context was made with (``ctx.now``), never the wall clock: an expired row reads as absent and is
overwritten when its key is written again; the expired rows of the plugin are pruned (a bounded
batch) whenever a new key is created, so they cannot pile up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import Select, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bookwell.core.storage import db
from bookwell.core.storage.models import PlatformPluginStoreEntry, PluginStoreEntry

KEY_LENGTH = 200  # plugin_store.key
MAX_VALUE_BYTES = 64 * 1024
# Expired rows removed at most per new key: pruning never makes one call slow.
PRUNE_BATCH = 100
# A key created and deleted by others between our look and our insert, again and again.
ATTEMPTS = 5

Result = TypeVar("Result")
# What a change writes: the encoded value and its expiry; None writes nothing.
Write = tuple[str, datetime | None] | None


class DatabaseStore:
    """``ctx.store`` of one plugin for one tenant, judging expiry at ``now``.

    On a dry run (``bookwell tick --dry-run``) reads are real and nothing is written; each call
    answers as the real run would: ``delete`` whether the key is there, ``increment`` the value
    it would reach, ``compare_and_set`` whether it would set.
    """

    def __init__(
        self, app: Flask, tenant_id: int, plugin: str, now: datetime, *, dry_run: bool = False
    ) -> None:
        self._app, self._tenant_id, self._plugin = app, tenant_id, plugin
        self._now, self._dry_run = now, dry_run

    def get(self, key: str, default: Any = None) -> Any:
        _check_key(key)
        with db.fresh_session(self._app) as session:
            row = self._live(session.scalars(self._row(key)).one_or_none())
        return default if row is None else json.loads(row.value)

    def set(self, key: str, value: Any, expires_at: datetime | None = None) -> None:
        _check_key(key)
        write = (_encode(value), _check_expiry(expires_at))
        self._change(key, lambda _live: (None, write))

    def delete(self, key: str) -> bool:
        _check_key(key)
        if self._dry_run:
            with db.fresh_session(self._app) as session:
                return self._live(session.scalars(self._row(key)).one_or_none()) is not None
        with db.write_transaction(self._app) as session:
            row = session.scalars(self._row(key).with_for_update()).one_or_none()
            if row is None:
                return False
            session.delete(row)
            return self._live(row) is not None

    def increment(self, key: str, by: int = 1, expires_at: datetime | None = None) -> int:
        _check_key(key)
        if not isinstance(by, int) or isinstance(by, bool):
            raise ValueError(f"increment by a whole number, not {by!r}")
        expires_at = _check_expiry(expires_at)

        def add(live: PluginStoreEntry | None) -> tuple[int, Write]:
            if live is None:  # absent or expired: a fresh count, with the expiry given
                return by, (_encode(by), expires_at)
            current = json.loads(live.value)
            if not isinstance(current, int) or isinstance(current, bool):
                raise ValueError(f"{key!r} holds {current!r}, not a whole number to increment")
            return current + by, (_encode(current + by), live.expires_at)

        return self._change(key, add)

    def compare_and_set(
        self, key: str, old: Any, new: Any, expires_at: datetime | None = None
    ) -> bool:
        _check_key(key)
        # Compared as canonical JSON text: 1 and True, or 1 and 1.0, are different values.
        expected = None if old is None else _encode(old)
        write = (_encode(new), _check_expiry(expires_at))

        def swap(live: PluginStoreEntry | None) -> tuple[bool, Write]:
            current = None if live is None else live.value
            return (True, write) if current == expected else (False, None)

        return self._change(key, swap)

    # --- inside -----------------------------------------------------------------------------

    def _row(self, key: str) -> Select[tuple[PluginStoreEntry]]:
        return select(PluginStoreEntry).where(
            PluginStoreEntry.tenant_id == self._tenant_id,
            PluginStoreEntry.plugin == self._plugin,
            PluginStoreEntry.key == key,
        )

    def _live(self, row: PluginStoreEntry | None) -> PluginStoreEntry | None:
        if row is None or (row.expires_at is not None and row.expires_at <= self._now):
            return None
        return row

    def _change(
        self, key: str, decide: Callable[[PluginStoreEntry | None], tuple[Result, Write]]
    ) -> Result:
        """Run ``decide`` on the key's live row (``None`` if absent or expired), with the row
        locked, and write what it returns; its first value is the answer."""
        if self._dry_run:
            with db.fresh_session(self._app) as session:
                answer, _ = decide(self._live(session.scalars(self._row(key)).one_or_none()))
                return answer
        with db.write_transaction(self._app) as session:
            for _ in range(ATTEMPTS):
                row = session.scalars(self._row(key).with_for_update()).one_or_none()
                answer, write = decide(self._live(row))
                if write is None:
                    return answer
                value, expires_at = write
                if row is not None:  # live or expired, the row is ours now: overwrite it
                    row.value, row.expires_at, row.updated_at = value, expires_at, self._now
                    return answer
                if self._insert(session, key, value, expires_at):
                    self._prune(session)
                    return answer
                # Another transaction created the key and committed meanwhile: look again,
                # decide on its value (a new statement sees it under READ COMMITTED).
        raise db.LockTimeout(f"ctx.store: {key!r} kept changing under us")

    def _insert(self, session: Session, key: str, value: str, expires_at: datetime | None) -> bool:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        # RETURNING, not rowcount (which psycopg leaves at -1 here): no row back means another
        # transaction holds the key.
        inserted = session.execute(
            dialect.insert(PluginStoreEntry.__table__)
            .values(
                tenant_id=self._tenant_id,
                plugin=self._plugin,
                key=key,
                value=value,
                expires_at=expires_at,
                updated_at=self._now,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "plugin", "key"])
            .returning(PluginStoreEntry.__table__.c.id)
        )
        return inserted.first() is not None

    def _prune(self, session: Session) -> None:
        # SKIP LOCKED (PostgreSQL; SQLite holds the whole write lock anyway): never wait for,
        # nor deadlock with, a caller that holds an expired key it is about to reuse.
        expired = (
            select(PluginStoreEntry.id)
            .where(
                PluginStoreEntry.tenant_id == self._tenant_id,
                PluginStoreEntry.plugin == self._plugin,
                PluginStoreEntry.expires_at <= self._now,
            )
            .limit(PRUNE_BATCH)
            .with_for_update(skip_locked=True)
        )
        session.execute(
            delete(PluginStoreEntry)
            .where(PluginStoreEntry.id.in_(expired))
            .execution_options(synchronize_session=False)
        )


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= KEY_LENGTH or "\x00" in key:
        raise ValueError(f"a store key is a string of 1 to {KEY_LENGTH} characters, not {key!r}")


def _check_expiry(expires_at: Any) -> datetime | None:
    if expires_at is not None and (
        not isinstance(expires_at, datetime) or expires_at.tzinfo is None
    ):
        raise ValueError(f"expires_at is an aware datetime (ctx.now + ...), not {expires_at!r}")
    return expires_at


def _encode(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"a stored value is JSON (dict, list, str, int, float, bool, None): {error}"
        ) from None
    if len(text) > MAX_VALUE_BYTES:  # ASCII: json.dumps escapes everything else
        raise ValueError(f"a stored value is at most {MAX_VALUE_BYTES // 1024} KiB as JSON")
    return text


class PlatformStore(DatabaseStore):
    """``ctx.store`` of one plugin for the whole instance: what it keeps about platform support's
    accounts, which belong to no tenant (``platform_plugin_store``). The same semantics."""

    def __init__(self, app: Flask, plugin: str, now: datetime, *, dry_run: bool = False) -> None:
        if not plugin:  # the empty name is core's own (the instance's data key)
            raise ValueError("a platform store belongs to a named plugin")
        super().__init__(app, 0, plugin, now, dry_run=dry_run)

    def _row(self, key: str) -> Select[tuple[PluginStoreEntry]]:
        return select(PlatformPluginStoreEntry).where(  # type: ignore[return-value]
            PlatformPluginStoreEntry.plugin == self._plugin,
            PlatformPluginStoreEntry.key == key,
        )

    def _insert(self, session: Session, key: str, value: str, expires_at: datetime | None) -> bool:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        inserted = session.execute(
            dialect.insert(PlatformPluginStoreEntry.__table__)
            .values(
                plugin=self._plugin,
                key=key,
                value=value,
                expires_at=expires_at,
                updated_at=self._now,
            )
            .on_conflict_do_nothing(index_elements=["plugin", "key"])
            .returning(PlatformPluginStoreEntry.__table__.c.id)
        )
        return inserted.first() is not None

    def _prune(self, session: Session) -> None:
        expired = (
            select(PlatformPluginStoreEntry.id)
            .where(
                PlatformPluginStoreEntry.plugin == self._plugin,
                PlatformPluginStoreEntry.expires_at <= self._now,
            )
            .limit(PRUNE_BATCH)
            .with_for_update(skip_locked=True)
        )
        session.execute(
            delete(PlatformPluginStoreEntry)
            .where(PlatformPluginStoreEntry.id.in_(expired))
            .execution_options(synchronize_session=False)
        )
