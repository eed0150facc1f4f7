"""What ``bookwell plugins new NAME`` writes: a plugin package that installs, loads and passes
its own tests as it is, for an author to change rather than start from nothing.

The plugin is one ``before_confirm`` guard with one ``int`` setting (bookings too soon are
refused), tested through Bookwell's fixtures (``bookwell.core.testing``) the way the guide
(``docs/plugins.md``) says plugins should be: through the API, for one business and not another.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from string import Template

NAME = re.compile(r"[a-z][a-z0-9_]*")

PYPROJECT = Template("""\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "$title: refuses bookings made with too little notice."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["bookwell"]

[project.optional-dependencies]
test = ["pytest>=8"]

# How Bookwell finds the plugin: the entry point's name is MANIFEST.name.
[project.entry-points."bookwell.plugins"]
$name = "$package"

[tool.setuptools.packages.find]
where = ["src"]

[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP"]
""")

README = Template("""\
# $distribution

A [Bookwell](https://pypi.org/project/bookwell/) plugin: $title. It refuses a booking that
starts less than **min_notice_hours** hours (default 2) from now, so that the business is never
surprised by a booking it cannot prepare for.

## Install

```sh
pip install -e ./$distribution
bookwell plugins list                                   # $name 0.1.0 ($distribution)
bookwell plugins enable $name --tenant salon --set min_notice_hours=4
```

Each business switches it on in its marketplace (`/admin/<business>/marketplace`) and sets
the notice there.

## Settings

| Setting            | Type | Default | What it does                                        |
|--------------------|------|---------|-----------------------------------------------------|
| `min_notice_hours` | int  | 2       | The least notice, in hours, a booking must give.    |

It requires, conflicts with, needs and breaks nothing, and stores nothing.

## Tests

```sh
pip install -e './$distribution[test]'
pytest $distribution/tests
```

They use Bookwell's fixtures for plugin authors (`bookwell.core.testing`): a real app on a real
database, a business, a client booking through the API and a clock that moves only when told.
The plugin guide (`docs/plugins.md` in Bookwell) says what else a plugin can do.
""")

PLUGIN = Template('''\
"""$title: refuses a booking that starts less than ``min_notice_hours`` hours from now."""

from datetime import timedelta

from bookwell.hooks import Manifest, Refusal, Setting, hookimpl

MANIFEST = Manifest(
    name="$name",
    title="$title",
    description="Refuses bookings made with less notice than the business needs.",
    version="0.1.0",
    category="Scheduling",
    author="You <you@example.com>",
    settings=(
        Setting(
            "min_notice_hours",
            "int",
            2,
            "Minimum notice (hours)",
            help="How long before its start a booking must be made.",
            min=0,
            max=24 * 30,
        ),
    ),
)


@hookimpl
def before_confirm(ctx, settings):
    hours = settings["min_notice_hours"]
    if ctx.booking.start - ctx.now < timedelta(hours=hours):
        return Refusal(
            f"Please book at least {hours} hours ahead.",
            code="too_little_notice",
            field="start",
        )
    return None
''')

CONFTEST = """\
# Bookwell's fixtures for plugin authors (app, tenant, client, clock, enable_plugin, ...) load
# by themselves wherever Bookwell is installed; this line loads them too when pytest's plugin
# autoloading is off (PYTEST_DISABLE_PLUGIN_AUTOLOAD).
pytest_plugins = ["bookwell.core.testing"]
"""

TESTS = Template('''\
"""$title, through Bookwell's public API. The clock stands at Monday 1 March 2027, 09:00 in
Paris, and moves only when a test moves it."""

import pytest
from bookwell.core.testing import InvalidSettings

IN_AN_HOUR = "2027-03-01T10:00:00+01:00"
IN_THREE_HOURS = "2027-03-01T12:00:00+01:00"


def test_a_booking_with_enough_notice_is_made(client, enable_plugin):
    enable_plugin("$name", min_notice_hours=2)
    assert client.book(IN_THREE_HOURS)["status"] == "confirmed"


def test_a_booking_with_too_little_notice_is_refused(client, enable_plugin):
    enable_plugin("$name", min_notice_hours=2)
    answer = client.try_book(IN_AN_HOUR)
    assert answer.status_code == 403
    refusal = answer.json["error"]["refusals"][0]
    assert (refusal["plugin"], refusal["code"]) == ("$name", "too_little_notice")


def test_the_notice_counts_from_now(client, clock, enable_plugin):
    enable_plugin("$name", min_notice_hours=4)
    assert client.try_book(IN_THREE_HOURS).status_code == 403
    clock.advance(days=-1)
    assert client.book(IN_THREE_HOURS)["status"] == "confirmed"


def test_the_refusal_is_in_the_audit_trail(client, enable_plugin, audit_trail):
    enable_plugin("$name")
    client.try_book(IN_AN_HOUR)
    refused = audit_trail(action="booking.refused")
    assert [entry.details["refusals"][0]["plugin"] for entry in refused] == ["$name"]


def test_a_business_that_has_not_enabled_it_takes_any_booking(client):
    assert client.book(IN_AN_HOUR)["status"] == "confirmed"


def test_another_business_is_not_affected(enable_plugin, second_client):
    enable_plugin("$name", min_notice_hours=2)
    assert second_client.book(IN_AN_HOUR)["status"] == "confirmed"


def test_a_negative_notice_is_refused(enable_plugin):
    with pytest.raises(InvalidSettings):
        enable_plugin("$name", min_notice_hours=-1)
''')


class CannotScaffold(Exception):
    """Why nothing was written, in one line."""


def name_problem(name: str, taken: Collection[str] = ()) -> str | None:
    if not NAME.fullmatch(name):
        return (
            f"{name!r} is not a plugin name: lowercase letters, digits and underscores, "
            "starting with a letter (e.g. min_notice)"
        )
    if name in taken:
        return f"{name!r} is one of Bookwell's own commands (`bookwell {name}`): choose another"
    return None


def write_plugin(parent: Path, name: str, taken: Collection[str] = ()) -> Path:
    """Write ``bookwell-<name>/`` under ``parent``; returns its path. Refuses a bad name, one
    of ``taken`` (the names of ``bookwell``'s own commands, which a plugin's commands would
    clash with) or an existing folder, having written nothing."""
    problem = name_problem(name, taken)
    if problem is not None:
        raise CannotScaffold(problem)
    root = parent / f"bookwell-{name}"
    if root.exists():
        raise CannotScaffold(f"{root} already exists: nothing was written")
    values = {
        "name": name,
        "package": f"bookwell_{name}",
        "distribution": f"bookwell-{name}",
        "title": name.replace("_", " ").capitalize(),
    }
    files = {
        "pyproject.toml": PYPROJECT.substitute(values),
        "README.md": README.substitute(values),
        f"src/bookwell_{name}/__init__.py": PLUGIN.substitute(values),
        "tests/conftest.py": CONFTEST,
        f"tests/test_{name}.py": TESTS.substitute(values),
    }
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root
