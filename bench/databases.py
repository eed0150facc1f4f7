"""Throwaway databases: a SQLite file in a scratch folder, or a fresh PostgreSQL database.

Each benchmark gets its own, so one's bookings can never slow down or collide with another's, and
nothing is left behind on the server whose URL was given.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg


@dataclass(frozen=True)
class ScratchDatabase:
    url: str  # what the app (DATABASE_URL) is given
    sqlite_path: Path | None  # set for SQLite: the raw-DBAPI side opens the file itself

    @property
    def kind(self) -> str:
        return "sqlite" if self.sqlite_path is not None else "postgresql"

    @property
    def libpq_url(self) -> str:
        """The URL psycopg itself accepts (no SQLAlchemy driver suffix)."""
        return libpq_url(self.url)


def libpq_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return "postgresql://" + rest


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.contextmanager
def scratch_database(admin_url: str | None, folder: Path, label: str) -> Iterator[ScratchDatabase]:
    """A new, empty database; ``admin_url`` None means SQLite in ``folder``."""
    if admin_url is None:
        path = folder / f"{label}.sqlite3"
        yield ScratchDatabase(f"sqlite:///{path}", path)
        return
    name = f"bookwell_bench_{label}_{secrets.token_hex(4)}"
    admin = libpq_url(admin_url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ScratchDatabase(_with_database(admin_url, name), None)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            # FORCE: a server worker that has not quite exited yet must not keep the database.
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
