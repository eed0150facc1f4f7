"""Plugins' own tables: migrated after core's, each with its own version table, named with the
plugin's prefix; a plugin uninstalled, blocked or failing never breaks core's upgrade."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text

from bookwell.core import create_app, schema
from bookwell.core.cli.root import main
from bookwell.core.pluginhost.host import PluginHost
from bookwell.core.storage import db
from bookwell.hooks import Manifest, hookimpl

MIGRATIONS = Path(__file__).parent / "plugin_migrations"
POSTGRES = os.environ.get("BOOKWELL_TEST_POSTGRES")


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture
def engine(blank_database_url):
    built = db.build_engine(blank_database_url)
    yield built
    built.dispose()


@pytest.fixture
def init(tmp_path, blank_database_url, monkeypatch):
    """Run ``bookwell init`` on the blank database."""
    monkeypatch.setenv("DATABASE_URL", blank_database_url)
    monkeypatch.delenv("BOOKWELL_DISABLED_PLUGINS", raising=False)

    def invoke():
        return CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), "init"])

    return invoke


def tables(engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def version(engine, table: str) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text(f"SELECT version_num FROM {table}")).scalars())


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


def plugin_with_migrations(name: str, folder: str):
    class Plugin:
        MANIFEST = manifest(name)

        @hookimpl
        def migrations():
            return str(MIGRATIONS / folder)

    return Plugin


def host_with(*plugins) -> PluginHost:
    host = PluginHost()
    for plugin in plugins:
        host.add(plugin, source="test")
    return host


@pytest.fixture(autouse=True)
def visit_notes_installed():
    host = PluginHost()
    host.load_entry_points()
    missing = "pip install ./tests/packages/bookwell-visit-notes first"
    assert "visit_notes" in host.installed, missing


# --- an installed plugin's tables ---------------------------------------------------------------


def test_init_creates_a_plugins_tables_with_their_own_version_table(init, engine):
    answer = init()
    assert answer.exit_code == 0, answer.output
    found = tables(engine)
    assert {"tenants", "bookings", "visit_notes_entries"} <= found
    assert version(engine, "alembic_version_visit_notes") == ["visit_notes_0001"]
    # Core's history never names a plugin's revision.
    assert version(engine, "alembic_version") == [
        schema.ScriptDirectory.from_config(schema.alembic_config()).get_current_head()
    ]
    assert schema.plugins_behind(engine) == []


def test_upgrade_runs_again_without_change(engine):
    assert schema.upgrade(engine) == []
    assert schema.upgrade(engine) == []
    assert version(engine, "alembic_version_visit_notes") == ["visit_notes_0001"]


def test_a_plugin_not_yet_upgraded_is_reported_behind(engine):
    schema.upgrade(engine, host_with())
    assert schema.is_current(engine)
    assert "visit_notes" in schema.plugins_behind(engine)
    schema.upgrade(engine)
    assert "visit_notes" not in schema.plugins_behind(engine)


# --- removing a plugin --------------------------------------------------------------------------


def test_upgrade_works_once_the_plugin_is_uninstalled(engine):
    schema.upgrade(engine)
    # Core alone, as after `pip uninstall bookwell-visit-notes`.
    assert schema.upgrade(engine, host_with()) == []
    assert schema.is_current(engine)
    assert "visit_notes_entries" in tables(engine)  # its data is kept, should it come back
    assert version(engine, "alembic_version_visit_notes") == ["visit_notes_0001"]


def test_a_blocked_plugin_is_not_migrated_and_does_not_break_init(init, engine, monkeypatch):
    monkeypatch.setenv("BOOKWELL_DISABLED_PLUGINS", "visit_notes")
    answer = init()
    assert answer.exit_code == 0, answer.output
    assert "visit_notes_entries" not in tables(engine)
    assert schema.is_current(engine) and schema.plugins_behind(engine) == []


def test_an_app_can_serve_on_a_schema_with_a_removed_plugins_tables(engine, blank_database_url):
    schema.upgrade(engine)
    app = create_app(
        {"DATABASE_URL": blank_database_url, "SECRET_KEY": "x", "DISABLED_PLUGINS": ["visit_notes"]}
    )
    assert schema.upgrade(db.engine_of(app), host_with()) == []
    assert app.test_client().get("/healthz").status_code == 200
    db.engine_of(app).dispose()


# --- plugins that get it wrong ------------------------------------------------------------------


def test_a_table_outside_the_plugins_prefix_is_rolled_back_and_reported(engine):
    stray = plugin_with_migrations("stray", "stray")
    good = plugin_with_migrations("good-plugin", "good")
    failures = schema.upgrade(engine, host_with(stray, good))
    assert [failure.plugin for failure in failures] == ["stray"]
    assert "stray_" in failures[0].error and "guests" in failures[0].error
    found = tables(engine)
    assert "guests" not in found and "stray_ok" not in found
    assert "alembic_version_stray" not in found or version(engine, "alembic_version_stray") == []
    # Core and the other plugin were upgraded all the same.
    assert schema.is_current(engine)
    assert "good_plugin_items" in found
    assert version(engine, "alembic_version_good_plugin") == ["good_0001"]


def test_a_failing_migration_is_reported_and_core_is_upgraded(engine):
    broken = plugin_with_migrations("broken-migration", "broken")
    failures = schema.upgrade(engine, host_with(broken))
    assert [failure.plugin for failure in failures] == ["broken-migration"]
    assert "this migration fails" in failures[0].error
    assert schema.is_current(engine)
    assert "broken_migration_half" not in tables(engine)
    assert "broken-migration" in schema.plugins_behind(engine, host_with(broken))


def test_a_failing_migrations_hook_is_reported(engine):
    class Confused:
        MANIFEST = manifest("confused")

        @hookimpl
        def migrations():
            raise RuntimeError("where did I put them")

    good = plugin_with_migrations("good-plugin", "good")
    host = host_with(Confused, good)
    assert host.installed["confused"].status == "broken"  # from the start, not at upgrade
    failures = schema.upgrade(engine, host)
    assert [failure.plugin for failure in failures] == ["confused"]
    assert "where did I put them" in failures[0].error
    assert "good_plugin_items" in tables(engine)


def test_init_says_which_plugin_failed(init, monkeypatch):
    broken = plugin_with_migrations("broken-migration", "broken")
    real_host = PluginHost.load_entry_points

    def with_broken(self):
        real_host(self)
        self.add(broken, source="test")

    monkeypatch.setattr(PluginHost, "load_entry_points", with_broken)
    answer = init()
    assert answer.exit_code == 0, answer.output
    assert "broken-migration" in answer.output and "this migration fails" in answer.output


# --- a plugin upgraded while the process runs -----------------------------------------------------


def test_a_revision_added_while_the_process_runs_is_found_and_run(engine, tmp_path):
    """Upgrades skip Alembic for a database at its heads, which are kept per process: a plugin
    given a new revision (a newer package installed beside a running worker) must still run it."""
    folder = tmp_path / "good"
    shutil.copytree(MIGRATIONS / "good", folder)

    class Good:
        MANIFEST = manifest("good-plugin")

        @hookimpl
        def migrations():
            return str(folder)

    assert schema.upgrade(engine, host_with(Good)) == []
    assert version(engine, "alembic_version_good_plugin") == ["good_0001"]
    (folder / "versions" / "0002_more.py").write_text(
        textwrap.dedent(
            '''
            import sqlalchemy as sa
            from alembic import op

            revision = "good_0002"
            down_revision = "good_0001"


            def upgrade() -> None:
                op.create_table("good_plugin_more", sa.Column("id", sa.Integer(), primary_key=True))
            '''
        )
    )
    assert "good-plugin" in schema.plugins_behind(engine, host_with(Good))
    assert schema.upgrade(engine, host_with(Good)) == []
    assert version(engine, "alembic_version_good_plugin") == ["good_0002"]
    assert "good_plugin_more" in tables(engine)
