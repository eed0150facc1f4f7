"""The pool's connections to PostgreSQL: pinged only when idle, and replaced when the server
dropped them."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from bookwell.core.storage import db


def postgresql_only(app) -> None:
    if db.engine_of(app).dialect.name != "postgresql":
        pytest.skip("about PostgreSQL's connections")


def server_statements(app):
    """What each DBAPI cursor sends, pings included (SQLAlchemy's own events miss those)."""
    sent: list[str] = []
    engine = db.engine_of(app)

    @event.listens_for(engine, "do_execute")
    def on_execute(cursor, statement, parameters, context):  # noqa: ARG001
        sent.append(statement)

    return sent


def drop_the_apps_connections(app) -> int:
    """As a server restart would: end every other connection to the app's database."""
    outsider = create_engine(db.engine_of(app).url, poolclass=NullPool)
    try:
        with outsider.connect() as connection:
            ended = connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            connection.commit()
    finally:
        outsider.dispose()
    return ended


def test_a_connection_lent_again_at_once_is_not_pinged(app, business, client):
    postgresql_only(app)
    client.get("/api/v1/tenants/salon/services")
    sent = server_statements(app)
    for _ in range(3):
        assert client.get("/api/v1/tenants/salon/services").status_code == 200
    assert sent, "the requests read nothing"
    assert not [statement for statement in sent if statement.strip().upper() == "SELECT 1"]


def test_connections_the_server_dropped_are_replaced_after_an_idle_while(
    app, business, client, monkeypatch
):
    """A connection that sat idle is pinged before it is lent: one the server ended (a restart,
    an idle timeout) is thrown away and the request runs on a new one."""
    postgresql_only(app)
    assert client.get("/api/v1/tenants/salon/services").status_code == 200
    assert drop_the_apps_connections(app) >= 1
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", -1.0)  # every pooled one counts as idle
    for _ in range(3):
        assert client.get("/api/v1/tenants/salon/services").status_code == 200
    with db.write_transaction(app) as writer:
        assert writer.scalar(text("SELECT 1")) == 1
