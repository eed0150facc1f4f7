"""What a plugin author meets on the command line: `bookwell plugins new` writes a plugin whose
tests pass as they are, `bookwell tick --dry-run` shows what plugins log, and the author of each
plugin is listed (`plugins list --json`, the marketplace card)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.testing import open_business
from bookwell.hooks import Manifest, hookimpl


def bookwell(tmp_path: Path, *arguments: str):
    return CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), *arguments])


# --- bookwell plugins new -------------------------------------------------------------------------


def installed_on(site: Path, name: str) -> None:
    """The entry point `pip install -e` would register, without the install."""
    info = site / f"bookwell_{name}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: bookwell-{name}\n")
    (info / "entry_points.txt").write_text(f"[bookwell.plugins]\n{name} = bookwell_{name}\n")


def test_new_writes_a_plugin_whose_tests_pass_as_they_are(tmp_path):
    answer = bookwell(tmp_path, "plugins", "new", "min_notice", "--dir", str(tmp_path / "work"))
    assert answer.exit_code == 0, answer.output
    root = tmp_path / "work" / "bookwell-min_notice"
    assert sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()) == [
        "README.md",
        "pyproject.toml",
        "src/bookwell_min_notice/__init__.py",
        "tests/conftest.py",
        "tests/test_min_notice.py",
    ]
    assert 'min_notice = "bookwell_min_notice"' in (root / "pyproject.toml").read_text()
    site = tmp_path / "site"
    installed_on(site, "min_notice")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(site)])}
    environment.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "7 passed" in tests.stdout, tests.stdout
    ruff = Path(sys.executable).with_name("ruff")
    for check in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        linted = subprocess.run([str(ruff), *check], cwd=root, capture_output=True, text=True)
        assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("Loyalty", "lowercase letters, digits and underscores"),
        ("gift-cards", "lowercase letters, digits and underscores"),
        ("2fa", "starting with a letter"),
        ("tick", "one of Bookwell's own commands"),
        ("plugins", "one of Bookwell's own commands"),
    ],
)
def test_new_refuses_a_name_that_breaks_the_rule(tmp_path, name, complaint):
    answer = bookwell(tmp_path, "plugins", "new", name, "--dir", str(tmp_path))
    assert answer.exit_code != 0 and complaint in answer.output, answer.output
    assert list(tmp_path.glob("bookwell-*")) == []


def test_new_never_overwrites_a_folder(tmp_path):
    (tmp_path / "bookwell-mine").mkdir()
    (tmp_path / "bookwell-mine" / "keep.txt").write_text("mine")
    answer = bookwell(tmp_path, "plugins", "new", "mine", "--dir", str(tmp_path))
    assert answer.exit_code != 0 and "already exists" in answer.output
    assert [path.name for path in (tmp_path / "bookwell-mine").iterdir()] == ["keep.txt"]


# --- bookwell tick --dry-run --------------------------------------------------------------------

talkative_log = logging.getLogger("bookwell_talkative")


class Talkative:
    MANIFEST = Manifest("talkative", "Talkative", "Says what it would do.", "1.0", "t", "tests")

    @hookimpl
    def on_schedule(ctx):
        if ctx.dry_run:
            talkative_log.info("would remind 3 clients of %s", ctx.tenant.slug)
        talkative_log.debug("details nobody asked for")


@pytest.fixture
def cli_app(make_app, tmp_path, database_url, monkeypatch, clock):
    """An app of this test's instance with Talkative on for salon; the CLI's app gets it too."""
    from bookwell.core.pluginhost.host import PluginHost

    load = PluginHost.load_entry_points

    def with_talkative(self):
        load(self)
        self.add(Talkative, source="tests")

    monkeypatch.setattr(PluginHost, "load_entry_points", with_talkative)
    monkeypatch.setenv("DATABASE_URL", database_url)
    app = make_app()
    salon = open_business(app, clock())
    with app.app_context():
        plugin_changes.enable(app, salon.tenant_id, "talkative", {}, clock())
    return app


def test_a_dry_run_shows_what_plugins_log(cli_app, tmp_path):
    answer = bookwell(tmp_path, "tick", "--dry-run")
    assert answer.exit_code == 0, answer.output
    lines = answer.output.splitlines()
    assert "log: bookwell_talkative: would remind 3 clients of salon" in lines
    assert "details nobody asked for" not in answer.output
    assert lines[-1].startswith("dry run: salon at ") and lines[-1].endswith(": talkative")
    # A real run prints no log: it is the dry run's way to say what would be done.
    real = bookwell(tmp_path, "tick")
    assert real.exit_code == 0 and "log:" not in real.output, real.output
    shown = [handler for handler in logging.getLogger().handlers if "Plugins" in repr(handler)]
    assert shown == []  # the dry run's handler is gone with it


# --- author ---------------------------------------------------------------------------------------


def test_the_author_is_listed_and_on_the_marketplace_card(
    tmp_path, database_url, monkeypatch, owner
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    listed = json.loads(bookwell(tmp_path, "plugins", "list", "--json").output)
    closed_days = next(entry for entry in listed if entry["name"] == "closed_days")
    assert closed_days["author"] == "Bookwell tests"
    broken = next(entry for entry in listed if entry["name"] == "broken_import")
    assert broken["author"] == ""
    card = owner.pages.get("/admin/salon/marketplace").text
    section = card[card.index('id="plugin-closed_days"') :].split("</section>")[0]
    assert "<dt>Author</dt><dd>Bookwell tests</dd>" in section
