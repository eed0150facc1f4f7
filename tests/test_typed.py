"""The plugin SDK is typed: ``bookwell.hooks`` ships ``py.typed`` and passes ``mypy --strict``,
so that an author's mypy checks their hooks against it (``.ci/run`` checks the installed copy
too)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


def test_the_sdk_ships_its_py_typed_marker():
    assert (REPO / "hooks" / "py.typed").is_file()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["bookwell.hooks"]


def test_the_sdk_passes_mypy_strict(tmp_path):
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    # The folder is hooks/ but the package bookwell.hooks: check it under that name, as its
    # users import it.
    (tmp_path / "bookwell").mkdir()
    (tmp_path / "bookwell" / "hooks").symlink_to(REPO / "hooks", target_is_directory=True)
    options = ["--strict", "--explicit-package-bases", "--cache-dir", str(tmp_path / "cache")]
    checked = subprocess.run(
        [mypy, *options, "-p", "bookwell.hooks"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
