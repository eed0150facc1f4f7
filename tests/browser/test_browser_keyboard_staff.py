"""The staff pages with the keyboard alone, in a real browser through the real server: what
Lighthouse and axe-core do not see. The tab order of the staff home starts with the skip link and
follows the page's visual order (on a phone too, where the menu is a button); the phone's menu
opens and closes by keyboard; the owner books for a client, moves the booking and cancels it
pressing keys only; every focused control shows a ring of 3:1 that nothing clips; the time grids
are tables a screen reader can walk (caption, headers with their scope); and axe-core finds no
serious or critical problem on any staff page, on a desktop screen or a phone's.

The pages are found by their addresses and the controls by their names, never by their wording,
which changes with the language."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from bookwell.core.access.users import create_user
from bookwell.core.booking.lifecycle import ClientDetails, create_booking
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Role

# Before its import: the kit's asserts explain themselves as the tests' do.
pytest.register_assert_rewrite("browser_kit")
from browser_kit import DESKTOP, PHONE, start_server  # noqa: E402

pytestmark = pytest.mark.browser
# The kit's fixtures (chromium, axe_script, open_walk): see browser_kit.py for why not a conftest.
pytest_plugins = ["browser_kit"]

SLUG = "atelier"
OWNER = "owner@atelier.example"
PASSWORD = "a long passphrase for the keyboard"  # noqa: S105 (a test account of a test database)
TIMEZONE = "Europe/Paris"
HOURS = {weekday: [(dt_time(8), dt_time(20))] for weekday in range(7)}
CLIENT = "kim.keys@example.com"
# More Tab presses than any staff page has stops before the one looked for, and in all.
MOST_TABS = 80
MOST_STOPS = 400
# The focus ring WCAG 2.4.7 and 1.4.11 ask for: at least this thick, and this contrast with
# what surrounds it.
RING_WIDTH_PX = 2
RING_CONTRAST = 3.0
# Staff pages beside the agendas: each checked by axe-core and its focus stops' rings.
STAFF_PAGES = [
    "",
    "week",
    "month",
    "clients",
    "bookings/new",
    "providers",
    "services",
    "staff",
    "sessions",
    "audit",
    "business",
    "business/brand",
    "marketplace",
    "cancellation_policy/",
]


def open_atelier(app, now) -> None:
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, SLUG, name="Atelier Clavier", timezone=TIMEZONE, now=now)
        service = add_service(
            session,
            tenant,
            "Consultation",
            duration_minutes=45,
            price_cents=6000,
            min_notice_minutes=0,
            horizon_days=60,
            slot_step_minutes=15,
        )
        add_service(session, tenant, "Colour", duration_minutes=90, price_cents=9000)
        providers = [add_provider(session, tenant, name, [service], HOURS) for name in ("Ana",)]
        tenant_id, service_id, provider_id = tenant.id, service.id, providers[0].id
    midnight = datetime.combine(
        datetime.now(ZoneInfo(TIMEZONE)).date(), dt_time(0), ZoneInfo(TIMEZONE)
    )
    with app.app_context():
        # Today's agenda with a booking in it: the grid's blocks are focus stops too.
        create_booking(
            app,
            tenant_id=tenant_id,
            service_id=service_id,
            provider_id=provider_id,
            start=midnight.replace(hour=10),
            client=ClientDetails("Ann Lee", "ann@example.com"),
            now=midnight,
        )
        create_user(
            app, tenant_id=tenant_id, email=OWNER, role=Role.OWNER, password=PASSWORD, now=now
        )
        plugin_changes.enable(app, tenant_id, "cancellation_policy", {}, now, actor="test")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("keyboard-staff"), open_atelier) as running:
        yield running


def focused(page) -> dict:
    """What has the focus: its tag, address or name, and where it is drawn."""
    return page.evaluate(
        """() => { const e = document.activeElement; const box = e.getBoundingClientRect();
        return {tag: e.tagName.toLowerCase(), href: e.getAttribute('href') || '',
                name: e.getAttribute('name') || '', id: e.id,
                x: box.left, y: box.top + window.scrollY, width: box.width,
                height: box.height}; }"""
    )


def tab_to(page, selector: str, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the focus is on what ``selector`` finds: the test fails if
    no key press gets there, as a keyboard user would be stuck."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(MOST_TABS):
        page.keyboard.press(key)
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{MOST_TABS} presses of {key} never reached {selector} on {page.url}")


def log_in_by_keyboard(page, server) -> None:
    page.goto(server.url(f"/admin/{SLUG}/login"))
    tab_to(page, 'input[name="email"]')
    page.keyboard.type(OWNER)
    tab_to(page, 'input[name="password"]')
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"/admin/{SLUG}/?$"))


# The ring of the focused element, measured as a sighted keyboard user sees it: its outline's
# style, width and contrast with the nearest opaque background behind it, and any ancestor whose
# overflow would cut part of it away.
RING_JS = """() => {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  const rgb = text => (text.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map(v => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
  let behind = e.parentElement, background = [255, 255, 255];
  while (behind) {
    const found = rgb(getComputedStyle(behind).backgroundColor);
    if (found.length === 3 || (found.length === 4 && found[3] === 1)) {
      background = found.slice(0, 3); break; }
    behind = behind.parentElement;
  }
  const ring = rgb(style.outlineColor).slice(0, 3);
  const [light, dark] = [luminance(ring), luminance(background)].sort((a, b) => b - a);
  const width = parseFloat(style.outlineWidth) || 0;
  const reach = width + (parseFloat(style.outlineOffset) || 0);
  const box = e.getBoundingClientRect();
  const ringBox = {left: box.left - reach, right: box.right + reach,
                   top: box.top - reach, bottom: box.bottom + reach};
  let clippedBy = null;
  for (let up = e.parentElement; up && up !== document.body; up = up.parentElement) {
    const s = getComputedStyle(up);
    if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
    const r = up.getBoundingClientRect();
    if (ringBox.left < r.left - 0.5 || ringBox.right > r.right + 0.5 ||
        ringBox.top < r.top - 0.5 || ringBox.bottom > r.bottom + 0.5) {
      clippedBy = up.className || up.tagName; break; }
  }
  return {what: e.outerHTML.slice(0, 120), style: style.outlineStyle, width,
          contrast: (light + 0.05) / (dark + 0.05), clippedBy};
}"""


def check_rings(walk, step: str, stops: int = MOST_STOPS) -> int:
    """Tab through the page, freshly loaded, and require each stop's ring; returns the stops."""
    page = walk.page
    page.keyboard.press("Tab")
    first = focused(page)
    for count in range(stops):
        ring = page.evaluate(RING_JS)
        walk.require(
            step,
            "focus-visible",
            ring["style"] not in ("none", "hidden")
            and ring["width"] >= RING_WIDTH_PX
            and ring["contrast"] >= RING_CONTRAST
            and ring["clippedBy"] is None,
            f"the focus ring of {ring['what']} is {ring['style']} {ring['width']} px at "
            f"{ring['contrast']:.2f}:1, clipped by {ring['clippedBy']} (WCAG 2.4.7, 1.4.11)",
            ring["what"],
        )
        page.keyboard.press("Tab")
        now = focused(page)
        if now == first or now["tag"] == "body":
            return count + 1  # round the page: no trap on the way
    walk.require(step, "no-keyboard-trap", False, "Tab never came back round", "body")
    return stops


def test_the_staff_home_starts_with_the_skip_link_and_follows_the_visual_order(
    server, open_walk, axe_script
):
    for viewport in (DESKTOP, PHONE):
        walk = open_walk(viewport=viewport, axe=axe_script)
        page = walk.page
        log_in_by_keyboard(page, server)
        walk.step("home")
        page.keyboard.press("Tab")
        skip = page.locator(".skip-link")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()  # shown when focused, not left off the screen
        walk.step("skip-link-focused", full_page=False, axe=False)
        # The bar's stops, in the order Tab gives them, up to the main content.
        header = []
        while True:
            page.keyboard.press("Tab")
            if page.evaluate("() => !!document.activeElement.closest('main')"):
                break
            header.append(focused(page))
            assert len(header) < MOST_TABS, "Tab never leaves the staff bar"
        assert header[0]["href"].rstrip("/").endswith(f"/admin/{SLUG}"), header
        assert header[-1]["tag"] == "button", f"Log out last in the bar: {header}"
        if viewport == PHONE:
            # Closed menu: its button, not its links, between the business's name and Log out.
            assert [stop["tag"] for stop in header] == ["a", "summary", "button"], header
        # Reading order: each stop right of the one before on its line (boxes side by side),
        # or on a line below.
        for before, after in zip(header, header[1:], strict=False):
            same_line = (
                after["y"] < before["y"] + before["height"]
                and before["y"] < after["y"] + after["height"]
            )
            assert (same_line and after["x"] > before["x"]) or (
                not same_line and after["y"] > before["y"]
            ), f"{after} is focused after {before} but drawn before it ({viewport})"
        # The skip link takes the focus to the content, past the bar (from a fresh page: the
        # browser starts Tab where the focus last was).
        page.reload()
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.locator("main#main")).to_be_focused()
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('main')")
        walk.assert_accessible()


def test_the_phone_menu_opens_and_closes_by_keyboard(server, open_walk, axe_script):
    walk = open_walk(viewport=PHONE, axe=axe_script)
    page = walk.page
    log_in_by_keyboard(page, server)
    menu = page.locator("details.staff-menu")
    week = menu.locator(f'nav a[href$="/admin/{SLUG}/week"]')
    expect(menu).not_to_have_attribute("open", "")
    expect(week).to_be_hidden()
    tab_to(page, "details.staff-menu > summary")
    walk.step("menu-focused", full_page=False, axe=False)
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    expect(week).to_be_visible()
    walk.step("menu-open", full_page=False)
    # Its links follow its button, and Tab goes through them to the rest of the bar.
    page.keyboard.press("Tab")
    expect(menu.locator("nav a").first).to_be_focused()
    ring = page.evaluate(RING_JS)
    assert ring["clippedBy"] is None and ring["contrast"] >= RING_CONTRAST, ring
    tab_to(page, "details.staff-menu > summary", backwards=True)
    page.keyboard.press("Space")
    expect(menu).not_to_have_attribute("open", "")
    expect(week).to_be_hidden()
    walk.step("menu-closed", full_page=False, axe=False)
    # Opened again, a link is followed with Enter.
    page.keyboard.press("Space")
    tab_to(page, f'nav a[href$="/admin/{SLUG}/week"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/admin/{SLUG}/week")
    walk.step("week-from-the-menu")
    walk.assert_accessible()


def test_the_owner_books_moves_and_cancels_with_the_keyboard_alone(server, open_walk, axe_script):
    walk = open_walk(viewport=DESKTOP, axe=axe_script)
    page = walk.page
    log_in_by_keyboard(page, server)

    tab_to(page, f'nav a[href$="/admin/{SLUG}/bookings/new"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    walk.step("new-booking")
    # The service by arrow keys; a day three days on typed into the date field, segment by
    # segment, in the browser's (English) order; then the free times of that day.
    services = page.locator('select[name="service"]')
    tab_to(page, 'select[name="service"]')
    expect(services.locator("option:checked")).to_have_text(re.compile("^Colour"))
    page.keyboard.press("ArrowDown")  # the next by name: the one Ana gives
    expect(services.locator("option:checked")).to_have_text(re.compile("^Consultation"))
    day = datetime.now(ZoneInfo(TIMEZONE)).date() + timedelta(days=3)
    tab_to(page, "#pick-day")
    page.keyboard.type(f"{day:%m%d%Y}")
    expect(page.locator("#pick-day")).to_have_value(day.isoformat())
    tab_to(page, 'form[method="get"] [type="submit"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert f"day={day.isoformat()}" in page.url
    walk.step("free-times")

    # A time: into the radio group, and the arrow keys to the next one.
    tab_to(page, 'input[name="slot"]')
    page.keyboard.press("ArrowDown")
    chosen = page.locator('input[name="slot"]:checked')
    expect(chosen).to_have_count(1)
    slot = chosen.get_attribute("value")
    tab_to(page, 'input[name="name"]')
    page.keyboard.type("Kim Keys")
    tab_to(page, 'input[name="email"]')
    page.keyboard.type(CLIENT)
    # The plugin's consent (cancellation_policy), given by the client and ticked with Space.
    consents = page.locator('input[name="consents"]')
    expect(consents).to_have_count(1)
    tab_to(page, 'input[name="consents"]')
    page.keyboard.press("Space")
    expect(consents).to_be_checked()
    walk.step("details-filled", axe=False)
    tab_to(page, 'form[method="post"] button[type="submit"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"/admin/{SLUG}/bookings/[A-Z0-9-]+$"))
    reference = page.url.rsplit("/", 1)[1]
    walk.step("booked", again=False)
    assert slot, "a time was chosen"

    # Moved: another free day of the calendar, then its first time.
    # The calendar shows the booked day's month: the next day if it is in it, else the one before
    # (two days from today, still bookable).
    following = day + timedelta(days=1)
    other_day = following if following.month == day.month else day - timedelta(days=1)
    tab_to(page, f'#reschedule a[href*="{other_day.isoformat()}"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    walk.step("move-times")
    tab_to(page, '#reschedule button[name="slot"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    walk.step("moved", again=False)
    when = page.locator("dl.details dd").nth(1)
    expect(when).to_contain_text(f"{other_day.day} {other_day:%B %Y}")  # CLDR: no leading zero

    # Cancelled, with the reason the form asks for.
    tab_to(page, 'textarea[name="reason"], input[name="reason"]')
    page.keyboard.type("The client called to cancel")
    tab_to(page, 'form[action$="/cancel"] button[type="submit"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    walk.step("cancelled", again=False)
    assert status_of(server, reference) == "cancelled"
    walk.assert_accessible()


def status_of(server, reference: str) -> str:
    """The booking's status in the server's database (the SQLite file of its instance)."""
    with sqlite3.connect(server.instance / "bookwell.sqlite3") as database:
        (status,) = database.execute(
            "SELECT status FROM bookings WHERE reference = ?", (reference,)
        ).fetchone()
    return status


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_staff_page_passes_axe_and_shows_its_focus(server, open_walk, axe_script, viewport):
    walk = open_walk(viewport=viewport, axe=axe_script)
    page = walk.page
    page.goto(server.url(f"/admin/{SLUG}/login"))
    walk.step("login")
    check_rings(walk, "login")
    log_in_by_keyboard(page, server)
    today = datetime.now(ZoneInfo(TIMEZONE)).date()
    addresses = [server.url(f"/admin/{SLUG}/{path}") for path in STAFF_PAGES]
    # One of each listed thing (a client, a booking, a provider, a service, a staff member),
    # reached from its list.
    for listing, pattern in [
        ("clients", r"/clients/[^/?]+@"),
        ("", r"/bookings/[A-Z0-9-]+$"),
        ("providers", r"/providers/\d+$"),
        ("services", r"/services/\d+$"),
        ("staff", r"/staff/\d+$"),
    ]:
        page.goto(server.url(f"/admin/{SLUG}/{listing}"))
        links = page.locator("main a[href]").evaluate_all("a => a.map(l => l.href)")
        found = [link for link in links if re.search(pattern, link)]
        assert found, f"no link matching {pattern} on /admin/{SLUG}/{listing}"
        addresses.append(found[0])
    for address in addresses:
        page.goto(address)
        step = re.sub(r"[^a-z0-9]+", "-", address.split(f"/admin/{SLUG}", 1)[1]).strip("-")
        walk.step(step or "home")
        check_rings(walk, step or "home")
    # The time grids: tables with a caption and a scope on every header cell.
    for address in (f"/admin/{SLUG}/?date={today}", f"/admin/{SLUG}/week"):
        page.goto(server.url(address))
        grids = page.locator("table.time-grid")
        expect(grids.first).to_be_attached()
        for grid in grids.all():
            assert grid.locator("caption").inner_text().strip(), address
            headers = grid.locator("th")
            assert headers.count() > 1
            scopes = set(headers.evaluate_all("cells => cells.map(c => c.getAttribute('scope'))"))
            assert scopes == {"col", "row"}, f"{address}: header scopes {scopes}"
            assert grid.locator("tbody tr").first.locator("th[scope=row]").count() == 1
    walk.assert_accessible()
