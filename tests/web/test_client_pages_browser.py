"""The booking pages' script in a real browser (Debian's Chromium, under the app's CSP): times
shown also in the visitor's own zone when it differs, and focus moved to the error summary
after a refused form. Without the script the pages work the same (the other tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from booking_pages import BOOK, book_through_pages, details_url
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(app) -> Iterator[str]:
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def zones(server):
    """A fresh browser per zone (a context's zone is fixed when it is made)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        opened = []

        def page_in(zone: str):
            context = launched.new_context(timezone_id=zone, locale="en-GB")
            opened.append(context)
            page = context.new_page()
            page.problems = []
            page.on("pageerror", lambda error: page.problems.append(str(error)))
            # A refused script or style (the CSP) or a script error; a 422 page is no problem.
            page.on(
                "console",
                lambda message: (
                    message.type == "error"
                    and "Failed to load resource" not in message.text
                    and page.problems.append(message.text)
                ),
            )
            return page

        try:
            yield page_in
        finally:
            for context in opened:
                context.close()
            launched.close()


def test_times_are_also_shown_in_the_visitors_own_zone(app, client, business, server, zones):
    confirmation, _ = book_through_pages(client, business)
    url = server + confirmation.request.path + "?" + confirmation.request.query_string.decode()
    in_new_york = zones("America/New_York")
    in_new_york.goto(url)
    when = in_new_york.locator(".summary-time")
    assert "Tuesday 2 March 2027, 10:00" in when.inner_text()
    local = when.locator(".local-time")
    assert local.count() == 1
    assert "04:00" in local.inner_text() and "your time" in local.inner_text()
    slots = f"{server}{BOOK}/slots?service={business.service_id}&provider=any&date=2027-03-03"
    in_new_york.goto(slots)
    first = in_new_york.locator("a.slot").first
    assert "09:00" in first.inner_text() and "03:00" in first.inner_text()
    assert in_new_york.problems == []  # no CSP refusal, no script error

    in_paris = zones("Europe/Paris")
    in_paris.goto(url)
    assert in_paris.locator(".local-time").count() == 0  # the same zone: nothing added
    assert in_paris.problems == []


def test_a_refused_form_moves_focus_to_its_error_summary(business, server, zones):
    page = zones("Europe/Paris")
    page.goto(server + details_url(business))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.fill("#email", "not-an-address")
    page.click("button[type=submit]")
    page.wait_for_selector("#error-summary")
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    page.click("#error-summary a[href='#name']")
    assert page.evaluate("document.activeElement.id") == "name"
    assert page.problems == []


def test_the_flow_fits_a_360_pixel_wide_phone(app, client, business, server, zones):
    """No page of the flow scrolls sideways on a 360 px screen, and its controls are at least
    44 px tall for a thumb (WCAG 2.5.5's target size, AAA, but what phone users expect)."""
    confirmation, manage = book_through_pages(client, business)
    choice = f"service={business.service_id}&provider=any"
    paths = [
        f"{BOOK}/",
        f"{BOOK}/?service={business.service_id}",
        f"{BOOK}/day?{choice}",
        f"{BOOK}/slots?{choice}&date=2027-03-03",
        details_url(business, start="2027-03-03T10:00:00+01:00"),
        f"{confirmation.request.path}?{confirmation.request.query_string.decode()}",
        manage,
    ]
    page = zones("Europe/Paris")
    page.set_viewport_size({"width": 360, "height": 740})
    for path in paths:
        page.goto(server + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, (path, width)
        measured = page.evaluate(
            """() => [...document.querySelectorAll(
                    'main a.button, main button, main a.slot, main a.choice, main .day-free a, '
                    + 'main .steps a, main input')]
                .filter(element => element.type !== 'hidden' && element.type !== 'checkbox')
                .map(element => [element.textContent.trim() || element.id,
                                 element.getBoundingClientRect().height])"""
        )
        assert measured, path  # every page of the flow has something to press
        small = [(name, height) for name, height in measured if height < 43.5]
        assert small == [], (path, small)
    assert page.problems == []
