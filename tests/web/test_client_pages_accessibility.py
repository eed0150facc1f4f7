"""The client pages against WCAG 2.1 AA where a rendered page shows it (issue 16, point 4):
errors tied to their fields and summed up at the top, the title saying a submit was refused,
day links named as dates, today marked, and on every page a skip link, landmarks, a favicon
and a description. Contrast is checked from the stylesheet in test_client_pages_contrast.py."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

from booking_pages import (
    BOOK,
    book_through_pages,
    details_url,
    link_to,
    page_tree,
    post_details,
)
from sqlalchemy import select

from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Tenant

ACCOUNT = f"{BOOK}/account"


def nothing_booked(app) -> bool:
    with db.fresh_session(app) as session:
        return session.scalar(select(Booking)) is None


def title_of(page) -> str:
    return page_tree(page).find("title").text()


def assert_tied(tree, field_id: str, message: str):
    """``field_id`` is marked invalid and described by the error text beside it, and the
    summary at the top links to it with the same words."""
    field = tree.by_id(field_id)
    assert field.attrs.get("aria-invalid") == "true"
    described = field.attrs["aria-describedby"].split()
    assert f"{field_id}-error" in described
    error = tree.by_id(f"{field_id}-error")
    assert message in error.text()
    # Beside its field: the error's element follows the field's within the same parent.
    siblings = [child for child in field.parent.children if not isinstance(child, str)]
    assert siblings.index(field) < siblings.index(error)
    summary = tree.by_id("error-summary")
    assert summary.attrs["role"] == "alert"
    [link] = [link for link in summary.find_all("a") if link.attrs["href"] == f"#{field_id}"]
    assert message in link.text()


def test_a_refused_details_form_ties_each_error_to_its_field(app, client, business):
    page = post_details(client, details_url(business), name="", email="not-an-address")
    assert page.status_code == 422
    tree = page_tree(page)
    assert title_of(page).startswith("Error: Your details")
    assert_tied(tree, "name", "Please enter your name.")
    assert_tied(tree, "email", "Please enter a valid e-mail address.")
    phone = tree.by_id("phone")
    assert "aria-invalid" not in phone.attrs and "aria-describedby" not in phone.attrs
    summary = tree.by_id("error-summary")
    assert summary.attrs.get("tabindex") == "-1"  # the script moves focus there
    # The summary comes first in the main content, before the form.
    main = tree.find("main")
    order = [element.attrs.get("id") for element in main.iter() if element.attrs.get("id")]
    assert order.index("error-summary") < order.index("name")
    assert nothing_booked(app)


def test_the_details_form_shown_afresh_has_no_error_marks(client, business):
    page = client.get(details_url(business))
    tree = page_tree(page)
    assert not title_of(page).startswith("Error")
    assert tree.find_all(id="error-summary") == []
    assert tree.find_all(aria_invalid="true") == []


def test_a_missing_consent_is_tied_to_its_box(app, client, business, clock):
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "terms", {"text": "Be kind."}, clock())
    page = post_details(client, details_url(business))
    assert page.status_code == 422
    tree = page_tree(page)
    box = tree.find("input", name="consents")
    assert_tied(tree, box.attrs["id"], "Please tick this box to continue.")
    assert title_of(page).startswith("Error: ")
    assert nothing_booked(app)


def test_a_refused_login_and_sign_up_are_announced(app, client, business):
    with db.write_transaction(app) as session:
        session.get(Tenant, business.tenant_id).client_accounts = True
    login = client.get(f"{ACCOUNT}/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login.text)[1]
    refused = client.post(f"{ACCOUNT}/login", data={"csrf_token": token, "email": "nope"})
    assert refused.status_code == 422
    assert title_of(refused).startswith("Error: Log in")
    assert_tied(page_tree(refused), "email", "Invalid email address.")
    register = client.get(f"{ACCOUNT}/register")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', register.text)[1]
    refused = client.post(f"{ACCOUNT}/register", data={"csrf_token": token, "email": "a@b.c"})
    assert refused.status_code == 422
    tree = page_tree(refused)
    assert_tied(tree, "name", "Please enter your name.")
    password = tree.by_id("password")
    assert password.attrs.get("aria-invalid") == "true"
    summary_targets = [link.attrs["href"] for link in tree.by_id("error-summary").find_all("a")]
    assert summary_targets == ["#name", "#password"]


# --- the calendar ------------------------------------------------------------------------------


def test_day_links_are_named_as_dates_said_aloud(client, business):
    tree = page_tree(client.get(f"{BOOK}/day?service={business.service_id}&provider=any"))
    days = tree.find("table", class_="calendar").find_all("a")
    assert len(days) == 31  # every day of March 2027 has free times
    for link in days:
        day = date.fromisoformat(parse_qs(urlsplit(link.attrs["href"]).query)["date"][0])
        assert link.accessible_name() == f"{day:%A} {day.day} {day:%B}"
        assert link.text() in link.accessible_name()  # what is seen is part of what is heard
        assert not re.search(r"\d{4}-\d{2}-\d{2}", link.accessible_name())


# --- every page ------------------------------------------------------------------------------


def client_pages(app, client, business):
    """Every client page, as a client reaches it."""
    with db.write_transaction(app) as session:
        session.get(Tenant, business.tenant_id).client_accounts = True
    confirmation, manage = book_through_pages(client, business)
    services = client.get(f"{BOOK}/")
    providers = client.get(link_to(services, f"service={business.service_id}"))
    day = client.get(link_to(providers, "/day", "provider=any"))
    slots = client.get(link_to(day, "/slots", "date=2027-03-03"))
    details = client.get(link_to(slots, "/details"))
    return {
        "services": services,
        "providers": providers,
        "day": day,
        "slots": slots,
        "details": details,
        "confirmation": confirmation,
        "manage": client.get(manage),
        "cancel": client.get(manage + "&step=cancel"),
        "reschedule": client.get(manage + "&step=reschedule"),
        "not found": client.get(f"{BOOK}/nowhere"),
        "login": client.get(f"{ACCOUNT}/login"),
        "register": client.get(f"{ACCOUNT}/register"),
        "forgot": client.get(f"{ACCOUNT}/forgot"),
    }


def test_every_client_page_has_its_landmarks_skip_link_favicon_and_description(
    app, client, business
):
    for name, page in client_pages(app, client, business).items():
        tree = page_tree(page)
        assert tree.find("html").attrs.get("lang"), name
        icons = tree.find_all("link", rel="icon")
        assert icons and client.get(icons[0].attrs["href"]).status_code == 200, name
        [description] = tree.find_all("meta", name="description")
        assert "Salon" in description.attrs["content"], name
        body = tree.find("body")
        focusable = [element for element in body.iter() if element.tag in ("a", "button", "input")]
        skip = focusable[0]
        assert (skip.attrs.get("href"), skip.text()) == ("#main", "Skip to main content"), name
        [main] = tree.find_all("main")
        assert main.attrs["id"] == "main", name
        assert len(tree.find_all("header")) == 1 and len(tree.find_all("footer")) == 1, name
        assert len(tree.find_all("h1")) == 1, name
        ids = [element.attrs["id"] for element in tree.iter() if "id" in element.attrs]
        assert len(ids) == len(set(ids)), (name, ids)
        for described in [
            element for element in tree.iter() if "aria-describedby" in element.attrs
        ]:
            for target in described.attrs["aria-describedby"].split():
                assert target in ids, (name, target)
