"""In a real browser (headless Chromium, driven by Playwright), against the app served over
HTTPS on loopback (HIPAA mode switches ``ssl`` on), on the test's database and clock: platform
support is refused the business's data, the owner logs in with a one-time code and grants
support access for an hour on the plugin's page, support is let in, the clock passes the
grant's end, and support is refused again; the owner, logged off automatically meanwhile,
finds the grant among the past ones.

Support tries both doors: the business's agenda in its own signed-in browser (the staff pages
core opens to support, read-only), and the API with its key."""

from __future__ import annotations

import json
import re
import tempfile
import threading
from pathlib import Path

import hipaa_kit
import pytest
from hipaa_kit import STEP, SUPPORT_EMAIL, add_support_user, code_at
from playwright.sync_api import expect
from werkzeug.serving import make_server

from bookwell.core.testing import STAFF_PASSWORD, self_signed_certificate

# The kit's fixtures: the app on HTTPS, HIPAA mode on with the owner enrolled.
app = hipaa_kit.app
hipaa = hipaa_kit.hipaa

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(tempfile.gettempdir()) / "bookwell-hipaa-screens"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BOOKINGS = "/api/v1/tenants/salon/bookings?from=2027-03-02&to=2027-03-02"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)",
    ),
]


@pytest.fixture
def served(app, tmp_path):
    """The app behind a real HTTPS server on a free loopback port: its base URL."""
    cert, key = self_signed_certificate(tmp_path / "tls", "127.0.0.1")
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=(str(cert), str(key)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


def chromium_of(playwright, profile: Path):
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        args=FLAGS,
        ignore_https_errors=True,  # the test's own self-signed certificate
    )


@pytest.fixture
def browser(playwright, tmp_path):
    chromium = chromium_of(playwright, tmp_path / "chromium-profile")
    yield chromium
    chromium.close()


@pytest.fixture
def support_browser(playwright, tmp_path):
    """Support's own browser: its cookies are not the owner's."""
    chromium = chromium_of(playwright, tmp_path / "support-profile")
    yield chromium
    chromium.close()


def owner_logs_in(page, base: str, email: str, secret: str, clock) -> None:
    page.goto(f"{base}/admin/salon/login")
    page.fill("#email", email)
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#answer")).to_be_visible()  # two-step login: every staff role
    page.fill("#answer", code_at(secret, clock))
    page.click("text=Continue")
    page.wait_for_url(f"{base}/admin/salon/")
    clock.advance(seconds=STEP)


def support_reads(page, base: str) -> tuple[int, object]:
    answer = page.goto(f"{base}{BOOKINGS}")
    return answer.status, json.loads(page.inner_text("body"))


def support_logs_in(page, base: str) -> None:
    page.goto(f"{base}/support/login")
    page.fill("#email", SUPPORT_EMAIL)
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/support/")


def support_opens_the_agenda(page, base: str) -> int:
    """Support's browser opens the salon's agenda of Ann's day: the HTTP status it got."""
    return page.goto(f"{base}/admin/salon/?date=2027-03-02").status


def test_support_is_refused_let_in_by_the_owner_for_an_hour_then_refused_again(
    app, served, browser, support_browser, owner, hipaa, client, clock, bookwell_cli, audit_trail
):
    client.book("2027-03-02T10:00:00+01:00")
    key = add_support_user(app, clock, bookwell_cli)
    support = browser.new_page()
    support.set_extra_http_headers({"Authorization": f"Bearer {key}"})
    status, body = support_reads(support, served)
    assert status == 403 and body["error"]["code"] == "support_access_not_granted"
    # Support's own browser, signed in as a person, not with the key.
    support_pages = support_browser.new_page()
    support_logs_in(support_pages, served)
    assert support_opens_the_agenda(support_pages, served) == 403
    assert "Ann" not in support_pages.content()
    expect(support_pages.locator("body")).to_contain_text("only while its owner grants access")
    support_pages.screenshot(path=SHOTS / "support_refused.png", full_page=True)

    page = browser.new_page()
    blocked = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security" in message.text else None
        ),
    )
    owner_logs_in(page, served, owner.email, hipaa["owner_secret"], clock)
    page.click("text=HIPAA: support access")
    expect(page.locator("#no-live-grant")).to_be_visible()
    page.fill("#hours", "1")
    page.fill("#reason", "Ticket 4711: a booking shows twice in the calendar")
    page.screenshot(path=SHOTS / "grant.png", full_page=True)
    page.click("#grant")
    expect(page.locator("#granted")).to_be_visible()
    expect(page.locator(".live-grant")).to_have_count(1)
    expect(page.locator(".live-grant")).to_contain_text("Ticket 4711")
    page.screenshot(path=SHOTS / "granted.png", full_page=True)

    status, body = support_reads(support, served)
    assert status == 200 and [booking["client"]["name"] for booking in body] == ["Ann"]
    assert support_opens_the_agenda(support_pages, served) == 200
    expect(support_pages.locator("body")).to_contain_text("Ann")
    # Plugins' staff pages are not support's: no menu entry leads there.
    expect(support_pages.locator("text=Emergency access")).to_have_count(0)
    support_pages.screenshot(path=SHOTS / "support_let_in.png", full_page=True)

    clock.advance(hours=1)
    status, body = support_reads(support, served)
    assert status == 403 and body["error"]["code"] == "support_access_not_granted"
    support_logs_in(support_pages, served)  # its session, idle an hour, ended too
    assert support_opens_the_agenda(support_pages, served) == 403
    actions = [entry.action for entry in audit_trail() if entry.action.startswith("support.")]
    assert actions == [
        "support.access_refused",  # the API, then the page
        "support.access_refused",
        "support.access",
        "support.access",
        "support.access_refused",
        "support.access_refused",
    ]

    # The owner's screen logged itself off meanwhile (15 minutes idle); back in, the grant is
    # listed as over.
    page.reload()
    expect(page.locator("#password")).to_be_visible()
    owner_logs_in(page, served, owner.email, hipaa["owner_secret"], clock)
    page.goto(f"{served}/admin/salon/hipaa/support-access")
    expect(page.locator("#no-live-grant")).to_be_visible()
    expect(page.locator(".past-grant")).to_have_count(1)
    expect(page.locator(".past-grant")).to_contain_text(re.compile(r"\(expired\)"))
    page.screenshot(path=SHOTS / "expired.png", full_page=True)
    assert blocked == []  # nothing of the pages was refused by their Content-Security-Policy
