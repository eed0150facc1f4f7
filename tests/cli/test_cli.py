"""The ``bookwell`` command: init, demo, tenants, and one-line errors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bookwell.core import create_app, schema
from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Provider, Service, Tenant, WorkingHours


@pytest.fixture
def run(tmp_path, database_url, monkeypatch):
    """Run ``bookwell --instance TMP ...`` in-process on the test's database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    for variable in ("BOOKWELL_SECRET_KEY", "BOOKWELL_INSTANCE"):
        monkeypatch.delenv(variable, raising=False)
    instance = tmp_path / "instance"

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(main, ["--instance", str(instance), *args], input=input)

    invoke.instance = instance
    return invoke


def test_init_writes_a_private_config_with_fresh_secrets_once(run):
    first = run("init")
    assert first.exit_code == 0, first.output
    config_file = run.instance / "config.toml"
    text = config_file.read_text()
    assert "secret_key" in text and "encryption_key" in text
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert run("init").exit_code == 0
    assert config_file.read_text() == text  # kept, not regenerated


def test_fresh_instances_get_different_secrets(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("a", "b"):
        CliRunner().invoke(main, ["--instance", str(tmp_path / name), "init"])
    assert (tmp_path / "a/config.toml").read_text() != (tmp_path / "b/config.toml").read_text()


def test_the_environment_overrides_the_config_file(run, monkeypatch):
    run("init")
    monkeypatch.setenv("BOOKWELL_SECRET_KEY", "from-the-environment")
    app = create_app({"INSTANCE_PATH": str(run.instance)})
    assert app.config["SECRET_KEY"] == "from-the-environment"
    monkeypatch.delenv("BOOKWELL_SECRET_KEY")
    app = create_app({"INSTANCE_PATH": str(run.instance)})
    assert app.config["SECRET_KEY"] in (run.instance / "config.toml").read_text()


def test_init_upgrades_without_losing_data(run):
    assert run("init").exit_code == 0
    assert run("tenants", "create", "keepme", "--name", "Keep", "--timezone", "UTC").exit_code == 0
    assert run("init").exit_code == 0
    app = create_app({"INSTANCE_PATH": str(run.instance)})
    assert schema.is_current(db.engine_of(app))
    with app.app_context():
        assert db.session().scalar(select(Tenant.name).where(Tenant.slug == "keepme")) == "Keep"


def test_demo_creates_a_bookable_business_once(run):
    first = run("demo")
    assert first.exit_code == 0, first.output
    assert "created" in first.output and "/api/v1/tenants/demo/" in first.output
    second = run("demo")
    assert second.exit_code == 0 and "found" in second.output
    app = create_app({"INSTANCE_PATH": str(run.instance)})
    with app.app_context():
        session = db.session()
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
        assert tenant.timezone == "Europe/Paris"
        assert session.scalar(select(func.count()).select_from(Tenant)) == 1
        assert session.scalar(select(func.count()).select_from(Service)) >= 3
        providers = session.scalars(select(Provider)).all()
        assert len(providers) >= 2
        for provider in providers:
            hours = session.execute(
                select(WorkingHours.weekday, WorkingHours.starts, WorkingHours.ends).where(
                    WorkingHours.provider_id == provider.id
                )
            ).all()
            assert sorted(hour.weekday for hour in hours) == [0, 1, 2, 3, 4, 5]
            assert {(str(h.starts), str(h.ends)) for h in hours} == {("09:00:00", "18:00:00")}
        # The built-in reminders are on, so the marketplace shows a plugin at work.
        assert plugin_changes.tenant_plugins(session, tenant.id)["reminders"][0] is True
    assert "plugins on:   reminders" in first.output and "plugins on" not in second.output


def test_the_demo_answers_on_the_api(run):
    run("demo")
    client = create_app({"INSTANCE_PATH": str(run.instance), "RATE_LIMITS": "off"}).test_client()
    services = client.get("/api/v1/tenants/demo/services").json
    assert len(services) >= 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["tenants", "create", "Bad_Slug", "--name", "X", "--timezone", "UTC"], "bad slug"),
        (["tenants", "create", "trailing-", "--name", "X", "--timezone", "UTC"], "bad slug"),
        (["tenants", "create", "api", "--name", "X", "--timezone", "UTC"], "reserved"),
        (["tenants", "create", "fine", "--name", "X", "--timezone", "Mars/Olympus"], "time zone"),
        (["tenants", "create", "fine", "--name", " ", "--timezone", "UTC"], "name"),
        (["tenants", "create", "fine", "--timezone", "UTC"], "--name"),
        (["serve", "--port", "99999"], "99999"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(run, arguments, message):
    run("init")
    result = run(*arguments)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1


def test_a_slug_is_unique(run):
    run("init")
    assert run("tenants", "create", "one", "--name", "One", "--timezone", "UTC").exit_code == 0
    again = run("tenants", "create", "one", "--name", "One", "--timezone", "UTC")
    assert again.exit_code != 0 and "already exists" in again.output


def test_commands_needing_the_schema_say_to_run_init(run):
    result = run("tenants", "create", "early", "--name", "Early", "--timezone", "UTC")
    if result.exit_code == 0:  # PostgreSQL test databases come migrated from their template
        assert "created" in result.output
    else:
        assert "bookwell init" in result.output


def test_the_console_script_is_installed():
    executable = Path(sys.executable).with_name("bookwell")
    result = subprocess.run(
        [str(executable), "--help"], capture_output=True, text=True, env={**os.environ}, check=False
    )
    assert result.returncode == 0
    for command in ("init", "serve", "demo", "tenants"):
        assert command in result.stdout


def test_healthz_answers_200_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"


def test_healthz_answers_503_when_the_database_does_not(tmp_path):
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing",
            "SECRET_KEY": "x",
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
