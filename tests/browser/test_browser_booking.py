"""A client books in a real browser, through the real server: in every installed theme and every
language, on a phone's screen, accepting the business's terms, then cancels through the link of
the confirmation e-mail; axe-core checks each page. And once with the keyboard alone, on a
desktop screen, under the pages' Content-Security-Policy.

The pages change with the themes: the steps are found by the addresses they lead to (core's
routes), the fields by their names (the form's contract), never by their wording, which changes
with the language."""

from __future__ import annotations

import re
from datetime import datetime, time
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db

# Before its import: the kit's asserts explain themselves as the tests' do.
pytest.register_assert_rewrite("browser_kit")
from browser_kit import DESKTOP, PHONE, bookwell, installed_themes, start_server, text_of  # noqa: E402

pytestmark = pytest.mark.browser
# The kit's fixtures (chromium, axe_script, open_walk): see browser_kit.py for why not a conftest.
pytest_plugins = ["browser_kit"]

# The languages a client walks through the pages in, asked for by the browser (Accept-Language).
LANGUAGES = ["en", "fr"]
THEMES = installed_themes()
TERMS = "# Terms\n\nBookings are **binding**; the cancellation policy says how to change one.\n"
TIMEZONE = "Europe/Paris"
OPEN_EVERY_DAY = {weekday: [(time(9), time(18))] for weekday in range(7)}
# Each business's service the walks book, by slug: known once `open_businesses` has run.
HAIRCUT: dict[str, int] = {}
# The consents the plugins ask for (and where each one's text is shown), ticked in every walk.
CONSENTS = {"terms": "terms/", "cancellation_policy": "cancellation_policy/"}
MANAGE_LINK = re.compile(r"https?://\S+/book/[a-z0-9-]+/manage/[A-Z0-9-]+\?token=[^\s>]+")


def slug_of(theme: str) -> str:
    """One business per theme, so that each walk sees its theme from the first page."""
    return re.sub(r"[^a-z0-9]+", "-", theme.lower()).strip("-")[:40] + "-shop"


def open_businesses(app, now) -> None:
    for theme in THEMES:
        with db.write_transaction(app) as session:
            tenant = create_tenant(
                session,
                slug_of(theme),
                name=f"Studio {theme.title()}",
                timezone=TIMEZONE,
                now=now,
                contact_email="hello@studio.example",
                phone="+33 1 23 45 67 89",
                address="12 rue de la Paix, 75002 Paris",
            )
            cut = add_service(
                session,
                tenant,
                "Haircut",
                description="Wash, cut and style.",
                duration_minutes=30,
                price_cents=4500,
                slot_step_minutes=30,
                min_notice_minutes=0,
                horizon_days=60,
            )
            add_service(session, tenant, "Colour", duration_minutes=90, price_cents=9000)
            add_provider(session, tenant, "Camille", [cut], OPEN_EVERY_DAY)
            add_provider(session, tenant, "Léo", [cut], OPEN_EVERY_DAY)
            tenant_id = tenant.id
            HAIRCUT[tenant.slug] = cut.id
        with app.app_context():
            plugin_changes.enable(app, tenant_id, "terms", {"text": TERMS}, now, actor="test")
            plugin_changes.enable(
                app, tenant_id, "cancellation_policy", {"cancel_limit_hours": 2}, now, actor="test"
            )
        # The public command, which checks that the theme is installed.
        bookwell("tenants", "set", slug_of(theme), "--theme", theme, instance=app.instance_path)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("booking"), open_businesses) as running:
        yield running


def go(page, selector: str, arrives: str) -> None:
    """Follow the first link ``selector`` finds, to an address matching ``arrives``."""
    link = page.locator(selector).first
    expect(link).to_be_visible()
    link.click()
    page.wait_for_url(re.compile(arrives))


def a_day_after_today(page, to_next_month) -> str:
    """The link to the first free day after today, on this month's calendar or the next's.
    Never today: its first free time could pass while the walk goes on, and be refused."""
    today = datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
    for _ in range(2):
        for href in page.locator('a[href*="/slots?"]').evaluate_all("a => a.map(l => l.href)"):
            day = parse_qs(urlsplit(href).query)["date"][0]
            if day > today:
                return f'a[href*="date={day}"]'
        months = page.locator('a[href*="/day?"][href*="month="]')
        to_next_month(f'a[href="{months.last.get_attribute("href")}"]')
    pytest.fail(f"no free day after {today} this month or the next: {page.url}")


def to_a_free_day(walk, server, slug: str) -> None:
    """From the service list to the times of the first day with room, by Camille."""
    page = walk.page
    page.goto(server.url(f"/book/{slug}/"))
    expect(page.locator("html")).to_have_attribute("lang", re.compile(f"^{walk.language}"))
    walk.step("services")
    go(page, f'a[href$="service={HAIRCUT[slug]}"]', r"[?&]service=\d+")
    walk.step("providers")
    go(page, 'a[href*="/day?"]:not([href*="provider=any"])', r"/day\?")
    walk.step("calendar")
    go(page, a_day_after_today(page, lambda link: go(page, link, r"month=")), r"/slots\?")
    walk.step("times")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("theme", THEMES)
def test_a_client_books_and_cancels_on_a_phone(server, open_walk, axe_script, theme, language):
    slug = slug_of(theme)
    walk = open_walk(viewport=PHONE, locale=language, axe=axe_script)
    page = walk.page
    client = f"ann.{slug}.{language}@example.com"

    to_a_free_day(walk, server, slug)
    go(page, 'a[href*="/details?"]', r"/details\?")
    walk.step("details")
    page.fill('input[name="name"]', "Ann Lee")
    page.fill('input[name="email"]', client)
    # The plugins' consent boxes, in every theme, unticked: consent is given, never assumed.
    consents = page.locator('input[name="consents"]')
    expect(consents).to_have_count(len(CONSENTS))
    for consent in consents.all():
        expect(consent).not_to_be_checked()

    # Without them: refused, each box marked and tied to its message, nothing typed lost.
    submit = page.locator('form:has(input[name="email"]) [type="submit"]')
    with page.expect_navigation():
        submit.click()
    assert "/details" in page.url
    expect(page.locator('input[name="email"]')).to_have_value(client)
    walk.step("details-refused", again=False)
    for consent in consents.all():
        value = consent.get_attribute("value")
        walk.require(
            "details-refused",
            "error-tied-to-field",
            consent.get_attribute("aria-invalid") == "true" and described(page, consent),
            "a refused consent box needs aria-invalid=true and aria-describedby naming its "
            "message (WCAG 3.3.1)",
            f'input[name="consents"][value="{value}"]',
        )

    consent_pages = [
        page.locator(f'a[href*="/{path}"]').first.get_attribute("href")
        for path in CONSENTS.values()
    ]
    for consent in consents.all():
        consent.check()
    submit.click()
    page.wait_for_url(re.compile(r"/booked/"))
    walk.step("confirmed")
    reference = re.search(r"/booked/([A-Z0-9-]+)", page.url).group(1)

    (mail,) = server.mail_to(client)
    links = MANAGE_LINK.findall(text_of(mail))
    assert links and reference in links[0], text_of(mail)
    page.goto(links[0])
    walk.step("manage")
    go(page, 'a[href*="step=cancel"]', r"step=cancel")
    walk.step("cancel")
    page.locator('form[action*="/cancel"] [type="submit"]').click()
    page.wait_for_url(re.compile(r"done=cancelled"))
    walk.step("cancelled")

    token = re.search(r"token=([^&]+)", links[0]).group(1)
    answer = page.request.get(
        server.url(f"/api/v1/tenants/{slug}/bookings/{reference}?token={token}")
    )
    assert answer.ok and answer.json()["status"] == "cancelled"

    for number, address in enumerate(consent_pages, 1):
        page.goto(server.url(address) if address.startswith("/") else address)
        walk.step(f"consent-page-{number}")
    walk.assert_accessible()


def described(page, field) -> bool:
    """Whether ``field`` names, in aria-describedby, an element of the page with some text."""
    names = (field.get_attribute("aria-describedby") or "").split()
    return bool(names) and all(
        page.evaluate("id => document.getElementById(id)?.textContent.trim() || ''", name)
        for name in names
    )


def tab_to(page, selector: str, presses: int = 80) -> None:
    """Press Tab until the focus is on what ``selector`` finds: what a keyboard user does."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement?.matches(s)", selector):
            return
    pytest.fail(f"{presses} presses of Tab never reached {selector} on {page.url}")


def press_on(page, selector: str, key: str, arrives: str | None = None) -> None:
    tab_to(page, selector)
    page.keyboard.press(key)
    if arrives is not None:
        page.wait_for_url(re.compile(arrives))


def test_a_client_books_with_the_keyboard_alone(server, open_walk):
    """Tab to move, Enter to follow and submit, Space to tick; on a desktop screen, with the
    Content-Security-Policy in force (no axe-core here: the walks above check the same pages)."""
    slug = slug_of("default")
    walk = open_walk(viewport=DESKTOP, locale=LANGUAGES[0])
    page = walk.page
    client = f"kim.{slug}@example.com"

    page.goto(server.url(f"/book/{slug}/"))
    walk.step("services", axe=False)
    press_on(page, f'a[href$="service={HAIRCUT[slug]}"]', "Enter", r"[?&]service=\d+")
    walk.step("providers", axe=False)
    press_on(page, 'a[href*="/day?"]', "Enter", r"/day\?")
    walk.step("calendar", axe=False)
    day = a_day_after_today(page, lambda link: press_on(page, link, "Enter", r"month="))
    press_on(page, day, "Enter", r"/slots\?")
    walk.step("times", axe=False)
    press_on(page, 'a[href*="/details?"]', "Enter", r"/details\?")
    walk.step("details", axe=False)
    tab_to(page, 'input[name="name"]')
    page.keyboard.type("Kim Park")
    tab_to(page, 'input[name="email"]')
    page.keyboard.type(client)
    for consent in CONSENTS:
        press_on(page, f'input[name="consents"][value="{consent}"]', "Space")
        expect(page.locator(f'input[name="consents"][value="{consent}"]')).to_be_checked()
    walk.step("details-filled", axe=False)
    press_on(page, 'form:has(input[name="email"]) [type="submit"]', "Enter", r"/booked/")
    walk.step("confirmed", axe=False)
    reference = re.search(r"/booked/([A-Z0-9-]+)", page.url).group(1)
    assert server.mail_to(client), "booked: its confirmation is on its way"

    # The confirmation page's own link to manage the booking, then cancel: still no mouse.
    press_on(page, f'a[href*="/manage/{reference}?"]', "Enter", r"/manage/")
    press_on(page, 'a[href*="step=cancel"]', "Enter", r"step=cancel")
    walk.step("cancel", axe=False)
    press_on(page, 'form[action*="/cancel"] [type="submit"]', "Enter", r"done=cancelled")
    walk.step("cancelled", axe=False)
    expect(page.locator("body")).to_contain_text(reference)
