"""Core's arrangement: the public names stay, the old module paths still import (the very same
modules, with a warning naming the new place), and the command runs as a module."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from bookwell.core.moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_gives_the_moved_module_with_a_warning(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=MOVED[old].replace(".", r"\.")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])
    assert module.__spec__.name == MOVED[old]  # not renamed by being imported under its old name


def test_a_submodule_of_a_moved_package_is_not_loaded_twice():
    sys.modules.pop("bookwell.core.api", None)
    sys.modules.pop("bookwell.core.api.schemas", None)
    with pytest.warns(DeprecationWarning):
        from bookwell.core.api import schemas as old
    from bookwell.core.web.api import schemas as new

    assert old is new


def test_what_the_plugin_guide_and_examples_import_still_imports():
    from bookwell.core import create_app
    from bookwell.core.pluginhost import host_of
    from bookwell.core.testing import (
        InvalidSettings,
        PluginConflict,
        PluginRequired,
        create_user,
        open_business,
    )

    assert all(callable(name) for name in (create_app, host_of, create_user, open_business))
    assert issubclass(PluginConflict, Exception) and issubclass(PluginRequired, Exception)
    assert issubclass(InvalidSettings, Exception)


def test_the_command_runs_as_a_module():
    answer = subprocess.run(
        [sys.executable, "-m", "bookwell.core.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 0, answer.stderr
    assert "Usage:" in answer.stdout and "serve" in answer.stdout


def test_a_job_queued_under_its_old_path_still_finds_its_function():
    """RQ imports a job's function by the dotted path it was queued with: jobs queued before
    an upgrade name ``bookwell.core.jobs``."""
    from rq.utils import import_attribute

    from bookwell.core.app import jobs

    sys.modules.pop("bookwell.core.jobs", None)
    with pytest.warns(DeprecationWarning):
        for name in ("run_scheduled", "deliver_mail"):
            assert import_attribute(f"bookwell.core.jobs.{name}") is getattr(jobs, name)
