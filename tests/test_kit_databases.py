"""Each test's database (``database_url``): it starts migrated and empty, whatever the test before
it did. On PostgreSQL a database is emptied and handed on only when its test left it as the
template is but for its rows; anything else (a schema, a trigger or a privilege changed, someone
still connected) makes it be dropped, so that no test sees what another left."""

from __future__ import annotations

import os

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from bookwell.core import testing

on_postgresql = pytest.mark.skipif(
    not os.environ.get(testing.POSTGRES_ENV), reason="about PostgreSQL's reused test databases"
)


def test_a_tests_database_starts_migrated_and_empty(database_url):
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            assert {"tenants", "bookings", "audit_entries", "alembic_version"} <= tables
            assert connection.scalar(text("SELECT count(*) FROM tenants")) == 0
    finally:
        engine.dispose()


@pytest.fixture
def clone(postgres_template):
    """A new clone of the template, as a test gets it; dropped after, if still there."""
    name = testing._clone(postgres_template)
    yield name
    testing._drop(name)


def admin(name: str) -> psycopg.Connection:
    return testing._connect_as_admin(name)


def add_tenant(connection: psycopg.Connection, slug: str) -> int:
    return connection.execute(
        "INSERT INTO tenants (slug, name, timezone, created_at) "
        "VALUES (%s, 'Salon', 'Europe/Paris', now()) RETURNING id",
        (slug,),
    ).fetchone()[0]


def add_trail_entry(connection: psycopg.Connection) -> None:
    connection.execute(
        "INSERT INTO audit_entries "
        "(chain, sequence, at, actor, action, subject, details, previous_hash, entry_hash) "
        "VALUES ('tenant:1', 1, now(), 'x', 'booking.created', 'y', '{}', '', 'h')"
    )


@on_postgresql
def test_a_database_left_with_rows_is_emptied_and_its_ids_start_again(clone, postgres_template):
    with admin(clone) as connection:
        first = add_tenant(connection, "salon")
        add_tenant(connection, "barber")
        add_trail_entry(connection)
    assert testing._emptied_for_reuse(clone, postgres_template)
    with admin(clone) as connection:
        assert connection.execute("SELECT count(*) FROM tenants").fetchone()[0] == 0
        assert connection.execute("SELECT count(*) FROM audit_entries").fetchone()[0] == 0
        assert add_tenant(connection, "salon") == first
        # The trail's protection survived the emptying.
        add_trail_entry(connection)
        with pytest.raises(psycopg.Error, match="append-only"):
            connection.execute("DELETE FROM audit_entries")


@on_postgresql
@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE tenants ADD COLUMN extra text",
        "CREATE TABLE leftover (id int)",
        "CREATE INDEX leftover_index ON tenants (name)",
        "ALTER TABLE audit_entries DISABLE TRIGGER USER",
        "REVOKE SELECT ON tenants FROM PUBLIC; GRANT SELECT ON tenants TO PUBLIC",
        "UPDATE alembic_version SET version_num = 'elsewhere'",
        "CREATE FUNCTION leftover() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ],
)
def test_a_database_whose_schema_changed_is_not_handed_on(clone, postgres_template, change):
    with admin(clone) as connection:
        connection.execute(change)
    assert not testing._emptied_for_reuse(clone, postgres_template)


@on_postgresql
def test_a_database_someone_is_still_connected_to_is_not_handed_on(clone, postgres_template):
    with admin(clone) as connection:
        add_tenant(connection, "salon")
        assert not testing._emptied_for_reuse(clone, postgres_template)
        # Untouched: the rows are still there for whoever holds the connection.
        assert connection.execute("SELECT count(*) FROM tenants").fetchone()[0] == 1
