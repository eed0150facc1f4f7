"""The plugin guide is complete and true: every hook has its section, every Python example
compiles, and the files it shows (the quick start's plugin and its tests, the pages example)
work as the guide says when written out as a plugin author would."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.testing import open_business
from bookwell.hooks import CONTRIBUTIONS, EVENTS, GUARDS, specs

GUIDE = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
DECLARED = sorted(name for name in dir(specs) if hasattr(getattr(specs, name), "bookwell_spec"))
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# A file the guide shows: a line "`path`:", a blank line, then its fenced block.
FILE = re.compile(r"^`([\w./-]+)`:\n\n```\w*\n(.*?)^```", re.M | re.S)


def files_shown(under: str) -> dict[str, str]:
    return {path: body for path, body in FILE.findall(GUIDE) if path.startswith(under)}


def write_files(root: Path, files: dict[str, str]) -> None:
    for path, body in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)


def test_the_kinds_cover_every_declared_hook():
    assert sorted(GUARDS + EVENTS + CONTRIBUTIONS) == DECLARED


@pytest.mark.parametrize("hook", DECLARED)
def test_every_hook_has_its_own_section_in_the_guide(hook):
    assert f"### `{hook}`" in GUIDE


@pytest.mark.parametrize("hook", DECLARED)
def test_every_hook_is_documented_in_its_spec(hook):
    assert (getattr(specs, hook).__doc__ or "").strip()


@pytest.mark.parametrize(
    "number", [n for n, (kind, _) in enumerate(BLOCK.findall(GUIDE)) if kind == "python"]
)
def test_every_python_example_compiles(number):
    _, code = BLOCK.findall(GUIDE)[number]
    compile(textwrap.dedent(code), f"docs/plugins.md, python block {number}", "exec")


@pytest.mark.parametrize("heading", ["Quick start", "The manifest and settings",
                                     "Routes and templates", "Testing a plugin",
                                     "Publishing to PyPI"])  # fmt: skip
def test_the_guide_has_the_authors_sections(heading):
    assert f"\n## {heading}\n" in GUIDE


def test_the_quick_starts_pyproject_declares_the_entry_point():
    project = tomllib.loads(files_shown("pyproject.toml")["pyproject.toml"])
    assert project["project"]["entry-points"]["bookwell.plugins"] == {
        "tuesdays": "bookwell_tuesdays"
    }


def test_the_quick_start_plugin_passes_the_tests_the_guide_shows(tmp_path):
    """The guide's plugin and its tests, run by pytest as its author would run them (the one
    difference: the plugin is handed to the app rather than installed)."""
    write_files(tmp_path, files_shown("src/bookwell_tuesdays/") | files_shown("tests/"))
    conftest = tmp_path / "tests" / "conftest.py"
    conftest.write_text(
        conftest.read_text()
        + textwrap.dedent(
            """
            import pytest

            import bookwell_tuesdays


            @pytest.fixture
            def bookwell_plugins():
                return [bookwell_tuesdays]
            """
        )
    )
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "skipped" not in run.stdout


@pytest.fixture
def gift_cards(tmp_path, monkeypatch):
    write_files(tmp_path, files_shown("src/bookwell_gift_cards/"))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    sys.modules.pop("bookwell_gift_cards", None)
    yield importlib.import_module("bookwell_gift_cards")
    sys.modules.pop("bookwell_gift_cards", None)


def test_the_pages_example_serves_its_page_and_static_file_only_where_enabled(
    make_app, clock, gift_cards
):
    app = make_app(EXTRA_PLUGINS=[gift_cards])
    salon = open_business(app, clock())
    open_business(app, clock(), slug="spa", name="Spa")
    with app.app_context():
        plugin_changes.enable(app, salon.tenant_id, "gift-cards", {}, clock())
    client = app.test_client()

    page = client.get("/book/salon/gift-cards/")
    assert page.status_code == 200
    assert "<h1>Gift cards</h1>" in page.text and "<li>50.00</li>" in page.text
    stylesheet = client.get("/book/salon/gift-cards/static/gift-cards.css")
    assert stylesheet.status_code == 200 and ".gift-cards" in stylesheet.text
    assert 'href="/book/salon/gift-cards/static/gift-cards.css"' in page.text

    for path in ("/book/spa/gift-cards/", "/book/spa/gift-cards/static/gift-cards.css"):
        assert client.get(path).status_code == 404, path
    assert client.get("/book/nobody/gift-cards/").status_code == 404
