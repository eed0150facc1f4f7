"""Rate-limit counters in the database (table ``rate_limit_counters``), for an instance without
Redis: every worker of every process counts in the same row, so a limit of 10 a minute stays 10
whatever ``--workers`` is.

A storage backend of the ``limits`` library for its fixed-window strategy (the one
Flask-Limiter uses here). Each hit is one atomic statement, an upsert that starts a new window
when the old one has ended and returns the count, so two workers can never both see the ninth
hit. Ended windows are deleted now and then, on a hit, so that addresses seen once do not pile
up. Times are epoch seconds from ``time.time()``, as the limits library counts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from limits.storage import Storage
from sqlalchemy import Engine, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from bookwell.core.storage.models import RateLimitCounter

log = logging.getLogger(__name__)

SCHEME = "bookwell-database"
# How often one process sweeps ended windows away. The sweep uses the index on window_ends_at;
# between sweeps an ended row is harmless (its next hit starts a new window in place).
PURGE_EVERY_SECONDS = 60.0
COUNTERS = RateLimitCounter.__table__
UPSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class DatabaseCounts(Storage):
    """``bookwell-database://`` with ``engine=`` the app's engine (a storage option)."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, *, engine: Engine, **_: Any
    ) -> None:
        if engine.dialect.name not in UPSERTS:
            raise ValueError(f"rate limits cannot be counted in a {engine.dialect.name} database")
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self.engine = engine
        # On SQLite, take the write lock at BEGIN (and wait for it up to the busy timeout), as
        # db.write_transaction does, rather than fail when a reader upgrades too late.
        self.writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self._upsert = UPSERTS[engine.dialect.name]
        self._purge_lock = threading.Lock()
        self._next_purge = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        inserted = self._upsert(COUNTERS).values(key=key, hits=amount, window_ends_at=now + expiry)
        ended = COUNTERS.c.window_ends_at <= now
        # Both SET expressions read the row as it was before this statement.
        statement = inserted.on_conflict_do_update(
            index_elements=[COUNTERS.c.key],
            set_={
                "hits": case(
                    (ended, inserted.excluded.hits), else_=COUNTERS.c.hits + inserted.excluded.hits
                ),
                "window_ends_at": case(
                    (ended, inserted.excluded.window_ends_at), else_=COUNTERS.c.window_ends_at
                ),
            },
        ).returning(COUNTERS.c.hits)
        with self.writer.begin() as connection:
            hits = connection.execute(statement).scalar_one()
        self._purge_now_and_then(now)
        return int(hits)

    def get(self, key: str) -> int:
        now = time.time()
        with self.engine.connect() as connection:
            hits = connection.scalar(
                select(COUNTERS.c.hits).where(
                    COUNTERS.c.key == key, COUNTERS.c.window_ends_at > now
                )
            )
        return int(hits or 0)

    def get_expiry(self, key: str) -> float:
        now = time.time()
        with self.engine.connect() as connection:
            ends_at = connection.scalar(
                select(COUNTERS.c.window_ends_at).where(
                    COUNTERS.c.key == key, COUNTERS.c.window_ends_at > now
                )
            )
        return float(ends_at) if ends_at is not None else now

    def check(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.writer.begin() as connection:
            return connection.execute(delete(COUNTERS)).rowcount

    def clear(self, key: str) -> None:
        with self.writer.begin() as connection:
            connection.execute(delete(COUNTERS).where(COUNTERS.c.key == key))

    def purge_ended(self, now: float | None = None) -> int:
        """Delete the counters whose window has ended; how many there were."""
        moment = time.time() if now is None else now
        with self.writer.begin() as connection:
            return connection.execute(
                delete(COUNTERS).where(COUNTERS.c.window_ends_at <= moment)
            ).rowcount

    def _purge_now_and_then(self, now: float) -> None:
        if now < self._next_purge or not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._next_purge = now + PURGE_EVERY_SECONDS
            self.purge_ended(now)
        except SQLAlchemyError:
            # The hit is counted; the sweep is tried again a while later.
            log.warning("could not delete ended rate-limit counters", exc_info=True)
        finally:
            self._purge_lock.release()
