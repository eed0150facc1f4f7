"""The marketplace: every installed plugin as a card, a switch and a settings form built from the
manifest; the owner changes things (audited), the other staff see them read-only."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape

import pytest
from conftest import STAFF_PASSWORD, add_staff_and_a_rival, csrf_token_of, log_in_staff
from sqlalchemy import select

from bookwell.core.access.users import create_user
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost import health as plugin_health
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry
from bookwell.hooks import Manifest, Setting


def without_admin_script(html: str) -> str:
    """The page without the one script staff pages load, a static file (admin.js)."""
    return html.replace('<script src="/static/admin.js" defer></script>', "")


PASSWORD = STAFF_PASSWORD
MARKET = "/admin/salon/marketplace"
STAFF_ROLES = ("owner", "manager", "staff", "receptionist")


class Guard:
    MANIFEST = Manifest(
        "m-guard",
        "Door guard",
        "Checks who comes in.",
        "3.2",
        "security",
        "tests",
        (
            Setting("roles", "list", ["owner"], "Roles", help="Who must pass the guard."),
            Setting("attempts", "int", 5, "Attempts", help="Before a lockout.", min=1, max=10),
            Setting("strict", "bool", False, "Strict"),
            Setting("mode", "choice", "soft", "Mode", choices=("soft", "hard")),
            Setting("greeting", "str", "Hello", "Greeting", max=20),
            Setting("notice", "text", "", "Notice"),
        ),
    )


class Compliance:
    MANIFEST = Manifest(
        "m-compliance",
        "Compliance",
        "Keeps the rules.",
        "1.0",
        "security",
        "tests",
        requires=("m-guard",),
        floors={"m-guard": {"roles": list(STAFF_ROLES), "attempts": 3}},
    )


class Purge:
    MANIFEST = Manifest(
        "m-purge", "Purge", "Forgets old bookings.", "1.0", "privacy", "tests", breaks=("history",)
    )


class Points:
    MANIFEST = Manifest(
        "m-points", "Points", "Rewards visits.", "1.0", "marketing", "tests", needs=("history",)
    )


@pytest.fixture
def site(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[Guard, Compliance, Purge, Points])
    add_staff_and_a_rival(app, business, clock(), STAFF_ROLES)
    return app


token_of = csrf_token_of


def log_in(app, role="owner", slug="salon"):
    return log_in_staff(app, "spa@example.com" if slug == "spa" else f"{role}@example.com", slug)


def post(client, action, data):
    token = token_of(client.get(MARKET))
    return client.post(f"{MARKET}/{action}", data={"csrf_token": token, **data})


def card(page, name) -> str:
    """The HTML of one plugin's card."""
    found = re.search(
        rf'<section class="card plugin" id="plugin-{name}">(.*?)</section>', page.text, re.S
    )
    assert found, f"no card for {name}"
    return unescape(found.group(1))


def state(app, business) -> dict:
    with db.fresh_session(app) as session:
        return plugin_changes.tenant_plugins(session, business.tenant_id)


def audited(app, business) -> list[tuple[str, str, dict]]:
    with db.fresh_session(app) as session:
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.tenant_id == business.tenant_id, AuditEntry.action.like("plugin.%"))
            .order_by(AuditEntry.sequence)
        )
        return [(row.action, row.subject, json.loads(row.details)) for row in rows]


def settings_form(**values) -> dict:
    form = {
        "plugin": "m-guard",
        "setting-roles": "owner\nmanager",
        "setting-attempts": "4",
        "setting-mode": "hard",
        "setting-greeting": "Hi",
        "setting-notice": "Be kind.\r\nThank you.",
    }
    form.update(values)
    return form


# --- the cards ------------------------------------------------------------------------------------


def test_every_installed_plugin_has_a_card_with_what_it_is(site, business, clock):
    page = log_in(site).get(MARKET)
    assert page.status_code == 200
    guard = card(page, "m-guard")
    for text in ("Door guard", "Checks who comes in.", "Security", "3.2", "From Guard"):
        assert text in guard, text
    assert "Off" in guard and "Who must pass the guard." in guard
    closed = card(page, "closed_days")
    assert "From bookwell-closed-days" in closed and "Closed days" in closed
    broken = card(page, "broken_import")
    assert "Broken" in broken and "bookwell_dependency_that_is_not_installed" in broken
    assert "Switch on" not in broken  # a broken plugin cannot be switched on
    compliance = card(page, "m-compliance")
    assert "Requires" in compliance and "Door guard" in compliance
    assert "Needs" in card(page, "m-points") and "history" in card(page, "m-points")
    assert "Breaks" in card(page, "m-purge")
    # Grouped by category, in order.
    headings = re.findall(r"<h2>(.*?)</h2>", page.text)
    assert headings == sorted(headings)
    assert "<script" not in without_admin_script(page.text) and "style=" not in page.text


def test_built_in_plugins_say_so(site):
    from bookwell.core.pluginhost.host import host_of

    built_in = [name for name, p in host_of(site).installed.items() if p.source == "built-in"]
    if not built_in:
        pytest.skip("no built-in plugin is installed in this environment")
    assert "Built-in" in card(log_in(site).get(MARKET), built_in[0])


def test_a_card_shows_its_recent_errors_with_the_last_message(site, business, clock):
    plugin_health.store(
        site,
        [
            (
                business.tenant_id,
                "m-guard",
                "before_login",
                "timed out",
                clock() - timedelta(hours=3),
            ),
            (
                business.tenant_id,
                "m-guard",
                "before_login",
                "KeyError 'x'",
                clock() - timedelta(hours=1),
            ),
        ],
    )
    guard = card(log_in(site).get(MARKET), "m-guard")
    assert "2 errors in the last 24 hours" in guard and "KeyError 'x'" in guard


def test_the_settings_form_is_built_from_the_manifest(site):
    guard = card(log_in(site).get(MARKET), "m-guard")
    assert re.search(
        r'<textarea id="setting-roles" name="setting-roles"[^>]*>owner</textarea>', guard
    )
    assert re.search(
        r'<input type="number" id="setting-attempts" name="setting-attempts" value="5" '
        r'min="1" max="10"[^>]*>',
        guard,
    )
    assert re.search(
        r'<input type="checkbox" id="setting-strict" name="setting-strict" value="on">', guard
    )
    assert re.search(r'<select id="setting-mode" name="setting-mode">', guard)
    assert '<option value="hard">' in guard and '<option value="soft" selected>' in guard
    assert 'maxlength="20"' in guard
    assert re.search(r'<textarea id="setting-notice"', guard)


# --- the owner changes things ---------------------------------------------------------------------


def test_the_owner_switches_a_plugin_on_and_off_and_it_is_audited(site, business):
    client = log_in(site)
    on = post(client, "switch", {"plugin": "m-compliance", "enabled": "on"})
    assert on.status_code == 302
    page = client.get(MARKET)
    assert "Compliance is on. Also switched on, as Compliance requires: Door guard." in page.text
    assert state(site, business)["m-guard"][1]["roles"] == list(STAFF_ROLES)
    assert "On" in card(page, "m-compliance")
    assert [(a, s) for a, s, _ in audited(site, business)] == [
        ("plugin.enabled", "plugin:m-guard"),
        ("plugin.enabled", "plugin:m-compliance"),
    ]
    refused = post(client, "switch", {"plugin": "m-guard", "enabled": "off"})
    assert refused.status_code == 409
    assert "Compliance requires Door guard" in card(refused, "m-guard")
    assert state(site, business)["m-guard"][0] is True
    off = post(client, "switch", {"plugin": "m-compliance", "enabled": "off"})
    assert off.status_code == 302
    assert "Compliance is off." in client.get(MARKET).text
    assert audited(site, business)[-1][:2] == ("plugin.disabled", "plugin:m-compliance")


def test_a_conflict_is_refused_on_the_card_with_the_reason(site, business):
    client = log_in(site)
    post(client, "switch", {"plugin": "m-purge", "enabled": "on"})
    refused = post(client, "switch", {"plugin": "m-points", "enabled": "on"})
    assert refused.status_code == 409
    assert "Points needs history, which Purge breaks." in card(refused, "m-points")
    assert state(site, business).get("m-points", (False, {}))[0] is False


def test_the_owner_saves_settings_and_the_audit_has_old_and_new(site, business):
    client = log_in(site)
    post(client, "switch", {"plugin": "m-guard", "enabled": "on"})
    saved = post(client, "settings", settings_form(**{"setting-strict": "on"}))
    assert saved.status_code == 302, saved.text
    assert "Settings saved for Door guard." in unescape(client.get(MARKET).text)
    settings = state(site, business)["m-guard"][1]
    assert settings == {
        "roles": ["owner", "manager"],
        "attempts": 4,
        "strict": True,
        "mode": "hard",
        "greeting": "Hi",
        "notice": "Be kind.\nThank you.",
    }
    action, subject, details = audited(site, business)[-1]
    assert (action, subject) == ("plugin.settings_changed", "plugin:m-guard")
    assert details["old"]["attempts"] == 5 and details["new"] == settings
    # A list may also be given comma-separated.
    post(client, "settings", settings_form(**{"setting-roles": "owner, staff"}))
    assert state(site, business)["m-guard"][1]["roles"] == ["owner", "staff"]


def test_settings_of_a_plugin_that_is_off_switch_it_on(site, business):
    client = log_in(site)
    assert post(client, "settings", settings_form()).status_code == 302
    assert state(site, business)["m-guard"][0] is True
    assert "Door guard is on." in client.get(MARKET).text


def test_invalid_settings_come_back_field_by_field_with_what_was_typed(site, business):
    client = log_in(site)
    post(client, "switch", {"plugin": "m-guard", "enabled": "on"})
    before = (state(site, business), audited(site, business))
    refused = post(
        client,
        "settings",
        settings_form(
            **{"setting-attempts": "99", "setting-greeting": "x" * 30, "setting-mode": "loud"}
        ),
    )
    assert refused.status_code == 422
    guard = card(refused, "m-guard")
    assert "Attempts must be at most 10" in guard
    assert "Greeting must have at most 20 characters" in guard
    assert "Mode must be one of: soft, hard" in guard
    assert 'value="99"' in guard and "x" * 30 in guard
    assert guard.count('class="field-error"') == 3
    not_a_number = post(client, "settings", settings_form(**{"setting-attempts": "four"}))
    assert not_a_number.status_code == 422
    assert "Attempts must be a whole number" in card(not_a_number, "m-guard")
    assert 'value="four"' in card(not_a_number, "m-guard")
    assert (state(site, business), audited(site, business)) == before


def test_a_setting_below_a_floor_is_refused_naming_the_plugin_that_holds_it(site, business):
    client = log_in(site)
    post(client, "switch", {"plugin": "m-compliance", "enabled": "on"})
    refused = post(client, "settings", settings_form(**{"setting-attempts": "2"}))
    assert refused.status_code == 422
    guard = card(refused, "m-guard")
    assert "Attempts must be at least 3 while Compliance is on." in guard
    assert "Roles must keep owner, manager, staff, receptionist while Compliance is on." in guard


# --- everyone else reads --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "staff", "receptionist"])
def test_other_staff_see_the_cards_read_only_and_cannot_post(site, business, role):
    client = log_in(site, role)
    page = client.get(MARKET)
    assert page.status_code == 200
    assert "Marketplace" in page.text and "read-only" in page.text
    guard = card(page, "m-guard")
    assert "<form" not in guard and "<fieldset disabled>" in guard
    assert all(" disabled" in tag for tag in re.findall(r"<(?:input|select|textarea)[^>]*>", guard))
    token = token_of(page)  # the logout form's: a valid token, so only the role refuses
    for action, data in (
        ("switch", {"plugin": "m-guard", "enabled": "on"}),
        ("settings", settings_form()),
    ):
        answer = client.post(f"{MARKET}/{action}", data={"csrf_token": token, **data})
        assert answer.status_code == 403, action
    assert state(site, business) == {}
    assert audited(site, business) == []


def test_a_post_without_its_csrf_token_changes_nothing(site, business):
    client = log_in(site)
    answer = client.post(f"{MARKET}/switch", data={"plugin": "m-guard", "enabled": "on"})
    assert answer.status_code == 422
    assert state(site, business) == {}


def test_the_menu_links_the_marketplace_and_other_businesses_cannot_see_it(site):
    assert (
        'href="/admin/salon/marketplace"' in log_in(site, "receptionist").get("/admin/salon/").text
    )
    stranger = log_in(site, slug="spa")
    assert stranger.get(MARKET).status_code == 404
    assert site.test_client().get(MARKET).status_code == 302


def test_posts_count_against_the_write_rate_limit(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[Guard], RATE_LIMITS="write=2/minute,login=100/minute")
    with app.app_context():
        create_user(
            app,
            tenant_id=business.tenant_id,
            email="owner@example.com",
            role="owner",
            password=PASSWORD,
            now=clock(),
        )
    client = log_in(app)
    statuses = [
        post(client, "switch", {"plugin": "m-guard", "enabled": "on"}).status_code for _ in range(3)
    ]
    assert statuses[-1] == 429
