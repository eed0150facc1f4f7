"""On PostgreSQL the app connects as a role that cannot change the audit trail: the tables belong
to the role migrations run as (``BOOKWELL_MIGRATION_DATABASE_URL``), which grants the app's role
(``DATABASE_URL``) only SELECT and INSERT on ``audit_entries``; and a trigger refuses UPDATE,
DELETE and TRUNCATE of it to everyone, the owner included.

Each test makes two login roles of its own and an empty database owned by the first, as
docs/deploy.md tells an operator to, and migrates it from nothing as the owner.
"""

from __future__ import annotations

import os
import secrets
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.exc import DBAPIError

from bookwell.core import audit
from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.schema import role_of, trail_unprotected_from
from bookwell.core.storage import db
from bookwell.core.testing import BookingClient, open_business, tampering_with_the_trail

ADMIN = os.environ.get("BOOKWELL_TEST_POSTGRES", "")
pytestmark = pytest.mark.skipif(not ADMIN, reason="needs PostgreSQL (BOOKWELL_TEST_POSTGRES)")

INSUFFICIENT_PRIVILEGE = "42501"
SLOT = "2027-03-02T10:00:00+01:00"


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture
def admin():
    engine = create_engine(_psycopg(ADMIN), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _login_role(admin, kind: str) -> tuple[str, str]:
    name = f"bookwell_{kind}_{uuid.uuid4().hex[:10]}"
    password = secrets.token_hex(16)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
    return name, password


@pytest.fixture
def roles(admin):
    """(owner, app): two login roles with passwords, dropped with everything they own after."""
    made = [_login_role(admin, "owner"), _login_role(admin, "app")]
    yield made
    with admin.connect() as connection:
        for name, _password in reversed(made):
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def fresh_database(admin, roles):
    """An empty database owned by the owner's role; yields (owner's URL, app's URL) to it."""
    name = f"bookwell_roles_{uuid.uuid4().hex[:12]}"
    (owner, owner_password), (app_role, app_password) = roles
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    server = make_url(ADMIN)

    def url(user: str, password: str) -> str:
        return f"postgresql://{user}:{password}@{server.host}:{server.port or 5432}/{name}"

    yield url(owner, owner_password), url(app_role, app_password)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The shipped fixtures (app, tenant, client, audit_trail, ...) on that database, as production
# runs: the app connects as the app's role, make_app migrates as the owner (as `bookwell init`).
@pytest.fixture
def database_url(fresh_database):
    return _psycopg(fresh_database[1])


@pytest.fixture
def migration_database_url(fresh_database):
    return _psycopg(fresh_database[0])


def run_as(url: str, statement: str) -> DBAPIError | None:
    """Run ``statement`` as the role of ``url``; the database's refusal, or None."""
    engine = db.build_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(statement)
    except DBAPIError as refusal:
        return refusal
    finally:
        engine.dispose()
    return None


def privileges(url: str, role: str, table: str) -> set[str]:
    engine = db.build_engine(url)
    with engine.connect() as connection:
        held = {
            privilege
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
            if connection.execute(
                text("SELECT has_table_privilege(:role, :table, :privilege)"),
                {"role": role, "table": table, "privilege": privilege},
            ).scalar_one()
        }
    engine.dispose()
    return held


def table_owners(url: str) -> set[str]:
    engine = db.build_engine(url)
    with engine.connect() as connection:
        owners = set(
            connection.execute(
                text("SELECT tableowner FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars()
        )
    engine.dispose()
    return owners


def bookwell(tmp_path, monkeypatch, *arguments, app_url: str, migration_url: str | None = None):
    monkeypatch.setenv("DATABASE_URL", app_url)
    if migration_url is None:
        monkeypatch.delenv("BOOKWELL_MIGRATION_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("BOOKWELL_MIGRATION_DATABASE_URL", migration_url)
    monkeypatch.delenv("BOOKWELL_DISABLED_PLUGINS", raising=False)
    return CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), *arguments])


# --- bookwell init ----------------------------------------------------------------------------


def test_init_migrates_as_the_owner_and_lets_the_app_role_only_add_to_the_trail(
    tmp_path, monkeypatch, fresh_database, roles
):
    owner_url, app_url = fresh_database
    (owner, _), (app_role, _) = roles
    result = bookwell(tmp_path, monkeypatch, "init", app_url=app_url, migration_url=owner_url)
    assert result.exit_code == 0, result.output
    assert table_owners(owner_url) == {owner}
    assert privileges(owner_url, app_role, "audit_entries") == {"SELECT", "INSERT"}
    assert privileges(owner_url, app_role, "alembic_version") == {"SELECT"}
    everything_but_truncate = {"SELECT", "INSERT", "UPDATE", "DELETE"}
    for table in ("bookings", "tenants", "users", "audit_people", "audit_personal"):
        assert privileges(owner_url, app_role, table) == everything_but_truncate, table
    # Again, as after every upgrade: nothing changes, nothing fails.
    again = bookwell(tmp_path, monkeypatch, "init", app_url=app_url, migration_url=owner_url)
    assert again.exit_code == 0, again.output
    assert privileges(owner_url, app_role, "audit_entries") == {"SELECT", "INSERT"}
    # The app's own commands run as the app's role on the schema the owner made.
    created = bookwell(
        tmp_path,
        monkeypatch,
        "tenants",
        "create",
        "clinic",
        "--name",
        "Clinic",
        "--timezone",
        "Europe/Paris",
        app_url=app_url,
    )
    assert created.exit_code == 0, created.output


def test_the_app_role_alone_cannot_migrate_and_says_what_to_set(
    tmp_path, monkeypatch, fresh_database, roles
):
    _owner_url, app_url = fresh_database
    (_, _), (app_role, _) = roles
    result = bookwell(tmp_path, monkeypatch, "init", app_url=app_url)
    assert result.exit_code != 0
    assert f"the database role '{app_role}' may not change the schema" in result.output
    assert "BOOKWELL_MIGRATION_DATABASE_URL" in result.output
    assert "Traceback" not in result.output
    created = bookwell(
        tmp_path,
        monkeypatch,
        "tenants",
        "create",
        "clinic",
        "--name",
        "Clinic",
        "--timezone",
        "Europe/Paris",
        app_url=app_url,
    )
    assert created.exit_code != 0
    assert "the schema is missing or old" in created.output


def test_a_superuser_as_the_app_role_is_refused(tmp_path, monkeypatch, fresh_database):
    owner_url, _app_url = fresh_database
    superuser_url = ADMIN.rsplit("/", 1)[0] + "/" + make_url(owner_url).database
    result = bookwell(tmp_path, monkeypatch, "init", app_url=superuser_url, migration_url=owner_url)
    assert result.exit_code != 0
    assert "is a superuser: it could switch off the audit trail's protection" in result.output


def test_an_app_role_that_may_act_as_the_owner_is_refused(
    tmp_path, monkeypatch, admin, fresh_database, roles
):
    owner_url, app_url = fresh_database
    (owner, _), (app_role, _) = roles
    with admin.connect() as connection:
        connection.exec_driver_sql(f'GRANT "{owner}" TO "{app_role}"')
    result = bookwell(tmp_path, monkeypatch, "init", app_url=app_url, migration_url=owner_url)
    assert result.exit_code != 0
    assert f"is, or may act as, '{owner}', the owner of the audit trail" in result.output


def test_serve_warns_of_an_app_role_that_could_switch_the_protection_off(
    app, fresh_database, roles
):
    owner_url, _app_url = fresh_database
    (owner, _), _app_role = roles
    assert trail_unprotected_from(db.engine_of(app)) is None  # the app's own role
    as_owner = db.build_engine(owner_url)
    assert trail_unprotected_from(as_owner) == (
        f"the app's database role '{owner}' is, or may act as, '{owner}', the owner of the audit "
        "trail"
    )
    as_owner.dispose()
    as_superuser = db.build_engine(ADMIN.rsplit("/", 1)[0] + "/" + make_url(owner_url).database)
    assert trail_unprotected_from(as_superuser).endswith("is a superuser")
    as_superuser.dispose()


# --- the app at work --------------------------------------------------------------------------


@pytest.fixture
def booker(make_client):
    """A client booking through the API (tests/conftest.py's ``client`` is Flask's)."""
    return make_client()


def test_a_booking_works_as_the_app_role_and_writes_the_trail(app, booker, audit_trail, roles):
    (_, _), (app_role, _) = roles
    assert role_of(db.engine_of(app)) == app_role
    booking = booker.book(SLOT)
    booker.cancel(booking)
    actions = [entry.action for entry in audit_trail()]
    assert "booking.created" in actions and "booking.cancelled" in actions
    with db.write_transaction(app) as session:
        assert audit.verify(session).ok


# What someone holding the app's password (a leaked DATABASE_URL, an injected statement) might
# try on the trail, its protection, or the record of which migrations ran.
ATTEMPTS = [
    "UPDATE audit_entries SET action = 'booking.nothing'",
    "DELETE FROM audit_entries",
    "TRUNCATE audit_entries",
    "TRUNCATE audit_entries CASCADE",
    "SELECT id FROM audit_entries FOR UPDATE",
    "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only",
    "ALTER TABLE audit_entries DISABLE TRIGGER USER",
    "DROP TRIGGER audit_entries_append_only ON audit_entries",
    "DROP TRIGGER audit_entries_no_truncate ON audit_entries",
    "DROP FUNCTION bookwell_audit_append_only() CASCADE",
    "CREATE OR REPLACE FUNCTION bookwell_audit_append_only() RETURNS trigger AS "
    "$$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql",
    "ALTER TABLE audit_entries RENAME TO audit_entries_old",
    "ALTER TABLE audit_entries ADD COLUMN note text",
    "DROP TABLE audit_entries CASCADE",
    "UPDATE alembic_version SET version_num = '0001'",
    "DELETE FROM alembic_version",
]


def test_the_app_role_can_neither_change_the_trail_nor_its_protection(app, booker, fresh_database):
    booker.book(SLOT)
    # One database for every attempt (migrating one takes a while); each runs on its own.
    outcomes = {statement: run_as(fresh_database[1], statement) for statement in ATTEMPTS}
    allowed = [statement for statement, refusal in outcomes.items() if refusal is None]
    assert allowed == []
    other_refusals = {
        statement: str(refusal.orig)
        for statement, refusal in outcomes.items()
        if refusal is not None and db.sqlstate(refusal) != INSUFFICIENT_PRIVILEGE
    }
    assert other_refusals == {}
    with db.write_transaction(app) as session:
        verdict = audit.verify(session)
    assert verdict.ok and verdict.checked >= 1


def test_even_the_owner_is_refused_by_the_trigger(app, booker, fresh_database):
    booker.book(SLOT)
    for statement in ("UPDATE audit_entries SET action = 'x'", "DELETE FROM audit_entries"):
        refusal = run_as(fresh_database[0], statement)
        assert refusal is not None, statement
        assert "the audit trail is append-only" in str(refusal.orig), statement
    refusal = run_as(fresh_database[0], "TRUNCATE audit_entries CASCADE")
    assert refusal is not None
    assert "append-only: TRUNCATE of audit_entries refused" in str(refusal.orig)
    with db.write_transaction(app) as session:
        assert audit.verify(session).ok
    # Only the owner can switch the trigger off (tampering_with_the_trail does), and then
    # `audit verify` finds what it changed.
    with tampering_with_the_trail(app) as connection:
        connection.exec_driver_sql("UPDATE audit_entries SET actor = 'user:1' WHERE sequence = 1")
    with db.write_transaction(app) as session:
        verdict = audit.verify(session)
    assert not verdict.ok and verdict.reason == "entry 1 was edited"


def test_a_plugin_installed_later_gets_its_table_granted_to_the_app_role(
    make_app, clock, fresh_database, roles
):
    owner_url, _app_url = fresh_database
    (owner, _), (app_role, _) = roles
    before = make_app(DISABLED_PLUGINS=["terms"])
    with db.engine_of(before).connect() as connection:
        assert "terms_versions" not in inspect(connection).get_table_names()
    business = open_business(before, clock())
    # Installed now: `bookwell init` (make_app does the same) migrates it as the owner.
    after = make_app()
    assert role_of(db.engine_of(after)) == app_role
    assert privileges(owner_url, app_role, "terms_versions") == {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
    }
    assert table_owners(owner_url) == {owner}
    with after.app_context():
        plugin_changes.enable(after, business.tenant_id, "terms", {"text": "# Terms"}, clock())
    client = BookingClient(after, business, clock, "Ann", "ann@example.com")
    assert client.try_book(SLOT).status_code == 422  # the plugin reads its table...
    booking = client.book(SLOT, consents=["terms"])  # ...and the app role wrote it
    assert booking["status"] == "confirmed"
    with db.engine_of(after).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM terms_versions")).scalar_one() == 1
