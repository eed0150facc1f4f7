"""Bookwell's fixtures for plugin authors (app, tenant, client, clock, owner, second_business,
enable_plugin, ...) and a few of the front desk's own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bookwell.core.testing import STAFF_PASSWORD, api_login, page_login

pytest_plugins = ["bookwell.core.testing"]

RULES = "https://salon.example/house-rules"


def log_in(app, email, password=STAFF_PASSWORD, business="salon"):
    """The API's answer to a login, as a staff member's app would get it."""
    return api_login(app, email, password, business=business)


def log_in_on_the_page(app, email, password=STAFF_PASSWORD, business="salon"):
    """A browser's login on the staff login page: its answer, and the browser after it."""
    return page_login(app, email, password, business=business)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def bookwell_command(database_url, tmp_path):
    """Run ``bookwell ARGS...`` as an operator would, on the test's database; returns the
    finished process (``returncode``, ``stdout``, ``stderr``)."""
    executable = Path(sys.executable).with_name("bookwell")
    env = {**os.environ, "DATABASE_URL": database_url}

    def run(*args):
        return subprocess.run(
            [str(executable), "--instance", str(tmp_path / "instance"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run
