"""The front desk (tests/packages/bookwell-front-desk), a third-party plugin package written from
the plugin guide alone, passes its own tests: run as its author runs them, in a pytest of their
own with the kit Bookwell ships, against the installed package (CI pip-installs it). On SQLite,
or on PostgreSQL when ``BOOKWELL_TEST_POSTGRES`` is set: the environment is passed through."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "packages" / "bookwell-front-desk"


def test_the_package_is_installed_with_its_data():
    spec = importlib.util.find_spec("bookwell_front_desk")
    assert spec is not None, f"pip install {PACKAGE} first, as .ci/run does"
    installed = Path(spec.origin).parent
    assert (installed / "templates" / "front_desk" / "desk.html").is_file()
    assert (installed / "migrations" / "env.py").is_file()
    assert list((installed / "migrations" / "versions").glob("front_desk_0001_*.py"))


def test_its_own_tests_pass():
    environment = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PACKAGE / "tests")],
        cwd=PACKAGE,  # its own pyproject.toml is its pytest configuration, not ours
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary, summary
    assert not any(word in summary for word in ("failed", "error", "skipped")), summary
