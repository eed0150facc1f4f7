"""Tampering with the stored trail, as someone holding the tables' owner's rights could."""

from __future__ import annotations

import contextlib

from sqlalchemy import text


@contextlib.contextmanager
def tampering(engine):
    """A transaction free to UPDATE and DELETE entries: on PostgreSQL the owner first switches
    the append-only trigger off (the application's own role cannot)."""
    with engine.begin() as connection:
        owner = connection.dialect.name == "postgresql"
        if owner:
            connection.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        yield connection
        if owner:
            connection.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
