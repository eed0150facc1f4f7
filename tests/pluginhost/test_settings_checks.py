"""Settings that check themselves: every item of a list with choices, e-mail and web addresses,
and a plugin's own ``check_settings`` across fields. One place decides, so the marketplace, the
API and the CLI refuse alike, field by field, and a refusal changes nothing."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from html import unescape

import pytest
from click.testing import CliRunner
from conftest import STAFF_PASSWORD, csrf_token_of, log_in_staff
from sqlalchemy import select

from bookwell.core.access.users import create_user
from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost import health as plugin_health
from bookwell.core.pluginhost.host import host_of
from bookwell.core.pluginhost.rules import PluginConflict, SettingsCheckFailed
from bookwell.core.pluginhost.settings import InvalidSettings, check_value
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry
from bookwell.hooks import Manifest, Setting, hookimpl

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PLUGINS_API = "/api/v1/tenants/salon/plugins"
MARKET = "/admin/salon/marketplace"
released = threading.Event()


def manifest(name: str, title: str, *settings: Setting, **rules) -> Manifest:
    return Manifest(
        name, title, f"Test plugin {name}.", "1.0", "scheduling", "tests", settings, **rules
    )


class Opening:
    """Settings of every kind, and a rule across two of them."""

    MANIFEST = manifest(
        "s-opening",
        "Opening rules",
        Setting("closed_on", "list", ["sunday"], "Closed on", choices=WEEKDAYS),
        Setting("opens", "int", 9, "Opens at", min=0, max=23),
        Setting("closes", "int", 17, "Closes at", min=1, max=24),
        Setting("alerts_to", "email", "", "Alerts to"),
        Setting("report_to", "url", "https://reports.example.com/in", "Reports to"),
        Setting("tags", "list", [], "Tags"),
    )
    checked: list[dict] = []

    @hookimpl
    def check_settings(settings):
        Opening.checked.append(dict(settings))
        if settings["closes"] <= settings["opens"]:
            return {"closes": "Closes at must be after Opens at."}
        return None


class Grumpy:
    """Finds fault with every setting it is shown: asked only about its own."""

    MANIFEST = manifest("s-grumpy", "Grumpy", Setting("mood", "str", "low", "Mood"))

    @hookimpl
    def check_settings(settings):
        if settings["mood"] != "low":
            return {"mood": "Grumpy stays low."}
        return None


class Fussy:
    """A check that fails in every way a plugin can, chosen by its setting."""

    MANIFEST = manifest("s-fussy", "Fussy", Setting("level", "int", 1, "Level", min=0, max=6))

    @hookimpl
    def check_settings(settings):
        level = settings["level"]
        if level == 2:
            raise RuntimeError("bug in a settings check")
        if level == 3:
            return ["level"]
        if level == 4:
            return {"nope": "a key it does not have"}
        if level == 5:
            released.wait(10)
        if level == 6:
            return {"level": ""}
        return None


class Late:
    """Holds opening rules to a floor that their own check refuses (opens 18, closes 17)."""

    MANIFEST = manifest(
        "s-late", "Late hours", requires=("s-opening",), floors={"s-opening": {"opens": 18}}
    )


class Noon:
    """Holds opening rules to a floor their own check accepts."""

    MANIFEST = manifest(
        "s-noon", "Noon start", requires=("s-opening",), floors={"s-opening": {"opens": 12}}
    )


class LockProbe:
    """Takes the database's write lock in its check: that only works if the change asking it
    does not hold the lock already."""

    MANIFEST = manifest("s-lock-probe", "Lock probe", Setting("n", "int", 1, "N"))
    took_the_lock: list[bool] = []

    @hookimpl
    def check_settings(settings):
        with db.write_transaction():
            LockProbe.took_the_lock.append(True)
        return None


PLUGINS = [Opening, Grumpy, Fussy, Late, Noon, LockProbe]


@pytest.fixture
def app(make_app):
    released.clear()
    Opening.checked.clear()
    app = make_app(EXTRA_PLUGINS=PLUGINS, GUARD_TIMEOUT_SECONDS=0.5, LOCK_TIMEOUT_SECONDS=2)
    yield app
    released.set()


@pytest.fixture
def enable(app, business, clock):
    def switch_on(name, **settings):
        with app.app_context():
            return plugin_changes.enable(app, business.tenant_id, name, settings, clock())

    return switch_on


def state(app, business) -> dict[str, tuple[bool, dict]]:
    with db.fresh_session(app) as session:
        return plugin_changes.tenant_plugins(session, business.tenant_id)


def audited(app, business) -> list[str]:
    with db.fresh_session(app) as session:
        return list(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.tenant_id == business.tenant_id)
            )
        )


def unchanged(app, business):
    """What a refusal must leave as it was: the stored plugins and the audit trail."""
    return state(app, business), audited(app, business)


def recent_failures(app, business, clock) -> dict:
    with db.fresh_session(app) as session:
        return plugin_health.recent_failures(
            session, business.tenant_id, clock() - timedelta(days=1)
        )


# --- each value on its own ------------------------------------------------------------------------


CLOSED_ON = Opening.MANIFEST.settings[0]
ALERTS_TO = Opening.MANIFEST.settings[3]
REPORT_TO = Opening.MANIFEST.settings[4]


def test_every_item_of_a_list_with_choices_must_be_one_of_them():
    assert check_value(CLOSED_ON, ["saturday", " sunday "]) == ["saturday", "sunday"]
    assert check_value(CLOSED_ON, []) == []
    with pytest.raises(ValueError) as refused:
        check_value(CLOSED_ON, ["monday", "Funday"])
    assert str(refused.value) == (
        "cannot contain 'Funday': each item must be one of: "
        "monday, tuesday, wednesday, thursday, friday, saturday, sunday"
    )


@pytest.mark.parametrize(
    "given, kept",
    [("ann@example.com", "ann@example.com"), ("  Ann@Example.COM ", "Ann@example.com"), ("", "")],
)
def test_an_email_setting_holds_one_address_or_nothing_when_its_default_is_empty(given, kept):
    assert check_value(ALERTS_TO, given) == kept


@pytest.mark.parametrize(
    "given",
    ["ann", "ann@example", "Ann <ann@example.com>", "a@example.com, b@example.com",
     "ann@exa mple.com", "ann@example.com\nBcc: eve@example.com", 42],
)  # fmt: skip
def test_an_email_setting_refuses_anything_but_one_address(given):
    with pytest.raises(ValueError, match="must be one e-mail address|must be text"):
        check_value(ALERTS_TO, given)


def test_an_email_or_url_with_a_default_cannot_be_emptied():
    required = Setting("to", "email", "ops@example.com", "To")
    with pytest.raises(ValueError):
        check_value(required, "")
    with pytest.raises(ValueError, match="web address"):
        check_value(REPORT_TO, "  ")


@pytest.mark.parametrize(
    "given",
    ["https://example.com", "http://example.com:8080/hook?x=1#top", "https://[2001:db8::1]/in",
     "https://127.0.0.1/in", "https://bücher.example/", "http://localhost:5000"],
)  # fmt: skip
def test_a_url_setting_takes_http_and_https_addresses(given):
    assert check_value(REPORT_TO, given) == given


@pytest.mark.parametrize(
    "given, why",
    [
        ("example.com", "web address"),
        ("ftp://example.com/file", "web address"),
        ("javascript:alert(1)", "web address"),
        ("https://", "web address"),
        ("https:///path", "web address"),
        ("https://exa mple.com", "no spaces"),
        ("https://example.com/\nX: y", "no spaces"),
        ("https://example.com:99999/", "web address"),
        ("https://bad_host!/", "is not a host name"),
        ("https://ann:secret@example.com/", "user name or password"),
        ("https://" + "a" * 2000 + ".com", "at most 2000"),
    ],
)
def test_a_url_setting_refuses_anything_else_and_says_why(given, why):
    with pytest.raises(ValueError, match=why):
        check_value(REPORT_TO, given)


@pytest.mark.parametrize(
    "setting, why",
    [
        (Setting("days", "list", ["funday"], "Days", choices=WEEKDAYS), "cannot contain 'funday'"),
        (Setting("to", "email", "nobody", "To"), "must be one e-mail address"),
        (Setting("at", "url", "ftp://x.example", "At"), "web address"),
        (Setting("n", "int", 1, "N", choices=("1", "2")), "only a choice or a list can"),
        (Setting("days", "list", [], "Days", choices=("a,b", "c")), "has a comma"),
        (Setting("days", "list", [], "Days", choices=(" a", "b")), "padded"),
    ],
)
def test_a_manifest_with_a_bad_list_choice_email_or_url_is_listed_as_broken(make_app, setting, why):
    class Bad:
        MANIFEST = manifest("s-bad", "Bad", setting)

    plugin = host_of(make_app(EXTRA_PLUGINS=[Bad])).installed["s-bad"]
    assert plugin.status == "broken" and why in plugin.error


def test_a_manifest_with_list_choices_email_and_url_loads(app):
    assert host_of(app).installed["s-opening"].status == "ok"


# --- the plugin's own check, behind the one door all three use ----------------------------------


def test_check_settings_sees_the_merged_settings_and_refuses_field_by_field(app, business, enable):
    enable("s-opening", opens=8)
    before = unchanged(app, business)
    with pytest.raises(InvalidSettings) as refused:
        enable("s-opening", opens=17)
    assert refused.value.fields == {"closes": "Closes at must be after Opens at."}
    assert Opening.checked[-1] == {
        "closed_on": ["sunday"],
        "opens": 17,
        "closes": 17,
        "alerts_to": "",
        "report_to": "https://reports.example.com/in",
        "tags": [],
    }
    assert unchanged(app, business) == before
    assert enable("s-opening", opens=10, closes=18).settings["closes"] == 18


def test_check_settings_is_not_asked_of_values_that_are_not_valid_on_their_own(
    app, business, enable
):
    with pytest.raises(InvalidSettings) as refused:
        enable("s-opening", opens=99, closed_on=["funday"])
    assert set(refused.value.fields) == {"opens", "closed_on"}
    assert Opening.checked == []
    assert state(app, business) == {}


def test_only_the_plugins_own_check_is_asked(app, business, enable):
    enable("s-grumpy")
    enable("s-opening", closes=20)  # Grumpy's check would refuse anything it is shown
    with pytest.raises(InvalidSettings) as refused:
        enable("s-grumpy", mood="high")
    assert refused.value.fields == {"mood": "Grumpy stays low."}


def test_an_unchanged_save_asks_nothing(app, business, enable):
    enable("s-opening")
    asked = len(Opening.checked)
    enable("s-opening", opens=9)
    assert len(Opening.checked) == asked


@pytest.mark.parametrize(
    "level, how",
    [(2, "failed"), (3, "answered nonsense"), (4, "answered nonsense"), (5, "took too long"),
     (6, "answered nonsense")],
)  # fmt: skip
def test_a_check_that_fails_refuses_the_change_and_is_counted(
    app, business, enable, clock, caplog, level, how
):
    enable("s-fussy")
    before = unchanged(app, business)
    with pytest.raises(SettingsCheckFailed) as refused:
        enable("s-fussy", level=level)
    assert refused.value.code == "plugin_failed"
    assert refused.value.message.startswith(f"The settings check of Fussy {how}")
    assert "nothing was changed" in refused.value.message
    assert unchanged(app, business) == before
    assert "s-fussy" in caplog.text and "check_settings" in caplog.text
    assert recent_failures(app, business, clock)["s-fussy"].last_hook == "check_settings"


def test_switching_off_with_new_settings_is_checked_too(app, business, enable, clock):
    enable("s-opening")
    with app.app_context():
        with pytest.raises(InvalidSettings):
            plugin_changes.disable(
                app, business.tenant_id, "s-opening", clock(), values={"opens": 20}
            )
    assert state(app, business)["s-opening"][0] is True


def test_settings_raised_to_a_floor_are_checked_by_their_own_plugin(app, business, enable):
    with pytest.raises(PluginConflict) as refused:
        enable("s-late")
    assert refused.value.message == (
        "Switching Late hours on would give Opening rules settings it refuses "
        "(closes: Closes at must be after Opens at.). Change the settings of Opening rules first."
    )
    assert state(app, business) == {}
    enable("s-opening", closes=20)
    assert enable("s-late").also_enabled == []
    assert Opening.checked[-1]["opens"] == 18
    enable("s-noon")  # a floor the check accepts


def test_no_plugin_code_holds_the_write_lock(app, business, enable):
    """The check runs before the change takes the lock: a check that takes the lock itself
    would otherwise wait for it past its time limit, and the change would be refused."""
    enable("s-lock-probe", n=2)
    assert LockProbe.took_the_lock
    assert state(app, business)["s-lock-probe"] == (True, {"n": 2})


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
def owner_token(app, business, clock) -> str:
    with app.app_context():
        create_user(
            app,
            tenant_id=business.tenant_id,
            email="owner@example.com",
            role="owner",
            password=STAFF_PASSWORD,
            now=clock(),
        )
    answer = app.test_client().post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "owner@example.com", "password": STAFF_PASSWORD},
    )
    assert answer.status_code == 200, answer.json
    return answer.json["token"]


def put(app, token, name, settings):
    return app.test_client().put(
        f"{PLUGINS_API}/{name}",
        json={"enabled": True, "settings": settings},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_api_refuses_field_by_field_with_422_and_changes_nothing(app, business, owner_token):
    assert put(app, owner_token, "s-opening", {}).status_code == 200
    before = unchanged(app, business)
    answer = put(
        app,
        owner_token,
        "s-opening",
        {"closed_on": ["monday", "Funday"], "alerts_to": "ann@", "report_to": "ftp://x.example"},
    )
    assert answer.status_code == 422
    error = answer.json["error"]
    assert error["code"] == "invalid_settings"
    assert set(error["fields"]) == {"closed_on", "alerts_to", "report_to"}
    assert "'Funday'" in error["fields"]["closed_on"]
    assert "monday, tuesday" in error["fields"]["closed_on"]
    across = put(app, owner_token, "s-opening", {"opens": 18})
    assert across.status_code == 422
    assert across.json["error"]["fields"] == {"closes": "Closes at must be after Opens at."}
    assert unchanged(app, business) == before
    done = put(
        app,
        owner_token,
        "s-opening",
        {"closed_on": ["saturday", "sunday"], "alerts_to": "ops@example.com", "opens": 18,
         "closes": 22},
    )  # fmt: skip
    assert done.status_code == 200, done.json
    assert done.json["settings"]["closed_on"] == ["saturday", "sunday"]
    assert done.json["settings"]["alerts_to"] == "ops@example.com"


def test_the_api_answers_a_failing_check_with_503_plugin_failed(app, business, owner_token, clock):
    put(app, owner_token, "s-fussy", {})
    before = unchanged(app, business)
    answer = put(app, owner_token, "s-fussy", {"level": 2})
    assert answer.status_code == 503
    assert answer.json["error"]["code"] == "plugin_failed"
    assert "bug in a settings check" not in answer.get_data(as_text=True)
    assert unchanged(app, business) == before
    listed = app.test_client().get(PLUGINS_API, headers={"Authorization": f"Bearer {owner_token}"})
    fussy = next(entry for entry in listed.json if entry["name"] == "s-fussy")
    assert fussy["recent_errors"]["count"] == 1


# --- the CLI ------------------------------------------------------------------------------------


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


def cli_enable(run, name, *assignments):
    arguments = ["plugins", "enable", name, "--tenant", "salon"]
    for assignment in assignments:
        arguments += ["--set", assignment]
    return run(*arguments)


def test_the_cli_takes_lists_comma_separated_and_an_empty_value_empties_them(run, app, business):
    done = cli_enable(run, "s-opening", "closed_on=saturday, sunday", "tags=a,b")
    assert done.exit_code == 0, done.output
    assert state(app, business)["s-opening"][1]["closed_on"] == ["saturday", "sunday"]
    emptied = cli_enable(run, "s-opening", "closed_on=", "tags=")
    assert emptied.exit_code == 0, emptied.output
    settings = state(app, business)["s-opening"][1]
    assert settings["closed_on"] == [] and settings["tags"] == []


def test_the_cli_refuses_alike_and_changes_nothing(run, app, business):
    cli_enable(run, "s-opening")
    before = unchanged(app, business)
    funday = cli_enable(run, "s-opening", "closed_on=monday,funday")
    assert funday.exit_code != 0
    assert "invalid settings, nothing changed" in funday.output
    assert "Closed on cannot contain 'funday'" in funday.output
    address = cli_enable(run, "s-opening", "alerts_to=nobody", "report_to=example.com")
    assert address.exit_code != 0
    assert "alerts_to: Alerts to must be one e-mail address" in address.output
    assert "report_to: Reports to must be a web address" in address.output
    across = cli_enable(run, "s-opening", "opens=18", "closes=10")
    assert across.exit_code != 0
    assert "closes: Closes at must be after Opens at." in across.output
    failing = cli_enable(run, "s-fussy", "level=2")
    assert failing.exit_code != 0
    assert "refused (plugin_failed): The settings check of Fussy failed" in failing.output
    assert "Traceback" not in failing.output
    assert unchanged(app, business) == before


# --- the marketplace ----------------------------------------------------------------------------


@pytest.fixture
def owner(app, business, clock):
    with app.app_context():
        create_user(
            app,
            tenant_id=business.tenant_id,
            email="owner@example.com",
            role="owner",
            password=STAFF_PASSWORD,
            now=clock(),
        )
    return log_in_staff(app, "owner@example.com")


def card(page, name) -> str:
    found = re.search(
        rf'<section class="card plugin" id="plugin-{name}">(.*?)</section>', page.text, re.S
    )
    assert found, f"no card for {name}"
    return unescape(found.group(1))


def save(client, name, data):
    token = csrf_token_of(client.get(MARKET))
    return client.post(f"{MARKET}/settings", data={"csrf_token": token, "plugin": name, **data})


def opening_form(**changes):
    form = {
        "setting-closed_on": ["saturday", "sunday"],
        "setting-opens": "9",
        "setting-closes": "17",
        "setting-alerts_to": "ops@example.com",
        "setting-report_to": "https://reports.example.com/in",
        "setting-tags": "vip\nquiet",
    }
    form.update(changes)
    return form


def test_the_marketplace_shows_choices_as_boxes_and_addresses_as_their_inputs(app, owner):
    opening = card(owner.get(MARKET), "s-opening")
    boxes = re.findall(
        r'<input type="checkbox" name="setting-closed_on" value="(\w+)"( checked)?>', opening
    )
    assert [day for day, _ in boxes] == list(WEEKDAYS)
    assert [day for day, ticked in boxes if ticked] == ["sunday"]
    assert "<legend>Closed on</legend>" in opening
    assert re.search(
        r'<input type="email" id="setting-alerts_to" name="setting-alerts_to"', opening
    )
    assert re.search(
        r'<input type="url" id="setting-report_to" name="setting-report_to" '
        r'value="https://reports.example.com/in"',
        opening,
    )
    assert re.search(r'<textarea id="setting-tags"', opening)
    assert opening.count("One per line, or separated by commas.") == 1  # the free list only


def test_the_marketplace_saves_ticked_boxes_and_addresses(app, business, owner):
    saved = save(owner, "s-opening", opening_form())
    assert saved.status_code == 302, saved.text
    assert state(app, business)["s-opening"][1] == {
        "closed_on": ["saturday", "sunday"],
        "opens": 9,
        "closes": 17,
        "alerts_to": "ops@example.com",
        "report_to": "https://reports.example.com/in",
        "tags": ["vip", "quiet"],
    }
    form = opening_form()
    del form["setting-closed_on"]  # no box ticked
    assert save(owner, "s-opening", form).status_code == 302
    assert state(app, business)["s-opening"][1]["closed_on"] == []


def test_the_marketplace_refuses_beside_each_field_and_changes_nothing(app, business, owner):
    save(owner, "s-opening", opening_form())
    before = unchanged(app, business)
    refused = save(
        owner,
        "s-opening",
        opening_form(
            **{
                "setting-closed_on": ["monday", "funday"],
                "setting-alerts_to": "ops",
                "setting-report_to": "ftp://x.example",
            }
        ),
    )
    assert refused.status_code == 422
    opening = card(refused, "s-opening")
    assert "Closed on cannot contain 'funday'" in opening
    assert "Alerts to must be one e-mail address" in opening
    assert "Reports to must be a web address" in opening
    assert re.search(r'value="monday" checked', opening)  # what was ticked comes back
    across = save(owner, "s-opening", opening_form(**{"setting-opens": "18"}))
    assert across.status_code == 422
    assert re.search(
        r'id="setting-closes".*?<p class="field-error"[^>]*>Closes at must be after Opens at\.</p>',
        card(across, "s-opening"),
        re.S,
    )
    failing = save(owner, "s-fussy", {"setting-level": "2"})
    assert failing.status_code == 503
    assert "The settings check of Fussy failed, so nothing was changed." in card(
        failing, "s-fussy"
    )
    assert unchanged(app, business) == before
