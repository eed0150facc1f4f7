"""The browser tests' kit: the real server, a real Chromium, axe-core in every page, screenshots.
The test modules load it as a plugin (``pytest_plugins``) for its fixtures: a conftest.py here
would take the module name ``conftest`` from tests/conftest.py, which other tests import from.

* ``start_server`` runs what an operator runs: ``bookwell init`` on a fresh instance folder
  (SQLite), a setup through core's functions (what has no command: services, providers, hours),
  then ``bookwell serve`` as a subprocess on a free loopback port, with mail written to the
  instance's outbox, so that a test reads the mail a client would get. One per test module.
* ``chromium`` is Debian's ``/usr/bin/chromium`` driven by Playwright, one per module. It is
  never downloaded, and a browser that cannot start fails the test: a skipped browser test
  would hide that the pages were never tried.
* ``Walk`` takes each step's screenshot (``tests/artifacts/``, ignored by git) and runs
  axe-core on the page: a serious or critical violation fails the test, after the whole walk,
  so that one run lists them all; the others are printed. With them come the checks axe-core
  cannot make: on a phone, no sideways scrolling; in another language than English, a
  translated page; and those a test asks for (``require``), such as a refused field tied to
  its message.
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from fetch_axe import AXE_JS, HOW_TO_GET_IT
from flask import Flask

from bookwell.core.app.factory import create_app
from bookwell.core.foundation.config import ENVIRONMENT_KEYS
from bookwell.core.storage import db

REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS = REPOSITORY / "tests" / "artifacts"
BOOKWELL = Path(sys.executable).parent / "bookwell"
CHROMIUM = "/usr/bin/chromium"
# As root, and reaching for nothing beyond loopback (see /work/shared/TESTING.md).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
# What axe-core reports as failing the test; "moderate" and "minor" are printed.
BLOCKING_IMPACTS = ("serious", "critical")
SERVER_START_SECONDS = 60
MAIL_WAIT_SECONDS = 30
# The language the templates are written in; every other one is checked to be translated.
SOURCE_LANGUAGE = "en"
# Passwords set up for a walk need not cost a real hash's second (the hash records its cost).
CHEAP_HASHING = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


# --- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environment(**extra: str) -> dict[str, str]:
    """The test process's environment without Bookwell's settings: the server under test reads
    its instance folder's, and ours (a PostgreSQL of the test run, Redis) must not leak in."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ENVIRONMENT_KEYS and not name.startswith("BOOKWELL_")
    }
    environment.update(extra)
    return environment


def bookwell(*arguments: str, instance: Path | None = None) -> str:
    """Run the ``bookwell`` command as an operator would; its output, or the test fails."""
    command = [str(BOOKWELL)]
    if instance is not None:
        command += ["--instance", str(instance)]
    command += list(arguments)
    done = subprocess.run(
        command, capture_output=True, text=True, env=clean_environment(), timeout=120
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def installed_themes() -> list[str]:
    """The theme names ``bookwell themes list --json`` gives: a theme installed later is
    walked through with no change to the tests."""
    return [theme["name"] for theme in json.loads(bookwell("themes", "list", "--json"))]


@dataclass
class Server:
    base_url: str
    instance: Path
    log: Path
    process: subprocess.Popen

    def url(self, path: str) -> str:
        return self.base_url + path

    def outbox(self) -> list[EmailMessage]:
        folder = self.instance / "outbox"
        messages = []
        for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
            with path.open("rb") as file:
                messages.append(email.message_from_binary_file(file, policy=email.policy.default))
        return messages

    def mail_to(self, address: str, count: int = 1) -> list[EmailMessage]:
        """The first ``count`` messages to ``address``, waiting for the delivery thread."""
        deadline = time.monotonic() + MAIL_WAIT_SECONDS
        while True:
            found = [m for m in self.outbox() if address in str(m.get("To", ""))]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{len(found)} message(s) to {address} in {self.instance / 'outbox'} after "
                    f"{MAIL_WAIT_SECONDS} s, {count} expected; server log:\n{self.log_text()}"
                )
            time.sleep(0.2)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None, f"no plain text part in {message['Subject']!r}"
    return body.get_content()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def start_server(folder: Path, prepare: Callable[[Flask, datetime], None]) -> Iterator[Server]:
    """``bookwell init`` a fresh instance in ``folder``, ``prepare(app, now)`` its data, and
    serve it with ``bookwell serve`` (one worker) until the block ends."""
    instance = folder / "instance"
    bookwell("init", instance=instance)
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "DATABASE_URL": f"sqlite:///{instance / 'bookwell.sqlite3'}",
            "REDIS_URL": None,
            "SMTP_URL": None,
            # No delivery thread in the test process: mail is the server's to send.
            "MAIL_DELIVERY": "manual",
            "STORAGE": None,
            "PASSWORD_HASHING": CHEAP_HASHING,
        }
    )
    prepare(app, datetime.now(UTC))
    db.engine_of(app).dispose()  # the server has the database to itself from here

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    environment = clean_environment(
        BOOKWELL_MAIL_DELIVERY="background",
        BOOKWELL_BASE_URL=base_url,
        # Scheduled work (reminders, clean-ups) has nothing to do in a walk of a few minutes.
        BOOKWELL_TICK_SECONDS="0",
    )
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(BOOKWELL), "--instance", str(instance), "serve", "--port", str(port)]
            + ["--workers", "1"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,  # its own process group: gunicorn's worker stops with it
        )
    server = Server(base_url, instance, log, process)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not _answers(base_url + "/healthz"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"bookwell serve did not answer on {base_url}:\n{server.log_text()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# --- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium, one per test module (each test gets fresh contexts). Not one per
    session: Playwright's sync API runs one instance per thread, and the plugins' browser tests
    (plugins/*/tests/*_browser.py) start their own, which would fail while ours lives on."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (bash .ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def axe_script() -> Path:
    if not AXE_JS.is_file():
        pytest.fail(HOW_TO_GET_IT)
    return AXE_JS


def artifacts_of(request: pytest.FixtureRequest) -> Path:
    """``tests/artifacts/<module>/<test, with its parameters>/``, emptied."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-")
    folder = ARTIFACTS / Path(request.node.fspath).stem / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


@dataclass
class Violation:
    step: str
    url: str
    rule: str
    impact: str
    help: str
    targets: list[str]
    detail: str  # axe's explanation for the first element, e.g. the contrast ratio it measured

    def __str__(self) -> str:
        where = "; ".join(self.targets[:5]) + (" ..." if len(self.targets) > 5 else "")
        return (
            f"[{self.impact}] {self.step} ({self.url}): {self.rule}: {self.help} at {where}"
            f" ({len(self.targets)} element(s)). {self.detail}"
        )


@dataclass
class Walk:
    """One person's way through the pages: each ``step`` saves a screenshot and checks the
    page, with axe-core unless the walk has none, and with the checks of ours it cannot make."""

    page: object
    folder: Path
    axe_script: Path | None
    language: str
    steps: int = 0
    violations: list[Violation] = field(default_factory=list)

    def step(
        self, name: str, *, axe: bool = True, full_page: bool = True, again: bool = True
    ) -> None:
        """``again=False`` for a page that a GET of its address would not give again (the
        answer to a form)."""
        page = self.page
        page.wait_for_load_state("load")
        self.steps += 1
        page.screenshot(path=self.folder / f"{self.steps:02d}-{name}.png", full_page=full_page)
        if axe and self.axe_script is not None:
            self.violations += self.check(name)
        if again and self.language != SOURCE_LANGUAGE:
            self.require_translated(name)
        if page.viewport_size["width"] <= PHONE["width"]:
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            self.require(
                name,
                "fits-the-phone",
                overflow <= 0,
                f"the page is {overflow} px wider than the {PHONE['width']} px screen: it "
                "scrolls sideways (WCAG 1.4.10)",
                "html",
            )

    def require_translated(self, name: str) -> None:
        """The page's title differs from the same address's in the source language: a page
        left in English under another ``<html lang>`` misleads screen readers (WCAG 3.1.1)."""
        page = self.page
        answer = page.request.get(page.url, headers={"Accept-Language": SOURCE_LANGUAGE})
        found = re.search(r"<title>(.*?)</title>", answer.text(), re.S)
        source_title = " ".join(html.unescape(found[1]).split()) if found else None
        self.require(
            name,
            "page-translated",
            answer.ok and source_title not in (None, " ".join(page.title().split())),
            f"the title {page.title()!r} is the same in {SOURCE_LANGUAGE!r}: not translated",
            "title",
        )

    def require(self, step: str, rule: str, holds: bool, problem: str, target: str) -> None:
        """A check of our own that axe-core cannot make (it sees a page, not what a refused
        submit should have changed): reported, and failing the test, with axe's findings."""
        if not holds:
            self.violations.append(
                Violation(
                    step, self.page.url, rule, "serious", problem, [target], "(Bookwell's check)"
                )
            )

    def detail(self, name: str, locator) -> None:
        """A screenshot of one part of the page (a long page's card, say)."""
        self.steps += 1
        locator.screenshot(path=self.folder / f"{self.steps:02d}-{name}.png")

    def check(self, name: str) -> list[Violation]:
        page = self.page
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.add_script_tag(path=str(self.axe_script))
        found = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        )
        return [
            Violation(
                step=name,
                url=page.url,
                rule=item["id"],
                impact=item.get("impact") or "unknown",
                help=item["help"],
                targets=[" ".join(map(str, node["target"])) for node in item["nodes"]],
                detail=" ".join((item["nodes"][0].get("failureSummary") or "").split()),
            )
            for item in found
        ]

    def assert_accessible(self) -> None:
        blocking = [v for v in self.violations if v.impact in BLOCKING_IMPACTS]
        for violation in self.violations:
            if violation.impact not in BLOCKING_IMPACTS:
                print(f"axe-core (not blocking): {violation}")
        assert not blocking, "serious or critical problems (axe-core's and ours):\n" + "\n".join(
            map(str, blocking)
        )


@pytest.fixture
def open_walk(chromium, request):
    """``open_walk(viewport=PHONE, locale="en", axe=path)``: a page in a fresh browser context
    (its own cookies), and its Walk. With axe-core the context bypasses the pages'
    Content-Security-Policy, which would refuse the injected script; without it, the policy
    holds and anything it refuses fails the test."""
    contexts = []
    refused: list[str] = []
    folder = artifacts_of(request)

    def open_(*, viewport=PHONE, locale: str = "en", axe: Path | None = None) -> Walk:
        context = chromium.new_context(
            viewport=viewport,
            locale=locale,
            bypass_csp=axe is not None,
            timezone_id="America/New_York",  # not the businesses' zone, as many clients' isn't
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                refused.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
        return Walk(page, folder, axe, locale)

    yield open_
    for context in contexts:
        context.close()
    assert refused == [], "the Content-Security-Policy refused:\n" + "\n".join(refused)
