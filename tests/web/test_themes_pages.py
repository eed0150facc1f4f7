"""Every built-in theme draws every client page, a booking made through it, and the boxes and
notices that plugins add; each looks like itself (its layout and stylesheet), never inline."""

from __future__ import annotations

import json
import re

import pytest
from booking_pages import BOOK, csrf_of, details_url, form_key_of, link_to
from sqlalchemy import select

from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Tenant

THEMES = ("default", "minimal", "clinic")
# What only each theme's layout has: proof the page came from that theme's templates.
LAYOUT_MARK = {
    "default": '<body class="book">',
    "minimal": '<footer class="minimal-footer">',
    "clinic": '<aside class="clinic-aside"',
}
STYLESHEET = {
    "default": "/themes/default/static/booking.css",
    "minimal": "/themes/minimal/static/minimal.css",
    "clinic": "/themes/clinic/static/clinic.css",
}
TERMS = "# Salon terms\n\nPay on the day.\n"


def use_theme(app, tenant_id: int, theme: str, **fields) -> None:
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, tenant_id)
        tenant.theme = theme
        for name, value in fields.items():
            setattr(tenant, name, value)


def assert_themed(page, theme: str) -> None:
    assert page.status_code == 200, page.text[:500]
    text = page.text
    assert LAYOUT_MARK[theme] in text
    assert STYLESHEET[theme] in text
    assert re.search(r'href="/book/salon/brand\.css(\?v=[0-9a-f]+)?"', text)
    for other in set(THEMES) - {theme}:
        assert LAYOUT_MARK[other] not in text
    lowered = text.lower()
    assert "<style" not in lowered and " style=" not in lowered
    # Scripts only from a file (the theme's own, under the CSP's script-src 'self'), never inline.
    assert not re.search(r"<script(?![^>]*\bsrc=)", lowered)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text


def enable(app, business, clock, name: str, **settings) -> None:
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, name, settings, clock())


@pytest.mark.parametrize("theme", THEMES)
def test_each_theme_draws_every_client_page_of_a_booking(app, client, business, theme):
    use_theme(app, business.tenant_id, theme, address="1 rue de la Paix\n75002 Paris")
    services = client.get(f"{BOOK}/")
    assert_themed(services, theme)
    assert "Cut" in services.text
    providers = client.get(link_to(services, f"service={business.service_id}"))
    assert_themed(providers, theme)
    assert "Ana" in providers.text and "Ben" in providers.text
    day = client.get(link_to(providers, "/day", f"provider={business.provider_id}"))
    assert_themed(day, theme)
    assert "March 2027" in day.text
    slots = client.get(link_to(day, "/slots", "date=2027-03-02"))
    assert_themed(slots, theme)
    details_link = link_to(slots, "/details", "T10:00")
    details = client.get(details_link)
    assert_themed(details, theme)
    sent = client.post(
        details_link,
        data={
            "csrf_token": csrf_of(details),
            "form_key": form_key_of(details),
            "name": "Ann",
            "email": "ann@example.com",
        },
    )
    assert sent.status_code == 303
    confirmed = client.get(sent.headers["Location"])
    assert_themed(confirmed, theme)
    with db.fresh_session(app) as session:
        [booking] = session.scalars(select(Booking)).all()
    assert booking.reference in confirmed.text and booking.client_name == "Ann"
    manage = client.get(link_to(confirmed, "/manage/"))
    assert_themed(manage, theme)
    assert booking.reference in manage.text and "Change the time" in manage.text
    cancel_step = client.get(link_to(manage, "step=cancel"))
    assert_themed(cancel_step, theme)
    assert "Yes, cancel it" in cancel_step.text


@pytest.mark.parametrize("theme", THEMES)
def test_a_refused_details_form_is_drawn_in_the_theme_with_the_errors(app, client, business, theme):
    use_theme(app, business.tenant_id, theme)
    url = details_url(business, provider=business.provider_id)
    form = client.get(url)
    answer = client.post(
        url,
        data={"csrf_token": csrf_of(form), "form_key": form_key_of(form), "name": "", "email": "x"},
    )
    assert answer.status_code == 422
    assert LAYOUT_MARK[theme] in answer.text
    assert "Please enter your name." in answer.text
    assert "Please enter a valid e-mail address." in answer.text


@pytest.mark.parametrize("theme", THEMES)
def test_plugins_boxes_and_notices_show_in_every_theme(app, client, business, clock, theme):
    use_theme(app, business.tenant_id, theme)
    enable(app, business, clock, "terms", text=TERMS)
    enable(app, business, clock, "cancellation_policy")
    url = details_url(business, provider=business.provider_id)
    details = client.get(url)
    assert_themed(details, theme)
    assert "I accept the Terms &amp; Conditions" in details.text
    assert "I accept the cancellation policy (cancel online up to 24 hours before)" in details.text
    assert 'value="terms"' in details.text and 'value="cancellation_policy"' in details.text
    fields = {"csrf_token": csrf_of(details), "form_key": form_key_of(details), "name": "Ann"}
    fields["email"] = "ann@example.com"
    refused = client.post(url, data=fields)
    assert refused.status_code == 422 and LAYOUT_MARK[theme] in refused.text
    assert refused.text.count('class="field-error"') >= 2  # one beside each consent box
    accepted = client.post(url, data={**fields, "consents": ["terms", "cancellation_policy"]})
    assert accepted.status_code == 303, accepted.text[:500]
    confirmed = client.get(accepted.headers["Location"])
    assert_themed(confirmed, theme)
    # The terms' own page is a client page: drawn in the theme.
    terms = client.get(f"{BOOK}/terms/1")
    assert_themed(terms, theme)
    assert "Pay on the day." in terms.text
    # Within a day of the start, the policy closes online changes: the manage page says so.
    clock.advance(hours=2)
    manage = client.get(link_to(confirmed, "/manage/"))
    assert_themed(manage, theme)
    assert 'class="notice closed-reschedule"' in manage.text
    assert "Change the time" not in manage.text and "Cancel the booking" not in manage.text


@pytest.mark.parametrize("theme", ["minimal", "clinic"])
def test_a_theme_serves_its_stylesheet_and_the_default_one_beneath_it(client, theme):
    own = client.get(STYLESHEET[theme])
    assert own.status_code == 200 and own.mimetype == "text/css"
    assert f".theme-{theme}" in own.text and "var(--accent" in own.text
    assert "@media (max-width: 400px)" in own.text  # a phone's layout of its own
    beneath = client.get(f"/themes/{theme}/static/booking.css")
    assert beneath.status_code == 200
    assert beneath.data == client.get(STYLESHEET["default"]).data


def test_the_themes_look_different(client):
    """Not only colours: each re-lays the page (columns, rows, type) in its own stylesheet."""
    minimal = client.get(STYLESHEET["minimal"]).text
    clinic = client.get(STYLESHEET["clinic"]).text
    assert "serif" in minimal and "border-radius: 0" in minimal and "max-width: 34rem" in minimal
    assert "grid-template-columns: minmax(0, 1fr) 18rem" in clinic  # details beside the steps
    assert "font: 18px" in clinic and "min-height: 3rem" in clinic  # big type, big targets


def test_themes_list_names_the_three_built_in_themes(bookwell_cli):
    answer = bookwell_cli("themes", "list", "--json")
    assert answer.exit_code == 0, answer.output
    listed = {theme["name"]: theme for theme in json.loads(answer.output)}
    for name, title in (("default", "Default"), ("minimal", "Minimal"), ("clinic", "Clinic")):
        assert listed[name] == {"name": name, "title": title, "source": "built-in"}


def test_the_example_theme_package_is_listed_with_its_distribution(bookwell_cli, app, client):
    """examples/bookwell-theme-paper, installed as a user would (.ci/run installs examples/*)."""
    listed = json.loads(bookwell_cli("themes", "list", "--json").output)
    assert {"name": "paper", "title": "Paper", "source": "bookwell-theme-paper"} in listed
    assert client.get("/themes/paper/static/paper.css").status_code == 200


def test_a_tenant_may_pick_the_example_theme(bookwell_cli, app, client, business):
    answer = bookwell_cli("tenants", "set", "salon", "--theme", "paper")
    assert answer.exit_code == 0, answer.output
    page = client.get(f"{BOOK}/")
    assert page.status_code == 200 and "theme-paper" in page.text
