"""The plugin guide is complete and true: every hook has its section, every Python example
compiles, and the files it shows (the quick start's plugin and its tests, the pages example)
work as the guide says when written out as a plugin author would."""

from __future__ import annotations

import ast
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
from bookwell.core.testing import host_of, open_business
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


# --- every Python example is run by a test ------------------------------------------------------

# A distinctive line of each Python example of the guide → the test that runs it: loads it as a
# plugin (or as its author's files) and drives it through the real app, not only compiles it.
# A new example needs its line here, and its test; moving examples around changes nothing.
RUN_BY = {
    "texts = catalogue(__name__)": "pluginhost/test_plugin_catalogue.py::"
    "test_the_guides_example_is_the_packages_own_code",
    "grant = ctx.grants.give(": "access/test_grants.py::"
    "test_the_guides_example_gives_revokes_and_lists",
    '"""Quiet Tuesdays: a discount on bookings': "test_docs.py::"
    "test_the_quick_start_plugin_passes_the_tests_the_guide_shows",
    'pytest_plugins = ["bookwell.core.testing"]': "test_docs.py::"
    "test_the_quick_start_plugin_passes_the_tests_the_guide_shows",
    "def test_a_tuesday_booking_is_discounted": "test_docs.py::"
    "test_the_quick_start_plugin_passes_the_tests_the_guide_shows",
    'name="loyalty"': "test_guide_examples.py::TestTheLoyaltyManifest::"
    "test_bounds_its_settings_and_needs_an_intact_history",
    'name="quiet_hours"': "booking/test_unavailable_times.py::"
    "test_the_guides_quiet_hours_example_works_as_the_guide_says",
    'subject="See you tomorrow"': "test_guide_examples.py::TestTheReminder::"
    "test_mails_each_client_of_the_next_day_once",
    'key = f"bookings:{ctx.booking.client_email.lower()}"': "pluginhost/test_plugin_store.py::"
    "test_the_guides_example_counts_bookings_per_hour",
    "def use_recovery_code(ctx, user_id, code):": "pluginhost/test_plugin_secrets.py::"
    "test_the_guides_example_keeps_a_seed_and_spends_a_recovery_code_once",
    'return "bookwell_visit_notes:migrations"': "test_guide_examples.py::TestTheVisitNotes::"
    "test_an_event_writes_the_businesss_rows_of_its_table",
    "from bookwell.hooks.migrations import run_migrations": "test_guide_examples.py::"
    "TestTheVisitNotes::test_env_py_is_the_guides",
    "ctx.tables.insert(": "test_guide_examples.py::TestTheVisitNotes::"
    "test_an_event_writes_the_businesss_rows_of_its_table",
    '(ctx.files / "last-run.txt")': "test_guide_examples.py::TestTheFilesFolder::"
    "test_scheduled_work_writes_in_its_folder_for_the_business",
    'name="tidy_history"': "scheduling/test_progress.py::"
    "test_the_cleanup_takes_a_slice_per_tick_and_carries_on",
    '"""Gift cards: a page where': "test_docs.py::"
    "test_the_pages_example_serves_its_page_and_static_file_only_where_enabled",
    '"gift_cards_admin"': "test_guide_examples.py::TestTheStaffPage::"
    "test_staff_see_it_in_the_menu_and_only_the_owner_changes_anything",
    'name="lockout"': "test_guide_examples.py::TestTheLockout::"
    "test_after_n_wrong_passwords_it_answers_locked_whatever_the_password",
    'name="authenticator"': "test_guide_examples.py::TestTheAuthenticator::"
    "test_an_owner_without_one_is_let_in_only_to_enrol",
    "def unlock(slug, email):": "cli/test_plugin_commands.py::"
    "test_the_guides_example_unlocks_an_account",
    '"no_show_noted"': "test_guide_examples.py::TestTheNoShowNote::"
    "test_a_no_show_is_noted_in_the_audit_trail_and_a_visit_is_not",
    'percent = 100 if in_time else settings["late_percent"]': "test_guide_examples.py::"
    "TestTheRefundRule::test_a_late_cancellation_of_a_prepaid_booking_is_due_its_share",
    'closed["cancel"] = refusal.message': "test_guide_examples.py::TestTheClosedActions::"
    "test_the_manage_page_says_so_instead_of_the_button",
}
# A distinctive line → why its example is only compiled. Keep this empty if at all possible.
COMPILE_ONLY: dict[str, str] = {}
# Every Python block, indented ones (in a list item) included.
PYTHON_BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.M | re.S)


def test_every_python_example_is_run_by_a_test_or_says_why_not():
    markers = {**RUN_BY, **COMPILE_ONLY}
    blocks = [code for _, code in PYTHON_BLOCK.findall(GUIDE)]
    for code in blocks:
        found = [marker for marker in markers if marker in code]
        assert len(found) == 1, (
            f"the example starting {code.splitlines()[0]!r} needs one line of its own in "
            f"RUN_BY (with the test that runs it) or COMPILE_ONLY (with why), not {found}"
        )
    for marker in markers:
        holding = [code for code in blocks if marker in code]
        assert len(holding) == 1, f"{marker!r} is in {len(holding)} examples, not one"
    assert not set(RUN_BY) & set(COMPILE_ONLY)
    assert all(reason.strip() for reason in COMPILE_ONLY.values())


@pytest.mark.parametrize("test", sorted(set(RUN_BY.values())))
def test_each_test_that_runs_an_example_exists_and_reads_the_guide(test):
    path, *names = test.split("::")
    source = (Path(__file__).parent / path).read_text()
    tree = ast.parse(source)
    for name in names:
        (tree,) = [
            node
            for node in ast.iter_child_nodes(tree)
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name
        ]
    assert "plugins.md" in source or "guide_example" in source, path


def test_every_link_within_the_guide_leads_to_a_heading():
    def anchor(heading: str) -> str:  # as GitHub makes them
        return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

    anchors = {anchor(heading) for heading in re.findall(r"^#+ (.*)$", GUIDE, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", GUIDE)
    assert links and not [link for link in links if link not in anchors]


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
    assert project["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]


def test_the_quick_start_plugin_passes_the_tests_the_guide_shows(tmp_path):
    """The guide's plugin and its tests, run by pytest as its author would run them (the one
    difference: the plugin is handed to the app rather than installed)."""
    write_files(
        tmp_path,
        files_shown("pyproject.toml")
        | files_shown("src/bookwell_tuesdays/")
        | files_shown("tests/"),
    )
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
        # No path: the pyproject's testpaths find the tests, as a bare `pytest` does.
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
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
        plugin_changes.enable(app, salon.tenant_id, "gift_cards", {}, clock())
    client = app.test_client()

    page = client.get("/book/salon/gift_cards/")
    assert page.status_code == 200
    assert "<h1>Gift cards</h1>" in page.text and "<li>50.00</li>" in page.text
    stylesheet = client.get("/book/salon/gift_cards/static/gift-cards.css")
    assert stylesheet.status_code == 200 and ".gift-cards" in stylesheet.text
    assert 'href="/book/salon/gift_cards/static/gift-cards.css"' in page.text

    for path in ("/book/spa/gift_cards/", "/book/spa/gift_cards/static/gift-cards.css"):
        assert client.get(path).status_code == 404, path
    assert client.get("/book/nobody/gift_cards/").status_code == 404


# --- every plugin of the guide, started twice in one process --------------------------------------

PRELUDE = "from datetime import datetime, timedelta\nfrom bookwell.hooks import *\n"
STAFF_TEMPLATE = """{% extends "admin/layout.html" %}
{% block content %}<h1>Gift cards</h1>{% endblock %}
"""


def plugin_examples() -> list[tuple[str, str]]:
    """(where, code) of every Python example of the guide that implements a hook: the files it
    shows as a package's ``__init__.py`` and the blocks that stand alone."""
    shown = {path: body for path, body in FILE.findall(GUIDE) if path.endswith("__init__.py")}
    found = [(path, body) for path, body in shown.items() if "@hookimpl" in body]
    for number, (kind, code) in enumerate(BLOCK.findall(GUIDE)):
        if kind == "python" and "@hookimpl" in code and code not in shown.values():
            found.append((f"python block {number}", textwrap.dedent(code)))
    return found


def load_example(root: Path, where: str, code: str):
    """The example as a package of its own under ``root``: a file the guide shows keeps its
    name and its neighbouring files; a block gets what it leaves out (its imports, a manifest,
    the template it names)."""
    if where.startswith("src/"):
        package = where.split("/")[1]
        write_files(root, files_shown(f"src/{package}/"))
    else:
        package = f"guide_example_{where.split()[-1]}"
        if "MANIFEST" not in code:
            # Named as the plugin the block belongs to, when it names its package (whose
            # tables are named so); else after itself.
            named = re.search(r"bookwell_(\w+)", code)
            name = named[1] if named else package
            code += (
                f"\nMANIFEST = Manifest({name!r}, 'Example', 'From the guide.', '0.1', "
                "'Examples', 'docs')\n"
            )
        write_files(
            root,
            {
                f"src/{package}/__init__.py": PRELUDE + code,
                f"src/{package}/templates/gift_cards/manage.html": STAFF_TEMPLATE,
            },
        )
    sys.modules.pop(package, None)
    return importlib.import_module(package)


@pytest.mark.parametrize("where", [where for where, _ in plugin_examples()])
def test_every_plugin_of_the_guide_starts_twice_in_one_process(
    where, tmp_path, monkeypatch, make_app, clock
):
    """As tests do, and as gunicorn's workers do after the master built its app: a blueprint
    made at import, mounted by a second app, once stopped the server from starting."""
    code = dict(plugin_examples())[where]
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    module = load_example(tmp_path, where, code)
    try:
        # Only the example: the guide's examples are named after the test packages installed.
        first, second = (make_app(plugins=[module], LOAD_ENTRY_POINTS=False) for _ in "12")
    finally:
        sys.modules.pop(module.__name__, None)
    name = module.MANIFEST.name
    salon = open_business(first, clock())
    with first.app_context():
        plugin_changes.enable(first, salon.tenant_id, name, {}, clock())
    for app in (first, second):
        plugin = host_of(app).installed[name]
        assert (plugin.status, plugin.error) == ("ok", None)
        mounted = [rule for rule in app.url_map.iter_rules() if f"plugin_{name}." in rule.endpoint]
        assert bool(mounted) == ("def routes" in code), mounted
        pages = [rule.rule for rule in mounted if "GET" in (rule.methods or ())]
        for rule in pages:
            if "<path:filename>" not in rule:
                answer = app.test_client().get(rule.replace("<slug>", "salon"))
                assert answer.status_code in (200, 302), (rule, answer.status_code)
