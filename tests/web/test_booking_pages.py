"""The client's booking pages: the whole path without JavaScript, refusals beside their cause,
the manage page, embedding, brand colours and the strict page rules (no inline code)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from booking_pages import (
    BOOK,
    book_through_pages,
    csrf_of,
    details_url,
    form_key_of,
    inline_scripts,
    link_to,
    links,
    post_details,
)
from html_forms import forms_of
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, BookingConsent, Service, Tenant, TimeOff
from bookwell.core.web import themes
from bookwell.hooks import Consent, Manifest, Refusal, hookimpl


def assert_strict(page):
    """No inline code anywhere, and a phone-friendly viewport."""
    text = page.text.lower()
    assert inline_scripts(text) == []
    assert "<style" not in text
    assert " style=" not in text
    assert re.search(r"\son[a-z]+=", text) is None  # no inline event handlers
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text


def bookings(app) -> list[Booking]:
    with db.fresh_session(app) as session:
        return list(session.scalars(select(Booking).order_by(Booking.id)))


def update_tenant(app, tenant_id, **fields):
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, tenant_id)
        for name, value in fields.items():
            setattr(tenant, name, value)


# --- the path -----------------------------------------------------------------------------------


def test_the_whole_path_to_a_booking_without_javascript(app, client, business, clock):
    services = client.get(f"{BOOK}/")
    assert services.status_code == 200
    assert_strict(services)
    providers = client.get(link_to(services, f"service={business.service_id}"))
    assert "Ana" in providers.text and "Ben" in providers.text and "Anyone" in providers.text
    assert_strict(providers)
    calendar = client.get(link_to(providers, "/day", f"provider={business.provider_id}"))
    assert calendar.status_code == 200 and "March 2027" in calendar.text
    assert_strict(calendar)
    day = client.get(link_to(calendar, "/slots", "date=2027-03-02"))
    assert day.status_code == 200 and "Tuesday 2 March 2027" in day.text
    assert_strict(day)
    details = client.get(link_to(day, "/details", "T10:00"))
    assert details.status_code == 200
    assert "Tuesday 2 March 2027, 10:00" in details.text  # Paris time
    assert_strict(details)
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', details.text)[1])
    sent = client.post(
        action,
        data={
            "csrf_token": csrf_of(details),
            "form_key": form_key_of(details),
            "name": "Ann",
            "email": "ann@example.com",
            "phone": "+33 1 23 45 67 89",
            "notes": "Short, please.",
        },
    )
    assert sent.status_code == 303  # Post/Redirect/Get: a reload shows, never books again
    done = client.get(sent.headers["Location"])
    assert done.status_code == 200
    assert_strict(done)
    [booking] = bookings(app)
    assert booking.starts_at == datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    assert booking.provider_id == business.provider_id
    assert (booking.client_phone, booking.client_notes) == ("+33 1 23 45 67 89", "Short, please.")
    assert booking.reference in done.text
    assert "Cut" in done.text and "Ana" in done.text
    assert "Tuesday 2 March 2027, 10:00" in done.text
    manage = link_to(done, f"/book/salon/manage/{booking.reference}?token=")
    assert urlsplit(manage).path == f"/book/salon/manage/{booking.reference}"
    assert client.get(manage).status_code == 200


def test_the_confirmation_shows_the_business_address(app, client, business):
    update_tenant(app, business.tenant_id, address="1 rue de la Paix, Paris")
    page, _ = book_through_pages(client, business)
    assert "1 rue de la Paix, Paris" in page.text


def test_any_provider_takes_the_first_free_one(app, client, business):
    first, _ = book_through_pages(client, business)
    assert first.status_code == 200
    slots = client.get(f"{BOOK}/slots?service={business.service_id}&provider=any&date=2027-03-02")
    assert "10:00" in slots.text  # Ben is still free then
    page = post_details(app.test_client(), details_url(business, provider="any"), name="Bob")
    assert page.status_code == 200 and "Ben" in page.text
    assert [booking.provider_id for booking in bookings(app)] == [
        business.provider_id,
        business.second_provider_id,
    ]


def test_the_calendar_marks_days_with_and_without_room(app, client, business):
    with db.write_transaction(app) as session:
        for provider_id in (business.provider_id, business.second_provider_id):
            session.add(
                TimeOff(
                    provider_id=provider_id,
                    starts_at=datetime(2027, 3, 2, 23, 0, tzinfo=UTC),  # 3 March in Paris
                    ends_at=datetime(2027, 3, 3, 23, 0, tzinfo=UTC),
                    reason="training",
                )
            )
    url = f"{BOOK}/day?service={business.service_id}&provider=any"
    page = client.get(url)
    free_days = {
        parse_qs(urlsplit(href).query)["date"][0] for href in links(page) if "/slots" in href
    }
    assert "2027-03-02" in free_days and "2027-03-04" in free_days
    assert "2027-03-03" not in free_days
    assert ">Wednesday 3 March, no free times</span>" in page.text
    assert "month=2027-02" not in page.text  # no way back before this month
    following = client.get(link_to(page, "month=2027-04"))
    assert following.status_code == 200 and "April 2027" in following.text
    assert "month=2027-03" in following.text
    past = client.get(f"{url}&month=2027-02")
    assert past.status_code == 200 and "That month has passed" in past.text
    assert "/slots" not in past.text and "month=2027-03" in past.text  # and the way back
    assert client.get(f"{url}&month=nonsense").status_code == 404
    assert client.get(f"{BOOK}/day?service=999&provider=any").status_code == 404
    assert client.get(f"{BOOK}/day?service={business.service_id}&provider=999").status_code == 404


# --- refusals ---------------------------------------------------------------------------------


def test_missing_and_invalid_fields_are_explained_beside_them(app, client, business):
    page = post_details(client, details_url(business), name="", email="not-an-address")
    assert page.status_code == 422
    assert_strict(page)
    text = page.text
    # Beside its field (the summary at the top says it too, as a link to the field).
    name_error = text.index("Please enter your name.</p>")
    assert text.index('id="name"') < name_error < text.index('id="email"')
    email_error = text.index("Please enter a valid e-mail address.</p>")
    assert text.index('id="email"') < email_error < text.index('id="phone"')
    assert bookings(app) == []
    hostile = post_details(client, details_url(business), name="<script>x</script>", email="x")
    assert hostile.status_code == 422
    assert_strict(hostile)  # what the client typed comes back escaped
    assert "&lt;script&gt;x&lt;/script&gt;" in hostile.text


def test_a_form_without_csrf_is_refused(app, client, business):
    response = client.post(details_url(business), data={"name": "Ann", "email": "a@example.com"})
    assert response.status_code == 422
    assert "expired" in response.text
    assert bookings(app) == []


class NoExampleOrg:
    MANIFEST = Manifest("no-example-org", "No example.org", "Refuses.", "1", "test", "t")

    @hookimpl
    def before_confirm(ctx):
        if ctx.booking.client_email.endswith("@example.org"):
            return Refusal("We cannot take bookings from example.org.", "blocked", field="email")
        if ctx.booking.client_name == "Late":
            return Refusal("Bookings are closed today.", "closed", status=409, field="start")


class Terms:
    MANIFEST = Manifest("terms", "Terms", "Asks for the terms.", "1", "test", "t")

    @hookimpl
    def booking_requirements(ctx, settings):
        return [Consent("terms", "I accept the terms", "The terms, v3.", "3", "https://x.test/t")]


class NoCancelling:
    MANIFEST = Manifest("no-cancelling", "No cancelling", "Refuses.", "1", "test", "t")

    @hookimpl
    def before_cancel(ctx):
        return Refusal("Cancelling is no longer possible this close to the time.", "too_late")

    @hookimpl
    def before_reschedule(ctx, new_start):
        return Refusal("Moving is no longer possible.", "too_late")


@pytest.fixture
def plugin_app(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[NoExampleOrg, Terms, NoCancelling])

    def enable(name):
        with app.app_context():
            plugin_changes.enable(app, business.tenant_id, name, {}, clock())

    app.enable = enable
    return app


def test_a_plugin_refusal_is_shown_beside_its_field(plugin_app, business):
    plugin_app.enable("no-example-org")
    client = plugin_app.test_client()
    page = post_details(client, details_url(business), email="ann@example.org")
    assert page.status_code == 403
    text = page.text
    message = text.index("We cannot take bookings from example.org.</p>")
    assert text.index('id="email"') < message < text.index('id="phone"')
    other = post_details(client, details_url(business), name="Late")
    assert other.status_code == 409
    assert "Bookings are closed today. (start)" in other.text
    assert bookings(plugin_app) == []


def test_a_missing_consent_is_explained_beside_its_box(plugin_app, business):
    plugin_app.enable("terms")
    client = plugin_app.test_client()
    form = client.get(details_url(business))
    assert 'name="consents" value="terms"' in form.text
    assert "I accept the terms" in form.text and 'href="https://x.test/t"' in form.text
    page = post_details(client, details_url(business))
    assert page.status_code == 422
    box = page.text.index('value="terms"')
    beside = page.text.index("Please tick this box to continue.</p>")
    assert box < beside < page.text.index("<button")
    assert bookings(plugin_app) == []
    done = post_details(client, details_url(business), consents="terms")
    assert done.status_code == 200
    with db.fresh_session(plugin_app) as session:
        consent = session.scalar(select(BookingConsent))
    assert (consent.consent_id, consent.version) == ("terms", "3")


def test_a_slot_taken_meanwhile_sends_the_client_back_with_a_note(app, business):
    first, second = app.test_client(), app.test_client()
    url = details_url(business, provider=business.provider_id)
    forms = [browser.get(url) for browser in (first, second)]
    data = {"name": "Ann", "email": "ann@example.com"}
    won = first.post(url, data={**data, "csrf_token": csrf_of(forms[0]), "form_key": "a" * 20})
    lost = second.post(url, data={**data, "csrf_token": csrf_of(forms[1]), "form_key": "b" * 20})
    assert won.status_code == 303
    assert lost.status_code == 302
    back = second.get(lost.headers["Location"])
    assert "/slots" in lost.headers["Location"] and "date=2027-03-02" in lost.headers["Location"]
    assert "That time was just taken — please pick another" in back.text
    assert len(bookings(app)) == 1


def test_a_race_lost_inside_the_lifecycle_also_goes_back_to_the_slots(app, business, monkeypatch):
    from bookwell.core.booking import lifecycle

    def taken(*args, **kwargs):
        raise lifecycle.SlotUnavailable("That time was just taken. Please choose another slot.")

    client = app.test_client()
    url = details_url(business, provider=business.provider_id)
    form = client.get(url)
    monkeypatch.setattr(lifecycle, "create_booking", taken)
    data = {"csrf_token": csrf_of(form), "form_key": form_key_of(form), "name": "A"}
    data["email"] = "a@x.org"
    lost = client.post(url, data=data)
    assert lost.status_code == 302 and "taken=1" in lost.headers["Location"]


# --- managing ---------------------------------------------------------------------------------


def test_the_manage_page_needs_the_right_token(app, client, business):
    _, manage = book_through_pages(client, business)
    assert client.get(manage).status_code == 200
    reference = urlsplit(manage).path.rsplit("/", 1)[1]
    assert client.get(f"{BOOK}/manage/{reference}?token=wrong").status_code == 404
    assert client.get(f"{BOOK}/manage/{reference}").status_code == 404
    token = parse_qs(urlsplit(manage).query)["token"][0]
    assert client.get(f"{BOOK}/manage/AAAA-BBBB?token={token}").status_code == 404
    assert client.get(f"/book/nobody/manage/{reference}?token={token}").status_code == 404


def test_cancel_from_the_manage_page_with_a_confirmation_step(app, client, business):
    _, manage = book_through_pages(client, business)
    page = client.get(manage)
    assert_strict(page)
    step = client.get(link_to(page, "step=cancel"))
    assert "Cancel this booking?" in step.text
    token = parse_qs(urlsplit(manage).query)["token"][0]
    assert f'name="token" value="{token}"' in step.text
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', step.text)[1])
    assert token not in action
    refused = client.post(action, data={"token": token})  # no CSRF token
    assert refused.status_code == 422
    assert bookings(app)[0].status == "confirmed"
    done = client.post(action, data={"token": token, "csrf_token": csrf_of(step)})
    assert done.status_code == 302
    assert bookings(app)[0].status == "cancelled"
    after = client.get(done.headers["Location"])
    assert "Your booking is cancelled." in after.text and "step=cancel" not in after.text
    assert (
        client.post(action, data={"token": "wrong", "csrf_token": csrf_of(step)}).status_code == 404
    )


def test_reschedule_from_the_manage_page_month_then_day_then_time(app, client, business):
    _, manage = book_through_pages(client, business)
    month = client.get(link_to(client.get(manage), "step=reschedule"))
    assert month.status_code == 200
    assert_strict(month)
    assert "March 2027" in month.text and 'type="radio"' not in month.text
    day = client.get(link_to(month, "step=reschedule", "date=2027-03-03"))
    assert_strict(day)
    assert "Wednesday 3 March 2027" in day.text
    own_day = client.get(link_to(month, "step=reschedule", "date=2027-03-02"))
    assert "2027-03-02T10:00:00+01:00" not in starts_offered(own_day)  # its own time
    assert "2027-03-02T10:30:00+01:00" in starts_offered(own_day)
    confirm = client.get(link_to(day, "step=reschedule", "start=2027-03-03T11:00:00%2B01:00"))
    assert_strict(confirm)
    assert "Move your booking to <strong>Wednesday 3 March 2027, 11:00</strong>?" in confirm.text
    token = parse_qs(urlsplit(manage).query)["token"][0]
    [form] = [form for form in forms_of(confirm.text) if form.method == "post"]
    assert token not in form.action and form.field("token") == token
    assert form.field("start") == "2027-03-03T11:00:00+01:00"
    done = client.post(form.action, data=MultiDict(form.submission()))
    assert done.status_code == 302
    [booking] = bookings(app)
    assert booking.starts_at == datetime(2027, 3, 3, 10, 0, tzinfo=UTC)
    assert booking.provider_id == business.provider_id  # the same person when free
    assert "moved to its new time" in client.get(done.headers["Location"]).text
    data = {"csrf_token": csrf_of(confirm), "token": token}
    missing = client.post(form.action, data=data)
    assert missing.status_code == 422 and "Please choose a new time." in missing.text


def starts_offered(page) -> list[str]:
    return [parse_qs(urlsplit(href).query)["start"][0] for href in links(page) if "start=" in href]


def test_rescheduling_shows_at_most_one_days_times(app, client, business):
    with db.write_transaction(app) as session:
        session.get(Service, business.service_id).slot_step_minutes = 5
    _, manage = book_through_pages(client, business)
    month = client.get(manage + "&step=reschedule")
    assert "start=" not in month.text  # a calendar, no times yet
    assert client.get(link_to(month, "month=2027-04")).status_code == 200
    day = client.get(link_to(month, "date=2027-03-04"))
    starts = starts_offered(day)
    assert {start[:10] for start in starts} == {"2027-03-04"}
    assert len(starts) == 91  # 09:00 to 16:30 every 5 minutes, once whoever is free
    far = client.get(manage + "&step=reschedule&month=2029-01")
    assert "Bookings open up to 365 days ahead" in far.text


def test_a_time_taken_meanwhile_goes_back_to_that_days_times(app, client, business):
    _, manage = book_through_pages(client, business)
    confirm = client.get(manage + "&step=reschedule&start=2027-03-03T11:00:00%2B01:00")
    [form] = [form for form in forms_of(confirm.text) if form.method == "post"]
    for provider in (business.provider_id, business.second_provider_id):
        app.test_client().post(
            "/api/v1/tenants/salon/bookings",
            json={
                "service_id": business.service_id,
                "provider_id": provider,
                "start": "2027-03-03T11:00:00+01:00",
                "client": {"name": "Bob", "email": "bob@example.com"},
            },
        )
    lost = client.post(form.action, data=MultiDict(form.submission()))
    assert lost.status_code == 409 and "That time was just taken" in lost.text
    assert "Wednesday 3 March 2027" in lost.text
    assert "2027-03-03T11:30:00+01:00" in starts_offered(lost)
    stale = client.get(manage + "&step=reschedule&start=2027-03-03T11:00:00%2B01:00")
    assert "Move your booking to" not in stale.text and "Wednesday 3 March 2027" in stale.text


def test_a_plugin_refusing_a_cancellation_is_shown_plainly(plugin_app, business):
    client = plugin_app.test_client()
    _, manage = book_through_pages(client, business)
    plugin_app.enable("no-cancelling")
    step = client.get(manage + "&step=cancel")
    token = parse_qs(urlsplit(manage).query)["token"][0]
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', step.text)[1])
    refused = client.post(action, data={"csrf_token": csrf_of(step), "token": token})
    assert refused.status_code == 403
    assert "Cancelling is no longer possible this close to the time." in refused.text
    assert bookings(plugin_app)[0].status == "confirmed"
    moved = client.post(
        f"{BOOK}/manage/{bookings(plugin_app)[0].reference}/reschedule",
        data={"csrf_token": csrf_of(step), "token": token, "start": "2027-03-03T11:00:00+01:00"},
    )
    assert moved.status_code == 403 and "Moving is no longer possible." in moved.text


def test_a_past_or_cancelled_booking_offers_no_changes(app, client, business, clock):
    _, manage = book_through_pages(client, business)
    clock.set(datetime(2027, 3, 2, 12, 0, tzinfo=UTC))
    page = client.get(manage + "&step=cancel")
    assert page.status_code == 200 and "Cancel this booking?" not in page.text


# --- headers, embedding, brand ----------------------------------------------------------------


def test_book_pages_are_unframeable_without_configured_origins(client, business):
    response = client.get(f"{BOOK}/")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_tenant_may_let_its_own_sites_frame_the_book_pages(app, client, business):
    update_tenant(
        app,
        business.tenant_id,
        frame_origins='["https://salon.example", "https://evil.example; script-src *"]',
    )
    for path in (f"{BOOK}/", f"{BOOK}/day?service={business.service_id}&provider=any"):
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self' https://salon.example" in policy
        assert "evil" not in policy and "unsafe-inline" not in policy
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "X-Frame-Options" not in response.headers
    for path in ("/admin/salon/login", "/healthz", "/api/v1/tenants/salon/services"):
        response = client.get(path)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


def test_brand_css_comes_from_the_tenant_colour(app, client, business):
    default = client.get(f"{BOOK}/brand.css")
    assert default.status_code == 200 and default.mimetype == "text/css"
    assert "--brand: #3d4a5c;" in default.text
    update_tenant(app, business.tenant_id, brand_colour="#FFCC00")
    assert "--brand: #ffcc00; --brand-ink: #000000;" in client.get(f"{BOOK}/brand.css").text
    update_tenant(app, business.tenant_id, brand_colour="red;}")
    assert "--brand: #3d4a5c;" in client.get(f"{BOOK}/brand.css").text
    assert client.get("/book/nobody/brand.css").status_code == 404


# --- themes -----------------------------------------------------------------------------------


def test_the_default_theme_loads_through_its_entry_point(app, client, business):
    assert "default" in themes.load_themes()
    update_tenant(app, business.tenant_id, theme="no-such-theme")
    page = client.get(f"{BOOK}/")
    assert page.status_code == 200 and "/themes/default/static/booking.css" in page.text
    css = client.get("/themes/default/static/booking.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert client.get("/themes/default/static/../__init__.py").status_code == 404
    assert client.get("/themes/default/static/%2e%2e/__init__.py").status_code == 404
    assert client.get("/themes/nothing/static/booking.css").status_code == 404


def test_unknown_tenants_and_bad_parameters_answer_404(client, business):
    assert client.get("/book/nobody/").status_code == 404
    assert client.get(f"{BOOK}/?service=abc").status_code == 404
    url = f"{BOOK}/slots?service={business.service_id}&provider=any&date=2027-13-01"
    assert client.get(url).status_code == 404
    assert client.get(details_url(business, start="2027-03-02T10:00:00")).status_code == 404


def test_the_pages_share_the_apis_booking_rate_limit(make_app, business):
    app = make_app(RATE_LIMITS="booking=2/minute,write=60/minute")
    client = app.test_client()
    url = details_url(business, provider=business.provider_id)
    token = csrf_of(client.get(url))
    answers = [
        client.post(url, data={"csrf_token": token, "name": "", "email": ""}).status_code
        for _ in range(3)
    ]
    assert answers == [422, 422, 429]
    assert client.get(url).status_code == 200  # only the POSTs count


class Closed:
    MANIFEST = Manifest("closed", "Closed", "Refuses every request.", "1", "test", "t")

    @hookimpl
    def before_request(ctx):
        return Refusal("Online booking is paused this week.", "paused", status=403)


def test_a_request_refused_by_a_plugin_reads_plainly_in_the_theme(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[Closed])
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "closed", {}, clock())
    page = app.test_client().get(f"{BOOK}/")
    assert page.status_code == 403
    assert "Online booking is paused this week." in page.text
    assert page.mimetype == "text/html"
    assert_strict(page)


def test_a_third_party_theme_overrides_only_what_it_wants(
    make_app, business, tmp_path, monkeypatch
):
    import importlib.metadata
    import sys

    package = tmp_path / "fancy_theme_for_tests"
    (package / "templates" / "book").mkdir(parents=True)
    (package / "static").mkdir()
    (package / "__init__.py").write_text("")
    (package / "templates" / "book" / "services.html").write_text(
        '{% extends "book/base.html" %}{% block content %}<h1>Fancy</h1>{% endblock %}'
    )
    (package / "static" / "fancy.css").write_text("h1 { color: gold; }")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = importlib.metadata.entry_points

    def entry_points(**selection):
        found = list(real(**selection))
        if selection.get("group") == "bookwell.themes":
            found.append(
                importlib.metadata.EntryPoint("fancy", "fancy_theme_for_tests", "bookwell.themes")
            )
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    app = make_app()
    sys.modules.pop("fancy_theme_for_tests", None)
    update_tenant(app, business.tenant_id, theme="fancy")
    client = app.test_client()
    page = client.get(f"{BOOK}/")
    assert "<h1>Fancy</h1>" in page.text
    assert "/themes/fancy/static/booking.css" in page.text  # the base came from the default
    providers = client.get(f"{BOOK}/?service={business.service_id}")
    assert "Anyone available" in providers.text
    assert client.get("/themes/fancy/static/fancy.css").status_code == 200
    assert client.get("/themes/fancy/static/booking.css").status_code == 200  # the default's
    assert client.get("/themes/fancy/static/../__init__.py").status_code == 404


def test_two_clients_confirming_the_same_slot_at_once(app, business):
    import threading

    url = details_url(business, provider=business.provider_id)
    browsers = [app.test_client() for _ in range(2)]
    forms = [browser.get(url) for browser in browsers]
    barrier = threading.Barrier(2)
    answers = [None, None]

    def confirm(index):
        barrier.wait()
        answers[index] = browsers[index].post(
            url,
            data={
                "csrf_token": csrf_of(forms[index]),
                "form_key": form_key_of(forms[index]),
                "name": f"C{index}",
                "email": "c@example.com",
            },
        )

    threads = [threading.Thread(target=confirm, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answer.status_code for answer in answers) == [302, 303]
    lost = next(answer for answer in answers if answer.status_code == 302)
    assert "taken=1" in lost.headers["Location"]
    assert len(bookings(app)) == 1


def test_a_stale_link_to_a_taken_time_goes_back_to_the_slots(app, client, business):
    book_through_pages(client, business)
    stale = client.get(details_url(business, provider=business.provider_id))
    assert stale.status_code == 302 and "taken=1" in stale.headers["Location"]
    not_a_slot = client.get(details_url(business, start="2027-03-02T10:10:00+01:00"))
    assert not_a_slot.status_code == 302


# --- sending the details form twice ---------------------------------------------------------


def _filled(client, business):
    url = details_url(business, provider=business.provider_id)
    form = client.get(url)
    data = {"csrf_token": csrf_of(form), "form_key": form_key_of(form), "name": "Ann"}
    return url, {**data, "email": "ann@example.com"}


def test_reloading_the_confirmation_shows_the_booking_and_books_nothing_more(app, business):
    client = app.test_client()
    url, data = _filled(client, business)
    sent = client.post(url, data=data)
    assert sent.status_code == 303
    confirmation = sent.headers["Location"]
    first, reloaded = client.get(confirmation), client.get(confirmation)
    [booking] = bookings(app)
    assert first.status_code == reloaded.status_code == 200
    assert booking.reference in first.text and booking.reference in reloaded.text
    assert first.headers["Cache-Control"] == "no-store"
    # Only whoever booked has the address: a reference alone, or a wrong token, shows nothing.
    path = urlsplit(confirmation).path
    assert path == f"{BOOK}/booked/{booking.reference}"
    assert app.test_client().get(path).status_code == 404
    assert app.test_client().get(f"{path}?token=wrong").status_code == 404


def test_the_same_form_sent_again_shows_the_same_booking(app, business):
    client = app.test_client()
    url, data = _filled(client, business)
    first = client.post(url, data=data)
    again = client.post(url, data=data)  # the back button and send, or a double click
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert len(bookings(app)) == 1
    changed = client.post(url, data={**data, "name": "Someone else"})
    assert changed.status_code == 409
    assert "You already sent this form with other details" in changed.text
    assert form_key_of(changed) != data["form_key"]  # a new form, for another booking
    assert len(bookings(app)) == 1


def test_a_double_click_books_once(app, business):
    import threading

    client = app.test_client()
    url, data = _filled(client, business)
    barrier = threading.Barrier(2)
    answers = [None, None]

    # The same browser's cookie, so the CSRF token holds for both requests.
    cookie = client.get_cookie("session")

    def send_with_cookie(index):
        browser = app.test_client()
        browser.set_cookie(cookie.key, cookie.value)
        barrier.wait()
        answers[index] = browser.post(url, data=data)

    threads = [threading.Thread(target=send_with_cookie, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [answer.status_code for answer in answers] == [303, 303]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    assert len(bookings(app)) == 1


def test_a_form_without_its_key_books_nothing(app, business):
    client = app.test_client()
    url, data = _filled(client, business)
    del data["form_key"]
    refused = client.post(url, data=data)
    assert refused.status_code == 422 and "Your form expired" in refused.text
    assert len(form_key_of(refused)) >= 16  # sent again from here, it books
    assert bookings(app) == []
