"""Plugins' commands for operators: ``bookwell <plugin> <command>``, run inside the app with the
business's context from ``plugin_context``; a plugin whose ``commands`` fail, answer nonsense or
take a core command's name is logged and left out, and ``bookwell`` goes on working."""

from __future__ import annotations

import logging

import click
import pytest
from click.testing import CliRunner
from guide_examples import guide_example

from bookwell.core import audit, create_app
from bookwell.core.cli import instance as cli_instance
from bookwell.core.cli.root import main
from bookwell.core.context import make_context
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant
from bookwell.core.testing import CHEAP_HASHING, STAFF_PASSWORD, create_user, open_business
from bookwell.hooks import Manifest, hookimpl
from bookwell.hooks.pages import plugin_context


def manifest(name: str) -> Manifest:
    return Manifest(name, f"{name.title()} plugin", f"Test plugin {name}.", "1.0", "test", "tests")


@click.command()
@click.option("--tenant", "slug", required=True, help="The business's slug.")
@click.option("--email", required=True)
def unlock(slug: str, email: str) -> None:
    """Unlock an account locked by too many failed logins."""
    ctx = plugin_context(slug)
    if ctx.store.delete(f"locked:{email}"):
        ctx.audit("unlocked", email)
        click.echo(f"unlocked {email} at {ctx.tenant.name}")
    else:
        click.echo(f"{email} was not locked")


@click.command()
def explode() -> None:
    """Fail as a plugin's code may."""
    raise RuntimeError("the authenticator service is down")


@click.group()
def authenticators() -> None:
    """Authenticators, a group within the plugin's group."""


@authenticators.command("reset")
@click.option("--tenant", "slug", required=True)
@click.argument("email")
def reset(slug: str, email: str) -> None:
    ctx = plugin_context(slug)
    ctx.store.set(f"totp:{email}", None)
    click.echo(f"reset by {ctx.plugin}")


class Lockout:
    MANIFEST = manifest("lockout")

    @hookimpl
    def commands():
        return [unlock, explode, authenticators]


class CrashingCommands:
    MANIFEST = manifest("crashing")

    @hookimpl
    def commands():
        raise RuntimeError("commands crashed")


class Nonsense:
    MANIFEST = manifest("nonsense")

    @hookimpl
    def commands():
        return ["unlock"]


class NotAList:
    MANIFEST = manifest("not-a-list")

    @hookimpl
    def commands():
        return unlock


class TwoOfAName:
    MANIFEST = manifest("twice")

    @hookimpl
    def commands():
        return [unlock, unlock]


class ClaimsTenants:
    MANIFEST = manifest("tenants")

    @hookimpl
    def commands():
        return [unlock]


class NoCommands:
    MANIFEST = manifest("quiet")

    @hookimpl
    def commands():
        return None


class BrokenRoutes:
    MANIFEST = manifest("broken-routes")

    @hookimpl
    def routes():
        raise RuntimeError("no pages today")

    @hookimpl
    def commands():
        return [unlock]


PLUGINS = [
    Lockout,
    CrashingCommands,
    Nonsense,
    NotAList,
    TwoOfAName,
    ClaimsTenants,
    NoCommands,
    BrokenRoutes,
]


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=PLUGINS)


@pytest.fixture
def salon(app, clock):
    return open_business(app, clock())


@pytest.fixture
def run(app, tmp_path, database_url, clock, monkeypatch):
    """``bookwell --instance TMP ...`` in-process, on the test's database, with PLUGINS."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    for variable in ("BOOKWELL_SECRET_KEY", "BOOKWELL_INSTANCE", "BOOKWELL_DISABLED_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    built = []

    def build(config=None):
        settings = {"PASSWORD_HASHING": CHEAP_HASHING, "CLOCK": clock, "EXTRA_PLUGINS": PLUGINS}
        built.append(create_app({**(config or {}), **settings}))
        return built[-1]

    monkeypatch.setattr(cli_instance, "create_app", build)

    def invoke(*args: str):
        return CliRunner().invoke(main, ["--instance", str(tmp_path / "cli"), *args])

    invoke.built = built
    yield invoke
    for cli_app in built:
        db.engine_of(cli_app).dispose()


def store_of(app, tenant_id, now):
    with app.app_context():
        tenant = db.session().get(Tenant, tenant_id)
        return make_context(tenant, now).for_plugin("lockout").store


def test_help_lists_the_plugins_with_commands_and_reports_the_others(run, caplog):
    caplog.set_level(logging.WARNING, logger="bookwell.plugins")
    shown = run("--help")
    assert shown.exit_code == 0, shown.output
    listed = shown.output.split("Commands:")[1]
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    assert "lockout" in names and "init" in names and "tenants" in names
    for absent in ("crashing", "nonsense", "not-a-list", "twice", "quiet", "broken-routes"):
        assert absent not in names
    assert "Lockout plugin" in listed
    logged = caplog.text
    assert "plugin crashing: its commands are left out: commands crashed" in logged
    assert "plugin nonsense: its commands are left out" in logged
    assert "plugin not-a-list: its commands are left out" in logged
    assert "two commands named 'unlock'" in logged
    assert "plugin tenants: its commands are left out: a core command has its name" in logged
    assert "Traceback" not in shown.output


def test_a_plugin_cannot_take_a_core_commands_name(run):
    listed = run("tenants", "--help")
    assert listed.exit_code == 0
    assert "create" in listed.output and "unlock" not in listed.output


def test_the_plugins_group_lists_its_commands(run):
    listed = run("lockout", "--help")
    assert listed.exit_code == 0, listed.output
    assert "Test plugin lockout." in listed.output
    assert "unlock" in listed.output and "Unlock an account" in listed.output
    assert "authenticators" in listed.output


def test_a_command_reaches_the_businesss_store_through_plugin_context(
    app, salon, clock, run, caplog
):
    # The plugin is not switched on for the salon: an operator may still clean up after it.
    store_of(app, salon.tenant_id, clock()).set("locked:ann@example.com", True)
    done = run("lockout", "unlock", "--tenant", "salon", "--email", "ann@example.com")
    assert done.exit_code == 0, done.output
    assert done.output == "unlocked ann@example.com at Salon\n"
    assert store_of(app, salon.tenant_id, clock()).get("locked:ann@example.com") is None
    again = run("lockout", "unlock", "--tenant", "salon", "--email", "ann@example.com")
    assert again.output == "ann@example.com was not locked\n"
    nested = run("lockout", "authenticators", "reset", "--tenant", "salon", "ann@example.com")
    assert nested.exit_code == 0 and nested.output == "reset by lockout\n"
    assert len(run.built) == 3  # one app per run: finding the command made it, and it ran there
    # Running one plugin's command asks no other plugin for its commands.
    assert "crashing" not in caplog.text


def test_a_failing_command_or_an_unknown_business_is_one_line(salon, run):
    for arguments, message in [
        (("lockout", "explode"), "Error: plugin lockout: the authenticator service is down"),
        (
            ("lockout", "unlock", "--tenant", "nobody", "--email", "a@b.c"),
            "Error: plugin lockout: no business with the slug 'nobody'",
        ),
        (("lockout", "unlock", "--tenant", "salon"), "Missing option '--email'"),
        (("nonsense", "unlock"), "No such command 'nonsense'"),
    ]:
        result = run(*arguments)
        assert result.exit_code != 0
        assert message in result.output
        assert "Traceback" not in result.output
        assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1


def test_core_commands_work_beside_failing_plugins(salon, run):
    made = run("tenants", "create", "spa", "--name", "Spa", "--timezone", "UTC")
    assert made.exit_code == 0, made.output
    assert len(run.built) == 1  # and no app was built just to find a core command


def test_a_plugins_command_needs_the_schema(tmp_path, monkeypatch, clock):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    monkeypatch.delenv("BOOKWELL_INSTANCE", raising=False)
    monkeypatch.setattr(
        cli_instance,
        "create_app",
        lambda config=None: create_app({**(config or {}), "EXTRA_PLUGINS": [Lockout]}),
    )
    result = CliRunner().invoke(
        main,
        ["--instance", str(tmp_path / "cli"), "lockout", "unlock", "--tenant", "s", "--email", "e"],
    )
    assert result.exit_code != 0
    assert "bookwell init" in result.output and "Traceback" not in result.output


def test_help_on_an_instance_not_set_up_lists_cores_commands_and_makes_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("BOOKWELL_INSTANCE", raising=False)
    monkeypatch.setattr(cli_instance, "create_app", lambda config=None: pytest.fail("an app"))
    fresh = tmp_path / "fresh"
    shown = CliRunner().invoke(main, ["--instance", str(fresh), "--help"])
    assert shown.exit_code == 0, shown.output
    assert "init" in shown.output and "tenants" in shown.output
    assert not fresh.exists()


def test_the_guides_example_unlocks_an_account(make_app, clock, tmp_path, monkeypatch):
    """The guide's lockout plugin with the command it adds: an address locked through the real
    login, unlocked by the operator, logs in at once."""
    lockout = guide_example(
        "Logins: lockouts and restricted scopes",
        'name="lockout"',
        ("Commands for operators", "def unlock(slug, email)"),
    )
    app = make_app(EXTRA_PLUGINS=[lockout])
    salon = open_business(app, clock())
    with app.app_context():
        plugin_changes.enable(app, salon.tenant_id, "lockout", {"attempts": 1}, clock())
        create_user(
            app,
            tenant_id=salon.tenant_id,
            email="ann@example.com",
            role="owner",
            password=STAFF_PASSWORD,
            now=clock(),
        )

    def log_in():
        return app.test_client().post(
            "/api/v1/tenants/salon/auth/login",
            json={"email": "ann@example.com", "password": STAFF_PASSWORD},
        )

    assert log_in().status_code == 200  # the one attempt allowed, which clears the count
    app.test_client().post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "ann@example.com", "password": "not the password"},
    )
    assert log_in().json["error"]["code"] == "locked"
    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setattr(
        cli_instance,
        "create_app",
        lambda config=None: create_app(
            {**(config or {}), "CLOCK": clock, "EXTRA_PLUGINS": [lockout]}
        ),
    )

    def unlock():
        return CliRunner().invoke(
            main,
            ["--instance", str(tmp_path / "cli"), "lockout", "unlock", "--tenant", "salon",
             "--email", " Ann@example.com"],
        )  # fmt: skip

    done = unlock()
    assert done.exit_code == 0, done.output
    assert done.output == " Ann@example.com may log in again at Salon\n"
    assert log_in().status_code == 200
    assert unlock().output == " Ann@example.com was not locked\n"
    with db.fresh_session(app) as session:
        [unlocked] = audit.listing(
            session, salon.tenant_id, audit.Filter(action="plugin.lockout.unlocked")
        )
    # By pseudonym in the hashed entry; the address it stands for beside it.
    assert unlocked.subject.startswith("login:person:")
    assert unlocked.subject_email == "ann@example.com"
