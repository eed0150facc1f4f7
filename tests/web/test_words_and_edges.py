"""What a first-time user reads: statuses in words, a button to manage a booking, wording for
clients, plugin titles that end in "s", a front page, a favicon, and a calendar month past the
booking horizon that says why instead of "not found"."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from booking_pages import BOOK, book_through_pages, link_to
from conftest import add_staff_and_a_rival, csrf_token_of, log_in_staff

from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Service
from bookwell.hooks import Manifest, Setting


def test_clients_and_staff_read_statuses_as_words(app, client, business, clock):
    _, manage = book_through_pages(client, business)
    page = client.get(manage)
    assert '<dd class="status">Confirmed</dd>' in page.text
    with db.write_transaction(app) as session:
        for booking in session.query(Booking):
            booking.status = "no-show"
    assert '<dd class="status">No-show</dd>' in client.get(manage).text
    add_staff_and_a_rival(app, business, clock(), ("owner",))
    staff = log_in_staff(app, "owner@example.com")
    reference = manage.split("/manage/")[1].split("?")[0]
    details = staff.get(f"/admin/salon/bookings/{reference}")
    assert "<dd>No-show</dd>" in details.text
    agenda = staff.get("/admin/salon/?date=2027-03-02")
    assert '<span class="tag">No-show</span>' in agenda.text
    assert ">no-show<" not in agenda.text and ">no-show<" not in details.text


def test_the_confirmation_offers_a_button_not_a_long_address(client, business):
    page, manage = book_through_pages(client, business)
    button = re.search(
        r'<a class="button" href="([^"]+)">Manage or cancel this booking</a>', page.text
    )
    assert button is not None
    assert f">{manage}<" not in page.text.replace("&amp;", "&")  # the address is not printed


def test_the_calendar_speaks_to_clients(client, business):
    page = client.get(f"{BOOK}/day?service={business.service_id}&provider=any")
    assert "are links" not in page.text
    assert "Pick a highlighted day to see its free times." in page.text


def test_a_month_past_the_horizon_says_how_far_ahead_bookings_open(app, client, business):
    with db.write_transaction(app) as session:
        session.get(Service, business.service_id).horizon_days = 45  # until 15 April 2027
    url = f"{BOOK}/day?service={business.service_id}&provider=any"
    april = client.get(f"{url}&month=2027-04")
    assert april.status_code == 200 and "month=2027-05" not in april.text  # no "Next" then
    beyond = client.get(f"{url}&month=2027-05")
    assert beyond.status_code == 200
    assert "Bookings open up to 45 days ahead (until 15 April 2027); pick an earlier month." in (
        beyond.text
    )
    assert "/slots" not in beyond.text
    back = client.get(link_to(beyond, "month=2027-04"))
    assert back.status_code == 200 and "/slots" in back.text
    assert client.get(f"{url}&month=9999-12").status_code == 404  # nonsense stays nonsense


class Reminders:
    MANIFEST = Manifest(
        "s_reminders",
        "Client reminders",
        "Reminds.",
        "1",
        "tests",
        "tests",
        (Setting("hours", "int", 24, "Hours before", min=1, max=72),),
    )


def test_a_plugin_title_ending_in_s_reads_well(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[Reminders])
    add_staff_and_a_rival(app, business, clock(), ("owner",))
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "s_reminders", {}, clock())
    owner = log_in_staff(app, "owner@example.com")
    market = owner.get("/admin/salon/marketplace")
    saved = owner.post(
        "/admin/salon/marketplace/settings",
        data={"csrf_token": csrf_token_of(market), "plugin": "s_reminders", "setting-hours": "12"},
    )
    assert saved.status_code == 302
    shown = owner.get("/admin/salon/marketplace").text
    assert "Settings saved for Client reminders." in shown
    assert "s's" not in shown and "s&#39;s" not in shown


def test_the_front_page_says_what_this_is_and_where_staff_log_in(client, business):
    page = client.get("/")
    assert page.status_code == 200
    assert "Bookwell" in page.text and "staff login" in page.text
    go = client.get("/staff?business=salon")
    assert go.status_code == 302 and go.headers["Location"].endswith("/admin/salon/login")
    assert client.get(go.headers["Location"]).status_code == 200
    assert client.get("/staff?business=..%2Fapi").status_code == 422


def test_a_missing_page_links_where_it_says(client):
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert "the link below" in page.text and '<a href="/">' in page.text


def test_every_page_has_a_favicon(client, business):
    for path in ("/", f"{BOOK}/", "/admin/salon/login", "/no/such/page"):
        assert 'rel="icon" href="/static/favicon.svg"' in client.get(path).text, path
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    legacy = client.get("/favicon.ico")
    assert legacy.status_code == 301 and legacy.headers["Location"].endswith("/favicon.svg")


def test_a_cancelled_booking_confirmation_sends_to_the_manage_page(app, client, business):
    page, manage = book_through_pages(client, business)
    with db.write_transaction(app) as session:
        for booking in session.query(Booking):
            booking.status = "cancelled"
            booking.cancelled_at = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
    token = manage.split("token=")[1]
    reference = manage.split("/manage/")[1].split("?")[0]
    again = client.get(f"{BOOK}/booked/{reference}?token={token}")
    assert again.status_code == 302 and "/manage/" in again.headers["Location"]
    assert "Cancelled" in client.get(again.headers["Location"]).text
