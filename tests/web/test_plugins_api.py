"""The plugins API: every staff role reads a business's plugins (the entries of ``plugins list
--json``), the owner switches them on and off and changes settings, by the same rules."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bookwell.core.access import users
from bookwell.core.booking.tenants import create_tenant
from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost import health as plugin_health
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry
from bookwell.hooks import Manifest, Setting

PASSWORD = "correct horse battery staple"
PLUGINS = "/api/v1/tenants/salon/plugins"


def manifest(name: str, title: str, *settings: Setting, **rules) -> Manifest:
    return Manifest(
        name, title, f"Test plugin {name}.", "2.1", "privacy", "tests", settings, **rules
    )


class TwoFactor:
    MANIFEST = manifest(
        "t-two-factor",
        "Two-factor",
        Setting("required_roles", "list", ["owner"], "Required for", help="Staff roles."),
        Setting("digits", "int", 6, "Digits", min=6, max=10),
    )


class Hipaa:
    MANIFEST = manifest(
        "t-hipaa",
        "HIPAA",
        requires=("t-two-factor",),
        floors={"t-two-factor": {"required_roles": ["owner", "manager", "staff", "receptionist"]}},
    )


class HistoryCleanup:
    MANIFEST = manifest("t-history-cleanup", "History cleanup", breaks=("intact_history",))


class Loyalty:
    MANIFEST = manifest("t-loyalty", "Loyalty", needs=("intact_history",), conflicts=("t-coupons",))


class Coupons:
    MANIFEST = manifest("t-coupons", "Coupons")


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=[TwoFactor, Hipaa, HistoryCleanup, Loyalty, Coupons])


@pytest.fixture
def tokens(app, business, clock) -> dict[str, str]:
    """A bearer per staff role of 'salon', and one of the owner of another business, 'spa'."""
    with app.app_context():
        for role in ("owner", "manager", "staff", "receptionist"):
            users.create_user(
                app,
                tenant_id=business.tenant_id,
                email=f"{role}@example.com",
                role=role,
                password=PASSWORD,
                now=clock(),
            )
        with db.write_transaction(app) as session:
            spa_id = create_tenant(session, "spa", name="Spa", timezone="UTC", now=clock()).id
        users.create_user(
            app,
            tenant_id=spa_id,
            email="spa@example.com",
            role="owner",
            password=PASSWORD,
            now=clock(),
        )
    client = app.test_client()
    found = {}
    for slug, email in [
        ("salon", f"{role}@example.com") for role in ("owner", "manager", "staff", "receptionist")
    ] + [("spa", "spa@example.com")]:
        answer = client.post(
            f"/api/v1/tenants/{slug}/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.json
        found[email.split("@")[0]] = answer.json["token"]
    return found


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def put(client, token, name, body):
    return client.put(f"{PLUGINS}/{name}", json=body, headers=bearer(token))


def entry(client, token, name) -> dict:
    listed = client.get(PLUGINS, headers=bearer(token))
    assert listed.status_code == 200, listed.json
    return next(item for item in listed.json if item["name"] == name)


def audit_actions(app, business) -> list[tuple[str, str]]:
    with db.fresh_session(app) as session:
        return list(
            session.execute(
                select(AuditEntry.action, AuditEntry.subject)
                .where(AuditEntry.tenant_id == business.tenant_id)
                .where(AuditEntry.action.like("plugin.%"))
                .order_by(AuditEntry.sequence)
            )
        )


def test_every_staff_role_reads_the_same_entries_as_the_cli_lists(
    app, client, business, tokens, tmp_path, database_url, monkeypatch
):
    assert put(client, tokens["owner"], "closed_days", {"enabled": True}).status_code == 200
    for role in ("owner", "manager", "staff", "receptionist"):
        assert client.get(PLUGINS, headers=bearer(tokens[role])).status_code == 200, role
    listed = client.get(PLUGINS, headers=bearer(tokens["staff"])).json
    monkeypatch.setenv("DATABASE_URL", database_url)
    printed = CliRunner().invoke(
        main,
        [
            "--instance",
            str(tmp_path / "instance"),
            "plugins",
            "list",
            "--tenant",
            "salon",
            "--json",
        ],
    )
    assert printed.exit_code == 0, printed.output
    from_cli = {item["name"]: item for item in json.loads(printed.output)}
    for item in listed:
        if item["name"] in from_cli:  # the CLI's app has no test plugins, only installed ones
            assert item == from_cli[item["name"]]
    closed = next(item for item in listed if item["name"] == "closed_days")
    assert closed["enabled"] is True and closed["settings"] == {"weekdays": ["sunday"]}
    assert closed["source"] == "bookwell-closed-days" and closed["status"] == "ok"
    broken = next(item for item in listed if item["name"] == "broken_import")
    assert broken["status"] == "broken" and "bookwell_dependency" in broken["error"]
    two_factor = next(item for item in listed if item["name"] == "t-two-factor")
    assert two_factor["settings_schema"][1] == {
        "key": "digits",
        "type": "int",
        "default": 6,
        "label": "Digits",
        "help": "",
        "min": 6,
        "max": 10,
        "choices": [],
    }
    assert two_factor["recent_errors"] == {"count": 0, "last_message": None, "last_at": None}


def test_recent_errors_are_counted_per_plugin(app, client, business, tokens, clock):
    plugin_health.store(
        app,
        [
            (
                business.tenant_id,
                "t-two-factor",
                "before_login",
                "old failure",
                clock() - timedelta(days=2),
            ),
            (
                business.tenant_id,
                "t-two-factor",
                "before_login",
                "t-first",
                clock() - timedelta(hours=2),
            ),
            (
                business.tenant_id,
                "t-two-factor",
                "before_login",
                "latest",
                clock() - timedelta(hours=1),
            ),
        ],
    )
    errors = entry(client, tokens["manager"], "t-two-factor")["recent_errors"]
    assert errors["count"] == 2 and errors["last_message"] == "latest"


def test_the_owner_switches_a_plugin_on_with_what_it_requires(app, client, business, tokens):
    answer = put(client, tokens["owner"], "t-hipaa", {"enabled": True})
    assert answer.status_code == 200, answer.json
    assert answer.json["name"] == "t-hipaa" and answer.json["enabled"] is True
    assert answer.json["also_enabled"] == ["t-two-factor"]
    assert entry(client, tokens["owner"], "t-two-factor")["settings"]["required_roles"] == [
        "owner",
        "manager",
        "staff",
        "receptionist",
    ]
    assert audit_actions(app, business) == [
        ("plugin.enabled", "plugin:t-two-factor"),
        ("plugin.enabled", "plugin:t-hipaa"),
    ]


def test_settings_merge_into_the_current_ones(client, business, tokens):
    owner = tokens["owner"]
    put(client, owner, "t-two-factor", {"enabled": True, "settings": {"digits": 8}})
    answer = put(
        client,
        owner,
        "t-two-factor",
        {"enabled": True, "settings": {"required_roles": ["owner", "manager"]}},
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["settings"] == {"required_roles": ["owner", "manager"], "digits": 8}
    assert answer.json["also_enabled"] == []
    off = put(client, owner, "t-two-factor", {"enabled": False, "settings": {"digits": 9}})
    assert off.status_code == 200 and off.json["enabled"] is False
    assert off.json["settings"]["digits"] == 9  # kept for next time


def test_settings_alone_leave_an_enabled_plugin_on(app, client, business, tokens):
    owner = tokens["owner"]
    put(client, owner, "t-two-factor", {"enabled": True})
    answer = put(client, owner, "t-two-factor", {"settings": {"digits": 8}})
    assert answer.status_code == 200, answer.json
    assert answer.json["enabled"] is True
    assert answer.json["settings"]["digits"] == 8
    assert answer.json["also_enabled"] == []
    assert audit_actions(app, business)[-1] == ("plugin.settings_changed", "plugin:t-two-factor")
    # The same rules as with `enabled`: a floor still holds.
    put(client, owner, "t-hipaa", {"enabled": True})
    below = put(client, owner, "t-two-factor", {"settings": {"required_roles": ["owner"]}})
    assert below.status_code == 422 and below.json["error"]["code"] == "invalid_settings"


def test_settings_alone_are_kept_for_a_disabled_plugin_that_stays_off(
    app, client, business, tokens
):
    owner = tokens["owner"]
    answer = put(client, owner, "t-two-factor", {"settings": {"digits": 9}})
    assert answer.status_code == 200, answer.json
    assert answer.json["enabled"] is False
    assert answer.json["settings"]["digits"] == 9
    assert audit_actions(app, business) == [("plugin.settings_changed", "plugin:t-two-factor")]
    switched_on = put(client, owner, "t-two-factor", {"enabled": True})
    assert switched_on.json["settings"]["digits"] == 9
    refused = put(client, owner, "t-two-factor", {"settings": {"digits": 99}})
    assert refused.status_code == 422 and refused.json["error"]["code"] == "invalid_settings"


def test_invalid_settings_are_refused_field_by_field_and_nothing_changes(
    app, client, business, tokens
):
    owner = tokens["owner"]
    put(client, owner, "t-two-factor", {"enabled": True})
    before = (entry(client, owner, "t-two-factor"), audit_actions(app, business))
    answer = put(
        client,
        owner,
        "t-two-factor",
        {"enabled": True, "settings": {"digits": 99, "colour": "red", "required_roles": "owner"}},
    )
    assert answer.status_code == 422
    error = answer.json["error"]
    assert error["code"] == "invalid_settings"
    assert set(error["fields"]) == {"digits", "colour", "required_roles"}
    assert "at most 10" in error["fields"]["digits"]
    assert (entry(client, owner, "t-two-factor"), audit_actions(app, business)) == before
    # Switching a plugin on with bad settings leaves it off.
    refused = put(client, owner, "t-coupons", {"enabled": True, "settings": {"x": 1}})
    assert refused.status_code == 422
    assert entry(client, owner, "t-coupons")["enabled"] is False


def test_a_setting_below_a_floor_is_refused_naming_the_plugin_that_holds_it(
    client, business, tokens
):
    owner = tokens["owner"]
    put(client, owner, "t-hipaa", {"enabled": True})
    answer = put(
        client, owner, "t-two-factor", {"enabled": True, "settings": {"required_roles": ["owner"]}}
    )
    assert answer.status_code == 422
    assert "while HIPAA is on" in answer.json["error"]["fields"]["required_roles"]


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("t-loyalty", "t-coupons", "Loyalty conflicts with Coupons"),
        ("t-coupons", "t-loyalty", "Loyalty conflicts with Coupons"),
        (
            "t-loyalty",
            "t-history-cleanup",
            "Loyalty needs intact history, which History cleanup breaks",
        ),
        (
            "t-history-cleanup",
            "t-loyalty",
            "Loyalty needs intact history, which History cleanup breaks",
        ),
    ],
)
def test_conflicts_are_refused_with_409_and_the_reason(
    client, business, tokens, first, second, reason
):
    owner = tokens["owner"]
    assert put(client, owner, first, {"enabled": True}).status_code == 200
    answer = put(client, owner, second, {"enabled": True})
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "plugin_conflict"
    assert reason in answer.json["error"]["message"]
    assert entry(client, owner, second)["enabled"] is False


def test_disabling_a_required_plugin_is_refused_with_409(client, business, tokens):
    owner = tokens["owner"]
    put(client, owner, "t-hipaa", {"enabled": True})
    answer = put(client, owner, "t-two-factor", {"enabled": False})
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "plugin_required"
    assert "HIPAA requires Two-factor" in answer.json["error"]["message"]
    assert entry(client, owner, "t-two-factor")["enabled"] is True


def test_a_broken_plugin_cannot_be_switched_on(client, business, tokens):
    answer = put(client, tokens["owner"], "broken_import", {"enabled": True})
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "plugin_broken"


@pytest.mark.parametrize("role", ["manager", "staff", "receptionist"])
def test_only_the_owner_changes_plugins(client, business, tokens, role):
    answer = put(client, tokens[role], "t-coupons", {"enabled": True})
    assert answer.status_code == 403
    assert answer.json["error"]["code"] == "forbidden"
    assert entry(client, tokens["owner"], "t-coupons")["enabled"] is False


def test_another_business_is_not_found_and_so_is_an_unknown_plugin(client, business, tokens):
    spa = tokens["spa"]
    assert client.get(PLUGINS, headers=bearer(spa)).status_code == 404
    assert put(client, spa, "t-coupons", {"enabled": True}).status_code == 404
    assert (
        client.get("/api/v1/tenants/spa/plugins", headers=bearer(tokens["owner"])).status_code
        == 404
    )
    unknown = put(client, tokens["owner"], "no-such-plugin", {"enabled": True})
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "not_found"
    assert client.get(PLUGINS).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"enabled": None, "settings": None},
        {"enabled": "yes"},
        {"enabled": 1},
        {"enabled": True, "settings": ["digits"]},
    ],
    ids=["empty", "nulls", "string", "number", "settings-not-an-object"],
)
def test_a_malformed_body_is_refused_with_422_invalid(client, business, tokens, body):
    answer = put(client, tokens["owner"], "t-coupons", body)
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "invalid"
    assert answer.json["error"]["fields"]


def test_a_settings_change_never_undoes_a_switch_made_meanwhile(
    app, client, business, tokens, clock
):
    """save_settings acts on the state it read only if it still holds under the lock."""
    with app.app_context():
        with pytest.raises(plugin_changes.StateChanged):
            plugin_changes.disable(
                app,
                business.tenant_id,
                "t-two-factor",
                clock(),
                values={"digits": 7},
                expect_enabled=True,
            )
        with pytest.raises(plugin_changes.StateChanged):
            plugin_changes.enable(
                app, business.tenant_id, "t-two-factor", {}, clock(), expect_enabled=True
            )
    assert entry(client, tokens["owner"], "t-two-factor")["enabled"] is False
    assert entry(client, tokens["owner"], "t-two-factor")["settings"]["digits"] == 6
    assert audit_actions(app, business) == []
