"""The database: engine per app, a session per request, and the write transaction.

The write transaction is where the double-booking guarantee starts on SQLite: ``BEGIN IMMEDIATE``
takes the database's write lock before the overlap check reads anything, so two checks can never
interleave. On PostgreSQL the exclusion constraint is the guarantee, and every connection waits
for a lock at most the instance's lock timeout.

On SQLite, writers of this instance first queue on a file lock beside the database
(:func:`_writers_queue`): SQLite's own busy handler polls the database lock with sleeps of up to
100 ms, so under load a worker slept for a lock freed long before; the file lock is handed over
within a fraction of a millisecond. ``BEGIN IMMEDIATE`` still takes the database's lock, so a
writer outside the queue (another tool) stays safe; it merely waits as SQLite makes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Connection, DateTime, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

EXTENSION = "bookwell.db"
SESSION_APP = "bookwell.app"  # in every session's info: the app it belongs to


class Base(DeclarativeBase):
    pass


class UTCDateTime(TypeDecorator[datetime]):
    """An aware instant, stored in UTC. SQLite has no zones, so it gets naive UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: every instant carries its zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class LockTimeout(Exception):
    """The write lock was not granted in time; the caller should answer 503 and ask for a retry."""


def build_engine(url: str, *, pool_size: int = 10, lock_timeout: float = 5.0) -> Engine:
    # A database error carries the statement's values (a client's name, e-mail and notes) into
    # its message, and so into every log and trace of it: logs name people by id, never by data.
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            hide_parameters=True,
            connect_args={"timeout": lock_timeout, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    # Every connection waits for a lock at most the instance's lock timeout: set once when it
    # connects rather than per transaction, a round trip less for each write.
    milliseconds = max(1, round(lock_timeout * 1000))
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        hide_parameters=True,
        connect_args={"options": f"-c lock_timeout={milliseconds}"},
    )
    _ping_when_idle(engine)
    return engine


# A pooled connection used this recently is taken to be alive; older ones are pinged first.
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN_AT = "bookwell.checked_in_at"


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before it is lent only when it sat idle for a while, which is
    when the server may have dropped it (a restart, an idle timeout): SQLAlchemy's
    ``pool_pre_ping`` pings on every checkout, a round trip each, three per booking. A
    connection lent again within the second is not pinged; should the server have gone in
    that second, the statement fails, SQLAlchemy empties the pool, and the next request
    connects afresh."""

    @event.listens_for(engine.pool, "checkin")
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # None: a connection just made, which needs no ping.
        checked_in_at = record.info.pop(_CHECKED_IN_AT, None)
        if checked_in_at is None or time.monotonic() - checked_in_at <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool drops this connection and lends another (a new one if need be).
            raise DisconnectionError("a pooled connection did not answer its ping") from error


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below; pysqlite's own
        # implicit BEGIN would otherwise be DEFERRED and take no lock before the overlap check.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def init_app(app: Flask) -> None:
    engine = build_engine(
        app.config["DATABASE_URL"],
        pool_size=int(app.config["DATABASE_POOL_SIZE"]),
        lock_timeout=float(app.config["LOCK_TIMEOUT_SECONDS"]),
    )
    # Each session knows its app: what reacts to the ORM's events (loading, flushing) may run
    # where no app context is pushed.
    info = {SESSION_APP: app}
    app.extensions[EXTENSION] = {
        "engine": engine,
        "sessions": sessionmaker(engine, expire_on_commit=False, info=info),
        "writer_sessions": sessionmaker(
            engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False, info=info
        ),
    }
    app.teardown_appcontext(_close_request_session)


def engine_of(app: Flask | None = None) -> Engine:
    return (app or current_app).extensions[EXTENSION]["engine"]


@contextlib.contextmanager
def migration_engine(app: Flask) -> Iterator[Engine]:
    """The engine schema changes use: ``MIGRATION_DATABASE_URL``'s (the tables' owner), made for
    the occasion and disposed of after it, or the app's own when it is not set."""
    url = app.config.get("MIGRATION_DATABASE_URL")
    if not url:
        yield engine_of(app)
        return
    engine = build_engine(url, pool_size=1, lock_timeout=float(app.config["LOCK_TIMEOUT_SECONDS"]))
    try:
        yield engine
    finally:
        engine.dispose()


def session() -> Session:
    """The read session of the current app context, closed when the context ends."""
    if "db_session" not in g:
        g.db_session = current_app.extensions[EXTENSION]["sessions"]()
    return g.db_session


def _close_request_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()


@contextlib.contextmanager
def fresh_session(app: Flask | None = None) -> Iterator[Session]:
    """A session of its own, seeing everything committed so far (not the request's snapshot)."""
    with (app or current_app).extensions[EXTENSION]["sessions"]() as fresh:
        yield fresh


@contextlib.contextmanager
def write_transaction(app: Flask | None = None) -> Iterator[Session]:
    """A session whose transaction holds the write lock before it reads; commits on success.

    A lock not granted within the instance's lock timeout raises :class:`LockTimeout`.
    """
    app = app or current_app
    factory = app.extensions[EXTENSION]["writer_sessions"]
    with factory() as writer, contextlib.ExitStack() as queued:
        try:
            with writer.begin():
                # PostgreSQL's connections carry the lock timeout already (build_engine).
                if writer.get_bind().dialect.name != "postgresql":
                    # Queued right before the database lock; released after the commit (the
                    # stack closes after the transaction block).
                    queued.enter_context(_writers_queue(app))
                    writer.connection()  # BEGIN IMMEDIATE happens here, before any read
                yield writer
        except OperationalError as error:
            if _is_lock_timeout(error):
                raise LockTimeout(str(error.orig)) from error
            raise


def asynchronous_commit(session: Session) -> None:
    """Let this write transaction's commit return before its log reaches the disk.

    Only for rows that are derived from rows already committed, and made again should a crash
    lose them: the commit may then vanish whole in a crash, never in part, and every later
    commit that waits for the disk carries it along. On PostgreSQL that flush was most of a
    small transaction's time (2-3 ms per commit on this project's CI disks); SQLite (WAL,
    ``synchronous=NORMAL``) does not flush at commit anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("SET LOCAL synchronous_commit = off")


@contextlib.contextmanager
def statement_on_its_own(app: Flask | None = None) -> Iterator[Connection]:
    """A PostgreSQL connection whose every statement commits on its own (autocommit): for a
    write that is one statement, whose BEGIN and COMMIT would be two round trips more. Not for
    SQLite, whose writes must go through :func:`write_transaction` and its writers' queue."""
    engine = engine_of(app)
    if engine.dialect.name != "postgresql":
        raise RuntimeError("statement_on_its_own is for PostgreSQL; SQLite writes queue")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection


# Polling the file lock: short sleeps, growing to a bound well under SQLite's own (100 ms).
QUEUE_FIRST_WAIT = 0.0002
QUEUE_LONGEST_WAIT = 0.002


@contextlib.contextmanager
def _writers_queue(app: Flask) -> Iterator[None]:
    """Hold the instance's writers' file lock (SQLite files only; nothing elsewhere), or raise
    :class:`LockTimeout` after the instance's lock timeout."""
    engine = engine_of(app)
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    descriptor = os.open(f"{path}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + float(app.config["LOCK_TIMEOUT_SECONDS"])
        wait = QUEUE_FIRST_WAIT
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout("the writers' queue was not free in time") from None
                time.sleep(wait)
                wait = min(wait * 2, QUEUE_LONGEST_WAIT)
        yield  # closing the descriptor releases the lock
    finally:
        os.close(descriptor)


def _is_lock_timeout(error: DBAPIError) -> bool:
    original = error.orig
    if "database is locked" in str(original) or "database is busy" in str(original):
        return True
    return getattr(original, "sqlstate", None) == "55P03"  # PostgreSQL lock_not_available


def sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)
