"""Each theme on a phone: a client books in a real Chromium 360 pixels wide, through the real
server, and no page of the flow is wider than the screen (nothing to scroll sideways)."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image
from werkzeug.serving import make_server

from bookwell.core.booking import branding
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
# As root, and kept off the network: without these it reaches for outside hosts.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}


@pytest.fixture
def server(app):
    serving = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=serving.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{serving.server_port}"
    serving.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A launch that fails fails the test: never skipped.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def branded(app, tenant_id: int, theme: str) -> None:
    output = io.BytesIO()
    Image.new("RGB", (900, 300), (31, 92, 153)).save(output, "PNG")
    logo = branding.read_logo(output.getvalue())
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, tenant_id)
        tenant.theme = theme
        tenant.brand_colour = "#1f5c99"
        tenant.description = "A long description of the salon, which wraps on a small screen."
        tenant.address = "1 rue de la Paix, 75002 Paris"
        tenant.phone = "+33 1 23 45 67 89"
        tenant.contact_email = "a-rather-long-address-for-the-salon@example.com"
        tenant.logo, tenant.logo_type = logo.data, logo.content_type
        tenant.logo_width, tenant.logo_height = logo.width, logo.height
        tenant.logo_version = logo.version


def assert_fits(page, where: str) -> None:
    # A click that navigates may return while the next document is still empty.
    page.wait_for_load_state("domcontentloaded")
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], f"{where} is {overflow} pixels wide"


@pytest.mark.parametrize("theme", ["default", "minimal", "clinic"])
def test_a_client_books_on_a_phone_in_each_theme(app, business, server, browser, theme, tmp_path):
    branded(app, business.tenant_id, theme)
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{server}/book/salon/")
    assert page.locator(".brand-logo").is_visible()
    assert page.evaluate("document.querySelector('.brand-logo').naturalWidth") == 640
    assert_fits(page, "the services")
    page.click("text=Cut")
    assert_fits(page, "the providers")
    page.click("text=Ana")
    assert_fits(page, "the calendar")
    page.click("td.day a[href*='2027-03-02']")
    assert_fits(page, "the times")
    page.click("a.slot >> text=10:00")
    assert_fits(page, "the details")
    page.fill("#name", "Ann")
    page.fill("#email", "ann@example.com")
    page.click("button[type=submit]")
    page.wait_for_selector(".reference")
    assert_fits(page, "the confirmation")
    page.screenshot(path=str(tmp_path / f"{theme}-confirmed.png"), full_page=True)
    page.click("text=Manage or cancel this booking")
    page.wait_for_url("**/manage/**")
    assert_fits(page, "the manage page")
    # The theme's stylesheet and the brand's colours were applied, not just linked.
    button = page.locator("a.button:not(.button-secondary):not(.button-quiet)").first
    assert button.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(31, 92, 153)"
