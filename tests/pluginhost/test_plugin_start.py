"""No plugin can stop the server: a plugin whose pages, templates, migrations, manifest or name
fail at start is listed as broken with its reason, is never called, makes the guards of a
business that had switched it on refuse, and everything else starts and serves."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import booking_body
from flask import Blueprint
from sqlalchemy import update

from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost.host import PluginHost, host_of
from bookwell.core.pluginhost.rules import RuleBroken
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant, TenantPlugin
from bookwell.core.testing import open_business
from bookwell.hooks import Manifest, hookimpl

GOOD_MIGRATIONS = Path(__file__).parent / "plugin_migrations" / "good"


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


def page_plugin(name: str, make_pages):
    class Plugin:
        MANIFEST = manifest(name)
        asked: list[str] = []

        @hookimpl
        def routes():
            return make_pages()

        @hookimpl
        def before_confirm(ctx):
            Plugin.asked.append(ctx.tenant.slug)

    return Plugin


def with_page(rule: str, **options):
    def make():
        pages = Blueprint("pages", __name__, **options)
        pages.add_url_rule(rule, "page", lambda slug="": {"page": rule})
        return pages

    return make


def raising():
    raise RuntimeError("no pages today")


PAGES_MADE_ONCE = with_page("/book/<slug>/good/")()  # at import, as the guide's example does
Good = page_plugin("good", lambda: PAGES_MADE_ONCE)

# (plugin, what `plugins list` must say about it)
BROKEN_AT_START = [
    (page_plugin("routes_raise", raising), "routes failed: RuntimeError('no pages today')"),
    (page_plugin("not_a_blueprint", lambda: "pages"), "routes returned str, not a Blueprint"),
    (
        page_plugin("bad_rule", with_page("no-leading-slash")),
        "URL rule 'no-leading-slash' must start with a slash",
    ),
    (page_plugin("takes_a_core_page", with_page("/admin/<s>/login")), "is already core's"),
    (
        page_plugin("takes_goods_page", with_page("/book/<slug>/good/")),
        "its page GET /book/<default>/good/ is already plugin good's",
    ),
    (
        page_plugin("no_templates", with_page("/book/<slug>/nt/", template_folder="templates")),
        "its templates folder",
    ),
    (
        page_plugin("no_static", with_page("/", url_prefix="/book/<slug>/ns", static_folder="st")),
        "its static folder",
    ),
]


def migrations_plugin(name: str, answer):
    class Plugin:
        MANIFEST = manifest(name)

        @hookimpl
        def migrations():
            return answer() if callable(answer) else answer

    return Plugin


BROKEN_MIGRATIONS = [
    (migrations_plugin("migrations_raise", raising), "migrations failed: RuntimeError("),
    (migrations_plugin("migrations_answer_42", 42), "migrations returned 42"),
    (
        migrations_plugin("migrations_nowhere", "bookwell_nothing_here:migrations"),
        "is not a folder with an env.py",
    ),
    (
        migrations_plugin("migrations_failing", str(GOOD_MIGRATIONS.parent / "broken")),
        "its tables are not at their newest revision",
    ),
]
NAMED_WRONG = [
    (type("Capital", (), {"MANIFEST": manifest("Capital")}), "is not lowercase letters"),
    (type("Dotted", (), {"MANIFEST": manifest("dotted.name")}), "is not lowercase letters"),
]
EVERY_BROKEN = BROKEN_AT_START + BROKEN_MIGRATIONS + NAMED_WRONG


@pytest.fixture
def hides_a_template(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "base.html").write_text("mine")
    return page_plugin(
        "hides_a_template", with_page("/book/<slug>/ht/", template_folder=str(folder))
    )


@pytest.fixture
def cli(tmp_path, database_url, monkeypatch, hides_a_template):
    """``bookwell`` on an instance whose installed plugins are these, besides the real ones."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("BOOKWELL_DISABLED_PLUGINS", raising=False)
    load = PluginHost.load_entry_points

    def with_test_plugins(self):
        load(self)
        for plugin, _ in EVERY_BROKEN:
            self.add(plugin, source="tests")
        self.add(Good, source="tests")
        self.add(hides_a_template, source="tests")

    monkeypatch.setattr(PluginHost, "load_entry_points", with_test_plugins)

    def run(*arguments):
        return CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), *arguments])

    return run


def test_each_kind_of_start_failure_is_listed_with_its_reason(cli):
    initialised = cli("init")
    assert initialised.exit_code == 0, initialised.output
    assert "migrations_failing" in initialised.output  # init says which plugin failed
    listed = cli("plugins", "list", "--json")
    assert listed.exit_code == 0, listed.output
    entries = {entry["name"]: entry for entry in json.loads(listed.output)}
    for plugin, reason in EVERY_BROKEN:
        entry = entries[plugin.MANIFEST.name]
        assert entry["status"] == "broken", entry
        assert reason in entry["error"], (reason, entry["error"])
    hidden = entries["hides_a_template"]
    assert hidden["status"] == "broken" and "base.html" in hidden["error"]
    assert entries["good"]["status"] == "ok" and entries["closed_days"]["status"] == "ok"


def test_the_rest_starts_and_serves(make_app, clock, hides_a_template):
    plugins = [Good, hides_a_template] + [plugin for plugin, _ in BROKEN_AT_START + NAMED_WRONG]
    app = make_app(plugins=plugins)
    salon = open_business(app, clock())
    with app.app_context():
        plugin_changes.enable(app, salon.tenant_id, "good", {}, clock())
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/book/salon/good/").json == {"page": "/book/<slug>/good/"}
    login = client.get("/admin/salon/login")  # core's, not the plugin's that wanted it
    assert login.status_code == 200 and 'name="password"' in login.text
    installed = host_of(app).installed
    assert installed["good"].status == installed["closed_days"].status == "ok"
    for plugin, _ in BROKEN_AT_START + NAMED_WRONG:
        assert installed[plugin.MANIFEST.name].status == "broken"
        endpoints = [rule.endpoint for rule in app.url_map.iter_rules()]
        assert not [
            point for point in endpoints if point.startswith(f"plugin_{plugin.MANIFEST.name}.")
        ]


def test_a_plugin_broken_at_start_is_never_called_and_its_guards_refuse_where_it_was_on(
    make_app, clock
):
    """A business had switched it on before it broke (a bad upgrade): what its guards guard is
    refused, as for a plugin that no longer imports."""
    routes_raise = BROKEN_AT_START[0][0]
    routes_raise.asked.clear()
    app = make_app(plugins=[routes_raise])
    salon = open_business(app, clock())
    with db.write_transaction(app) as session:
        session.add(
            TenantPlugin(
                tenant_id=salon.tenant_id,
                plugin_name="routes_raise",
                enabled=True,
                settings="{}",
                updated_at=clock(),
            )
        )
        session.execute(update(Tenant).values(plugins_version=Tenant.plugins_version + 1))
    answer = app.test_client().post(
        "/api/v1/tenants/salon/bookings", json=booking_body(salon, "2027-03-02T10:00:00+01:00")
    )
    assert answer.status_code == 503
    assert answer.json["error"]["refusals"][0]["plugin"] == "routes_raise"
    assert routes_raise.asked == []
    with app.app_context(), pytest.raises(RuleBroken):
        plugin_changes.enable(app, salon.tenant_id, "routes_raise", {}, clock())


def test_a_hyphenated_name_still_loads_with_a_warning(caplog):
    host = PluginHost()
    with caplog.at_level(logging.WARNING, logger="bookwell.plugins"):
        plugin = host.add(type("Old", (), {"MANIFEST": manifest("old-name")}), source="tests")
    assert plugin.status == "ok"
    assert "hyphens in plugin names are deprecated; name it old_name" in caplog.text
