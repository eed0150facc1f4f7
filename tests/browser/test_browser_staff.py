"""The owner, in a real browser through the real server: logs in, is sent to set up the
authenticator app (the business requires it of owners), sets it up with a code computed from the
key the page shows, logs in again with a code, then switches a plugin on in the marketplace,
changes its settings and sees them kept; axe-core checks each page. The walk is made in English
and in French (the browser's language), each in a business of its own: the French one checks
every page's title is translated."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from datetime import time as dt_time
from zoneinfo import ZoneInfo

import pyotp
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
from browser_kit import DESKTOP, bookwell, start_server  # noqa: E402

pytestmark = pytest.mark.browser
# The kit's fixtures (chromium, axe_script, open_walk): see browser_kit.py for why not a conftest.
pytest_plugins = ["browser_kit"]

# One business per language the owner walks in: the walk switches a plugin on for good.
SLUGS = {"en": "studio", "fr": "atelier"}
OWNERS = {language: f"owner@{slug}.example" for language, slug in SLUGS.items()}
PASSWORD = "a long passphrase for the browser"  # noqa: S105 (a test account of a test database)
TIMEZONE = "Europe/Paris"
STAFF = ("Camille", "Léo")
HOURS = {weekday: [(dt_time(8), dt_time(20))] for weekday in range(7)}
# Off until the owner switches it on in the marketplace.
PLUGIN, SETTING, DEFAULT, CHOSEN = "reminders", "hours_before", "24", "48"
# What the marketplace says once the settings are saved, in the walk's language.
SAVED = {"en": "Settings saved for", "fr": "Réglages enregistrés pour"}


def open_studios(app, now) -> None:
    for language, slug in SLUGS.items():
        open_studio(app, now, slug, OWNERS[language])


def open_studio(app, now, slug: str, owner: str) -> None:
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, slug, name="Studio Nord", timezone=TIMEZONE, now=now)
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
        providers = [add_provider(session, tenant, name, [service], HOURS) for name in STAFF]
        tenant_id, service_id = tenant.id, service.id
        provider_ids = [provider.id for provider in providers]
    # Today's agenda with something in it, booked as if earlier today (for the screenshots and
    # for axe-core, which checks the time grid the owner lands on).
    midnight = datetime.combine(
        datetime.now(ZoneInfo(TIMEZONE)).date(), dt_time(0), ZoneInfo(TIMEZONE)
    )
    with app.app_context():
        for provider_id, hour, client in zip(
            provider_ids, (10, 14), ("Ann Lee", "Kim Park"), strict=True
        ):
            create_booking(
                app,
                tenant_id=tenant_id,
                service_id=service_id,
                provider_id=provider_id,
                start=midnight.replace(hour=hour),
                client=ClientDetails(client, f"{client.split()[0].lower()}@example.com"),
                now=midnight,
            )
    with app.app_context():
        create_user(
            app, tenant_id=tenant_id, email=owner, role=Role.OWNER, password=PASSWORD, now=now
        )
        # Owners must use an authenticator app (the plugin's default required_roles).
        plugin_changes.enable(app, tenant_id, "two_factor", {}, now, actor="test")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("staff"), open_studios) as running:
        yield running


def submit(page, form: str) -> None:
    """Send the form ``form`` finds and wait for the answer's page (not the one left)."""
    with page.expect_navigation():
        page.locator(f'{form} [type="submit"]').click()


def log_in(walk, server, slug: str) -> None:
    page = walk.page
    page.goto(server.url(f"/admin/{slug}/login"))
    page.fill('input[name="email"]', OWNERS[walk.language])
    page.fill('input[name="password"]', PASSWORD)
    submit(page, 'form:has(input[name="password"])')


@pytest.mark.parametrize("language", sorted(SLUGS))
def test_the_owner_sets_up_two_step_login_and_a_plugin(server, open_walk, axe_script, language):
    walk = open_walk(viewport=DESKTOP, locale=language, axe=axe_script)
    page = walk.page
    slug, owner = SLUGS[language], OWNERS[language]

    page.goto(server.url(f"/admin/{slug}/login"))
    expect(page.locator("html")).to_have_attribute("lang", language)
    walk.step("login")
    log_in(walk, server, slug)
    # An owner without an app is let in only to set one up.
    page.wait_for_url(re.compile(f"/admin/{slug}/two_factor/"))
    walk.step("enrol")
    secret = page.inner_text("#totp-secret").strip()
    totp = pyotp.TOTP(secret)
    confirmed_at = time.time()
    page.fill('input[name="code"]', totp.at(confirmed_at))
    submit(page, 'form:has(input[name="code"])')
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    walk.step("recovery-codes", again=False)  # the answer to the confirming form
    assert server.mail_to(owner), "the owner is told by e-mail that two-step login is on"

    page.click("#log-in-again")
    page.wait_for_url(re.compile(f"/admin/{slug}/login"))
    log_in(walk, server, slug)
    answer = page.locator('input[name="answer"]')
    expect(answer).to_be_visible()
    walk.step("login-code")
    # The code that confirmed is spent; the next step's is within the drift the plugin allows,
    # so the test need not wait 30 seconds for a fresh one.
    answer.fill(totp.at(confirmed_at + totp.interval))
    submit(page, 'form:has(input[name="answer"])')
    page.wait_for_url(re.compile(f"/admin/{slug}/?$"))
    walk.step("day")  # the owner's home: today's agenda
    page.goto(server.url(f"/admin/{slug}/week"))
    walk.step("week")

    page.goto(server.url(f"/admin/{slug}/marketplace"))
    expect(page.locator(f'#plugin-{PLUGIN} [name="setting-{SETTING}"]')).to_have_value(DEFAULT)
    walk.step("marketplace")
    submit(page, f'#plugin-{PLUGIN} form[action$="/switch"]')
    switch = page.locator(f'#plugin-{PLUGIN} form[action$="/switch"] input[name="enabled"]')
    expect(switch).to_have_value("off")  # on now: its button switches it off
    page.locator(f'#plugin-{PLUGIN} [name="setting-{SETTING}"]').fill(CHOSEN)
    submit(page, f'#plugin-{PLUGIN} form[action$="/settings"]')
    expect(page.locator("main .notice").first).to_contain_text(SAVED[language])
    walk.step("settings-saved", full_page=False)  # the long page was seen whole above

    page.goto(server.url(f"/admin/{slug}/marketplace"))
    expect(page.locator(f'#plugin-{PLUGIN} [name="setting-{SETTING}"]')).to_have_value(CHOSEN)
    listing = json.loads(
        bookwell("plugins", "list", "--tenant", slug, "--json", instance=server.instance)
    )
    (entry,) = [entry for entry in listing if entry["name"] == PLUGIN]
    assert entry["enabled"] and entry["settings"][SETTING] == int(CHOSEN)
    walk.step("marketplace-after", axe=False, full_page=False)
    walk.detail("marketplace-card", page.locator(f"#plugin-{PLUGIN}"))
    walk.assert_accessible()
