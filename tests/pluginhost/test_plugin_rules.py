"""The rules between plugins: what enabling one switches on, what is refused and why, floors on a
required plugin's settings; one place decides for the marketplace, the CLI and the API."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost.rules import (
    PluginBroken,
    PluginConflict,
    PluginRequired,
    meets_floor,
    raise_to_floor,
)
from bookwell.core.pluginhost.settings import InvalidSettings
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, Tenant
from bookwell.hooks import Manifest, Setting, hookimpl

STAFF_ROLES = ["owner", "manager", "staff", "receptionist"]


def manifest(name: str, title: str, *settings: Setting, **rules) -> Manifest:
    return Manifest(
        name, title, f"Test plugin {name}.", "1.0", "security", "tests", settings, **rules
    )


class TwoFactor:
    MANIFEST = manifest(
        "t-two-factor",
        "Two-factor",
        Setting("required_roles", "list", ["owner"], "Required for"),
        Setting("digits", "int", 6, "Digits", min=6, max=10),
        Setting("lock_after_failures", "bool", False, "Lock after failures"),
        Setting("method", "choice", "totp", "Method", choices=("totp", "sms")),
    )


class AccessLog:
    MANIFEST = manifest("t-access-log", "Access log")


class Hipaa:
    MANIFEST = manifest(
        "t-hipaa",
        "HIPAA",
        requires=("t-two-factor", "t-access-log"),
        floors={
            "t-two-factor": {
                "required_roles": STAFF_ROLES,
                "digits": 8,
                "lock_after_failures": True,
                "method": "totp",
            }
        },
    )


class First:
    MANIFEST = manifest("t-first", "First", requires=("t-second",))


class Second:
    MANIFEST = manifest("t-second", "Second", requires=("t-third",))


class Third:
    MANIFEST = manifest("t-third", "Third", Setting("level", "int", 1, "Level", min=0, max=5))


class HistoryCleanup:
    MANIFEST = manifest("t-history-cleanup", "History cleanup", breaks=("intact_history",))


class Loyalty:
    MANIFEST = manifest("t-loyalty", "Loyalty", needs=("intact_history",))


class Rewards:
    """Requires loyalty, so it brings loyalty's need with it."""

    MANIFEST = manifest("t-rewards", "Rewards", requires=("t-loyalty",))


class Quiet:
    MANIFEST = manifest("t-quiet", "Quiet", conflicts=("t-loud",))


class Loud:
    MANIFEST = manifest("t-loud", "Loud")


class Orphan:
    MANIFEST = manifest("t-orphan", "Orphan", requires=("not-installed",))


class Misspelled:
    MANIFEST = manifest("t-misspelled", "Misspelled")

    @hookimpl
    def before_confrim(ctx):
        return None


class NeedsBroken:
    MANIFEST = manifest("t-needs-broken", "Needs broken", requires=("t-misspelled",))


PLUGINS = [
    TwoFactor,
    AccessLog,
    Hipaa,
    First,
    Second,
    Third,
    HistoryCleanup,
    Loyalty,
    Rewards,
    Quiet,
    Loud,
    Orphan,
    Misspelled,
    NeedsBroken,
]


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=PLUGINS)


@pytest.fixture
def enable(app, business, clock):
    def switch_on(name, **settings):
        with app.app_context():
            return plugin_changes.enable(app, business.tenant_id, name, settings, clock())

    return switch_on


@pytest.fixture
def disable(app, business, clock):
    def switch_off(name):
        with app.app_context():
            return plugin_changes.disable(app, business.tenant_id, name, clock())

    return switch_off


def state(app, business) -> dict[str, tuple[bool, dict]]:
    with db.fresh_session(app) as session:
        return plugin_changes.tenant_plugins(session, business.tenant_id)


def on(app, business) -> set[str]:
    return {name for name, (enabled, _) in state(app, business).items() if enabled}


def audit_trail(app, business) -> list[tuple[str, str, dict]]:
    with db.fresh_session(app) as session:
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.tenant_id == business.tenant_id)
            .order_by(AuditEntry.sequence)
        )
        return [(row.action, row.subject, json.loads(row.details)) for row in rows]


def version(app, business) -> int:
    with db.fresh_session(app) as session:
        return session.scalar(select(Tenant.plugins_version).where(Tenant.id == business.tenant_id))


# --- requires -------------------------------------------------------------------------------------


def test_enabling_switches_on_what_it_requires_transitively_and_says_so(app, business, enable):
    done = enable("t-first")
    assert done.also_enabled == ["t-third", "t-second"]  # what is required comes first
    assert on(app, business) == {"t-first", "t-second", "t-third"}
    trail = audit_trail(app, business)
    assert [(action, subject) for action, subject, _ in trail] == [
        ("plugin.enabled", "plugin:t-third"),
        ("plugin.enabled", "plugin:t-second"),
        ("plugin.enabled", "plugin:t-first"),
    ]
    assert trail[0][2] == {"old": None, "new": {"level": 1}, "required_by": "t-second"}
    assert trail[1][2]["required_by"] == "t-first"


def test_a_requirement_already_on_keeps_its_settings_and_is_not_reported(app, business, enable):
    enable("t-third", level=4)
    done = enable("t-second")
    assert done.also_enabled == []
    assert state(app, business)["t-third"] == (True, {"level": 4})


def test_requiring_a_plugin_that_is_not_installed_or_is_broken_is_refused(app, business, enable):
    with pytest.raises(PluginRequired, match="Orphan requires not-installed, which is not"):
        enable("t-orphan")
    with pytest.raises(PluginRequired, match="Needs broken requires t-misspelled, which is broken"):
        enable("t-needs-broken")
    with pytest.raises(PluginBroken):
        enable("t-misspelled")
    assert on(app, business) == set()
    assert audit_trail(app, business) == []


def test_disabling_a_plugin_an_enabled_plugin_requires_is_refused(app, business, enable, disable):
    enable("t-first")
    with pytest.raises(PluginRequired) as refused:
        disable("t-third")
    assert refused.value.code == "plugin_required"
    assert "Second requires Third" in refused.value.message
    assert on(app, business) == {"t-first", "t-second", "t-third"}
    assert disable("t-first") is True
    assert disable("t-second") is True
    assert disable("t-third") is True
    assert on(app, business) == set()


# --- conflicts, needs and breaks ------------------------------------------------------------------


@pytest.mark.parametrize(("already", "asked"), [("t-loud", "t-quiet"), ("t-quiet", "t-loud")])
def test_a_conflict_declared_by_either_side_is_refused_with_both_names(
    app, business, enable, already, asked
):
    enable(already)
    with pytest.raises(PluginConflict) as refused:
        enable(asked)
    assert refused.value.code == "plugin_conflict"
    assert "Quiet conflicts with Loud" in refused.value.message
    assert on(app, business) == {already}


@pytest.mark.parametrize(
    ("already", "asked"), [("t-history-cleanup", "t-loyalty"), ("t-loyalty", "t-history-cleanup")]
)
def test_needing_what_an_enabled_plugin_breaks_is_refused_both_ways(
    app, business, enable, already, asked
):
    enable(already)
    with pytest.raises(
        PluginConflict, match="Loyalty needs intact history, which History cleanup breaks"
    ):
        enable(asked)
    assert on(app, business) == {already}


def test_a_need_brought_in_by_a_requirement_is_checked_and_nothing_is_switched_on(
    app, business, enable
):
    enable("t-history-cleanup")
    with pytest.raises(PluginConflict) as refused:
        enable("t-rewards")
    assert "Loyalty needs intact history, which History cleanup breaks" in refused.value.message
    assert "Rewards requires Loyalty" in refused.value.message
    assert on(app, business) == {"t-history-cleanup"}


# --- settings and floors --------------------------------------------------------------------------


def test_invalid_settings_are_refused_field_by_field_and_nothing_changes(app, business, enable):
    enable("t-third", level=2)
    before = (state(app, business), audit_trail(app, business), version(app, business))
    with pytest.raises(InvalidSettings) as refused:
        enable("t-third", level=9, colour="red")
    assert set(refused.value.fields) == {"level", "colour"}
    assert "at most 5" in refused.value.fields["level"]
    assert (state(app, business), audit_trail(app, business), version(app, business)) == before


def test_enabling_a_plugin_with_floors_raises_the_required_plugins_settings(app, business, enable):
    enable("t-two-factor", required_roles=["owner", "admin-desk"], digits=10)
    done = enable("t-hipaa")
    assert done.also_enabled == ["t-access-log"]
    assert done.raised == ["t-two-factor"]
    enabled, settings = state(app, business)["t-two-factor"]
    assert enabled
    assert settings == {
        "required_roles": ["owner", "admin-desk", "manager", "staff", "receptionist"],
        "digits": 10,  # already above the floor: kept
        "lock_after_failures": True,
        "method": "totp",
    }
    raised = [entry for entry in audit_trail(app, business) if entry[2].get("floor_of")]
    assert len(raised) == 1
    action, subject, details = raised[0]
    assert (action, subject, details["floor_of"]) == (
        "plugin.settings_changed",
        "plugin:t-two-factor",
        "t-hipaa",
    )
    assert details["old"]["required_roles"] == ["owner", "admin-desk"]
    assert details["new"] == settings


def test_a_required_plugin_switched_on_with_floors_starts_at_them(app, business, enable):
    done = enable("t-hipaa")
    assert done.also_enabled == ["t-two-factor", "t-access-log"]
    assert state(app, business)["t-two-factor"][1]["required_roles"] == STAFF_ROLES


def test_settings_below_a_floor_are_refused_naming_the_plugin_that_holds_them(
    app, business, enable
):
    enable("t-hipaa")
    before = (state(app, business), audit_trail(app, business))
    with pytest.raises(InvalidSettings) as refused:
        enable(
            "t-two-factor",
            required_roles=["owner"],
            digits=6,
            lock_after_failures=False,
            method="sms",
        )
    fields = refused.value.fields
    assert set(fields) == {"required_roles", "digits", "lock_after_failures", "method"}
    assert fields["required_roles"] == (
        "Required for must keep owner, manager, staff, receptionist while HIPAA is on."
    )
    assert "at least 8" in fields["digits"] and "HIPAA" in fields["digits"]
    assert "stay on" in fields["lock_after_failures"]
    assert (state(app, business), audit_trail(app, business)) == before
    # Above the floor is fine.
    enable("t-two-factor", digits=9)
    assert state(app, business)["t-two-factor"][1]["digits"] == 9


def test_floors_by_type():
    assert meets_floor(8, 8) and not meets_floor(7, 8)
    assert raise_to_floor(3, 8) == 8 and raise_to_floor(9, 8) == 9
    assert meets_floor(True, True) and not meets_floor(False, True) and meets_floor(False, False)
    assert raise_to_floor(False, True) is True
    assert raise_to_floor(["b"], ["a", "b"]) == ["b", "a"]
    assert meets_floor("totp", "totp") and raise_to_floor("sms", "totp") == "totp"


# --- one transaction at a time --------------------------------------------------------------------


def test_two_conflicting_changes_at_once_cannot_both_pass(app, business, clock):
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def switch_on(name):
        barrier.wait()
        try:
            with app.app_context():
                plugin_changes.enable(app, business.tenant_id, name, {}, clock())
            outcomes.append("on")
        except PluginConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=switch_on, args=(name,)) for name in ("t-quiet", "t-loud")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["on", "refused"]
    assert len(on(app, business) & {"t-quiet", "t-loud"}) == 1


# --- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def run(app, business, tmp_path, database_url, monkeypatch):
    """The CLI on the test's database, with the test plugins installed."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    import bookwell.core.pluginhost.host as pluginhost

    real_init = pluginhost.init_app

    def with_test_plugins(cli_app):
        cli_app.config["EXTRA_PLUGINS"] = PLUGINS
        real_init(cli_app)

    monkeypatch.setattr(pluginhost, "init_app", with_test_plugins)

    def invoke(*args):
        return CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), *args])

    return invoke


def test_the_cli_says_what_else_it_switched_on_and_refuses_with_the_reason(run, app, business):
    done = run("plugins", "enable", "t-hipaa", "--tenant", "salon")
    assert done.exit_code == 0, done.output
    assert "also enabled (required by t-hipaa): t-two-factor, t-access-log" in done.output
    refused = run("plugins", "disable", "t-two-factor", "--tenant", "salon")
    assert refused.exit_code != 0
    assert "plugin_required" in refused.output and "HIPAA requires Two-factor" in refused.output
    low = run("plugins", "enable", "t-two-factor", "--tenant", "salon", "--set", "digits=6")
    assert low.exit_code != 0 and "while HIPAA is on" in low.output
    run("plugins", "enable", "t-history-cleanup", "--tenant", "salon")
    clash = run("plugins", "enable", "t-loyalty", "--tenant", "salon")
    assert clash.exit_code != 0
    assert "Loyalty needs intact history, which History cleanup breaks" in clash.output
    listed = json.loads(run("plugins", "list", "--tenant", "salon", "--json").output)
    hipaa = next(entry for entry in listed if entry["name"] == "t-hipaa")
    assert hipaa["enabled"] is True and hipaa["requires"] == ["t-two-factor", "t-access-log"]
    assert on(app, business) == {"t-hipaa", "t-two-factor", "t-access-log", "t-history-cleanup"}
