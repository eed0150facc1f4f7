"""Database leases: which process runs a periodic job, until when, when there is no Redis.

A lease is one ``job_leases`` row per job name, taken with a single conditional upsert: insert
the row, or take it over only if it has expired. On PostgreSQL a second taker waits on the row (or
on the unique key) and then finds the condition false; on SQLite the write lock serialises
takers. Either way exactly one of several simultaneous takers gets it.

A finished run leaves the row marked ``done:`` and held until the end of its period, so that the
periodic ticker of another process does not run it again in that period, while an operator's
``bookwell tick`` may (it only waits for a run in progress).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime

from flask import Flask
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from bookwell.core.storage import db
from bookwell.core.storage.models import JobLease

log = logging.getLogger("bookwell.leases")
DONE = "done:"


def new_holder() -> str:
    """A name for this taker that says where it runs (host and pid) and tells it apart."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def take(
    app: Flask, name: str, holder: str, now: datetime, until: datetime, *, over_done: bool = False
) -> bool:
    """Take the lease ``name`` for ``holder`` until ``until`` if it is free at ``now`` (no row,
    or expired; or, with ``over_done``, a finished run's period). Returns whether it was taken;
    a database that does not answer in time counts as "not taken" (logged)."""
    free = JobLease.expires_at <= now
    if over_done:
        free = free | JobLease.holder.startswith(DONE)
    try:
        with db.write_transaction(app) as session:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            statement = (
                dialect.insert(JobLease.__table__)
                .values(name=name, holder=holder, expires_at=until)
                .on_conflict_do_update(
                    index_elements=[JobLease.name],
                    set_={"holder": holder, "expires_at": until},
                    where=free,
                )
                .returning(JobLease.name)
            )
            # A row comes back when it was inserted or taken over (psycopg reports no rowcount).
            return session.execute(statement).first() is not None
    except db.LockTimeout:
        log.warning("lease %s: the database was busy; not taken this time", name)
        return False


def finish(app: Flask, name: str, holder: str, until: datetime) -> None:
    """Mark ``holder``'s run of ``name`` done, keeping the period held until ``until``."""
    with db.write_transaction(app) as session:
        session.execute(
            update(JobLease)
            .where(JobLease.name == name, JobLease.holder == holder)
            .values(holder=(DONE + holder)[:100], expires_at=until)
            .execution_options(synchronize_session=False)
        )
