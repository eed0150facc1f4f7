"""In a real browser (headless Chromium, driven by Playwright): a staff member sets up an
authenticator app on the staff pages, with a code computed from the secret the page shows,
logs out, and logs in with the password and a fresh code. The app runs in a real HTTP server
on loopback, on the test's database and clock (so the next code is one clock step away, not
30 seconds of waiting)."""

from __future__ import annotations

import re
import tempfile
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from two_factor_kit import STEP, code_at, encodes
from werkzeug.serving import make_server

from bookwell.core.testing import STAFF_PASSWORD

CHROMIUM = "/usr/bin/chromium"
# Where the screenshots go, to look at what a person sees (kept after the run).
SHOTS = Path(tempfile.gettempdir()) / "bookwell-two-factor-screens"
# As root, and without reaching for anything outside loopback (see /work/shared/TESTING.md).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)",
    ),
]


@pytest.fixture
def served(app):
    """The app behind a real HTTP server on a free loopback port: its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=FLAGS
        )
        yield chromium
        chromium.close()


def log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/salon/login")
    page.fill("#email", email)
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")


def test_a_staff_member_enrols_in_a_browser_and_logs_in_with_a_code(
    served, browser, staff_member, enable_plugin, clock, outbox
):
    enable_plugin("two_factor")
    page = browser.new_page()
    blocked = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security" in message.text else None
        ),
    )

    log_in(page, served, staff_member.email)
    page.click("text=Two-step login")
    # A click that navigates returns before the next page has loaded: expect() waits for it.
    expect(page.locator("#qr-code svg")).to_be_visible()  # drawn on the server, inline
    secret = page.inner_text("#totp-secret").strip()
    assert len(secret) == 32
    # The QR code an app would scan holds that very secret, for this account at this business.
    uri = f"otpauth://totp/Salon:staff%40example.com?secret={secret}&issuer=Salon"
    assert encodes(page.inner_html("#qr-code"), uri)
    page.screenshot(path=SHOTS / "enrol.png", full_page=True)

    page.fill("#code", code_at(secret, clock))
    page.click("text=Turn on two-step login")
    expect(page.locator("#two-factor-on")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.screenshot(path=SHOTS / "recovery_codes.png", full_page=True)
    assert outbox(kind="two_factor.enrolled")

    page.click("#log-in-again")
    page.wait_for_url(f"{served}/admin/salon/login")
    clock.advance(seconds=STEP)  # the code that confirmed is spent; the next step's is fresh
    log_in(page, served, staff_member.email)
    expect(page.locator("label[for=answer]")).to_have_text(re.compile(r"^6-digit code"))
    page.fill("#answer", code_at(secret, clock))
    page.screenshot(path=SHOTS / "login_step.png", full_page=True)
    page.click("text=Continue")
    page.wait_for_url(f"{served}/admin/salon/")
    expect(page.locator("text=Log out")).to_be_visible()
    page.screenshot(path=SHOTS / "logged_in.png", full_page=True)
    assert blocked == []  # nothing of the pages was refused by their Content-Security-Policy


def test_the_same_code_twice_in_a_browser_is_refused(
    served, browser, staff_member, enable_plugin, clock
):
    enable_plugin("two_factor")
    page = browser.new_page()
    log_in(page, served, staff_member.email)
    page.goto(f"{served}/admin/salon/two_factor/")
    secret = page.inner_text("#totp-secret").strip()
    page.fill("#code", code_at(secret, clock))
    page.click("text=Turn on two-step login")
    page.click("#log-in-again")
    page.wait_for_url(f"{served}/admin/salon/login")
    log_in(page, served, staff_member.email)
    page.fill("#answer", code_at(secret, clock))  # the code that just confirmed the set-up
    page.click("text=Continue")
    expect(page.locator("[role=alert]")).to_have_text(re.compile(r"^That code is not right"))
    expect(page.locator("#answer")).to_be_visible()  # asked again
