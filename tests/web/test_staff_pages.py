"""The staff pages: agendas, a booking's details and what staff do with it, booking for a client,
the catalogue, staff accounts, the business's details, "my sessions"; and who may see what."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest
from conftest import (
    STAFF_PASSWORD,
    add_staff_and_a_rival,
    booking_body,
    csrf_token_of,
    log_in_staff,
)
from sqlalchemy import select

from bookwell.core.access.users import create_user
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    AuditEntry,
    AuthSession,
    Booking,
    OutboxMessage,
    Provider,
    Service,
    TimeOff,
    User,
)
from bookwell.hooks import Manifest, Refusal, hookimpl


def without_admin_script(html: str) -> str:
    """The page without the one script staff pages load, a static file (admin.js)."""
    return html.replace('<script src="/static/admin.js" defer></script>', "")


PASSWORD = STAFF_PASSWORD


class ViewLog:
    MANIFEST = Manifest("view-log", "View log", "Remembers views.", "1", "test", "t")
    seen: list = []

    @hookimpl
    def after_view(ctx, subject):
        ViewLog.seen.append((ctx.actor.email, subject))


class NoBen:
    MANIFEST = Manifest("no-ben", "No Ben", "Refuses Ben.", "1", "test", "t")

    @hookimpl
    def before_confirm(ctx):
        if ctx.booking.provider.name == "Ben":
            return Refusal("Ben is fully booked this month.", code="no_ben")


class NoBookingsScope:
    MANIFEST = Manifest("no-bookings", "No bookings", "Hides bookings.", "1", "test", "t")

    @hookimpl
    def before_data_access(ctx, scope):
        if scope == "booking":
            return Refusal("Not today.", code="closed", status=403)


@pytest.fixture
def site(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[ViewLog, NoBen, NoBookingsScope])
    add_staff_and_a_rival(
        app,
        business,
        clock(),
        ("owner", "manager", "staff", "receptionist"),
        rival_timezone="Europe/Paris",
    )
    return app


token_of = csrf_token_of


def log_in(app, email="receptionist@example.com", slug="salon"):
    return log_in_staff(app, email, slug)


def book(app, business, start, **options):
    response = app.test_client().post(
        "/api/v1/tenants/salon/bookings", json=booking_body(business, start, **options)
    )
    assert response.status_code == 201, response.json
    return response.json["reference"]


def booking_row(app, reference) -> Booking:
    with app.app_context():
        return db.session().scalar(select(Booking).where(Booking.reference == reference))


def audited(app, action) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session().scalars(select(AuditEntry).where(AuditEntry.action == action)))


def user_id(app, email) -> int:
    with app.app_context():
        return db.session().scalar(select(User.id).where(User.email == email))


def post_form(client, url, data, page_url=None):
    """Post ``data`` with a fresh CSRF token taken from ``page_url`` (default: ``url``)."""
    token = token_of(client.get(page_url or url))
    return client.post(url, data={"csrf_token": token, **data})


def no_inline_code(page):
    assert (
        "<script" not in without_admin_script(page.text)
        and "style=" not in page.text
        and "<style" not in page.text
    )
    assert "admin.css" in page.text and 'name="viewport"' in page.text


# --- agendas -------------------------------------------------------------------------------------


def test_the_day_agenda_lists_the_days_bookings_per_provider_in_local_time(site, business):
    book(site, business, "2027-03-01T10:00:00+01:00", name="Ann")
    book(
        site,
        business,
        "2027-03-01T11:30:00+01:00",
        name="Bob",
        provider_id=business.second_provider_id,
    )
    book(site, business, "2027-03-02T10:00:00+01:00", name="Cyd")
    client = log_in(site)
    page = client.get("/admin/salon/")
    assert page.status_code == 200
    no_inline_code(page)
    assert "Ana" in page.text and "Ben" in page.text
    assert (
        "10:00" in page.text and "Ann" in page.text and "11:30" in page.text and "Bob" in page.text
    )
    assert "Cyd" not in page.text
    # A time grid: the providers' columns first, then the rows by time (which column each
    # booking lands in: tests/web/test_staff_pages_agenda.py).
    assert page.text.index("Ana") < page.text.index("Ben") < page.text.index("Ann")
    assert page.text.index("Ann") < page.text.index("Bob")
    tomorrow = client.get("/admin/salon/?date=2027-03-02")
    assert "Cyd" in tomorrow.text and "Ann" not in tomorrow.text
    assert client.get("/admin/salon/?date=not-a-date").status_code == 400
    assert client.get("/admin/salon/?date=9999-12-31").status_code == 400


def test_the_week_agenda_covers_seven_days_from_its_start(site, business):
    book(site, business, "2027-03-03T14:00:00+01:00", name="Ann")
    book(site, business, "2027-03-09T14:00:00+01:00", name="Bob")
    client = log_in(site)
    page = client.get("/admin/salon/week?start=2027-03-01")
    assert page.status_code == 200
    assert "Ann" in page.text and "14:00" in page.text and "Bob" not in page.text
    assert "Bob" in client.get("/admin/salon/week?start=2027-03-08").text
    assert "Ann" in client.get("/admin/salon/week").text  # from today


# --- one booking ---------------------------------------------------------------------------------


def test_a_bookings_details_are_shown_and_the_view_reaches_after_view(site, business, clock):
    with site.app_context():
        plugin_changes.enable(site, business.tenant_id, "view-log", {}, clock())
    reference = book(site, business, "2027-03-02T10:00:00+01:00", name="Ann")
    client = log_in(site)
    ViewLog.seen.clear()
    page = client.get(f"/admin/salon/bookings/{reference}")
    assert page.status_code == 200
    no_inline_code(page)
    assert "ann@example.com" in page.text and "Cut" in page.text and "Ana" in page.text
    assert "10:00" in page.text
    assert ViewLog.seen == [("receptionist@example.com", f"booking:{reference}")]
    client.get("/admin/salon/?date=2027-03-02")
    assert ViewLog.seen[-1] == ("receptionist@example.com", "bookings:2027-03-02..2027-03-02")
    assert client.get("/admin/salon/bookings/NOPE-NOPE").status_code == 404


def test_cancelling_needs_a_reason_and_is_audited_as_the_staff_member(site, business):
    reference = book(site, business, "2027-03-02T10:00:00+01:00")
    client = log_in(site)
    url = f"/admin/salon/bookings/{reference}"
    refused = post_form(client, f"{url}/cancel", {"reason": ""}, url)
    assert refused.status_code == 422
    assert 'class="field-error"' in refused.text
    assert booking_row(site, reference).status == "confirmed"
    done = post_form(client, f"{url}/cancel", {"reason": "Client called"}, url)
    assert done.status_code == 302
    row = booking_row(site, reference)
    assert row.status == "cancelled" and row.cancellation_reason == "Client called"
    [entry] = audited(site, "booking.cancelled")
    assert entry.actor == f"user:{user_id(site, 'receptionist@example.com')}"
    again = post_form(client, f"{url}/cancel", {"reason": "twice"}, url)
    assert again.status_code == 409


def test_a_csrf_less_post_changes_nothing(site, business):
    reference = book(site, business, "2027-03-02T10:00:00+01:00")
    client = log_in(site)
    response = client.post(f"/admin/salon/bookings/{reference}/cancel", data={"reason": "x"})
    assert response.status_code == 422
    assert booking_row(site, reference).status == "confirmed"


def slot_value(provider_id, local_iso):
    return f"{provider_id}-{int(datetime.fromisoformat(local_iso).timestamp())}"


def test_rescheduling_offers_free_times_and_refuses_a_taken_one(site, business):
    reference = book(site, business, "2027-03-02T10:00:00+01:00")
    book(site, business, "2027-03-03T09:00:00+01:00", name="Bob")
    client = log_in(site)
    url = f"/admin/salon/bookings/{reference}"
    page = client.get(f"{url}?day=2027-03-03")
    free = slot_value(business.provider_id, "2027-03-03T11:00:00+01:00")
    taken = slot_value(business.provider_id, "2027-03-03T09:00:00+01:00")
    assert f'value="{free}"' in page.text and f'value="{taken}"' not in page.text
    refused = post_form(client, f"{url}/reschedule", {"day": "2027-03-03", "slot": taken}, url)
    assert refused.status_code == 409 and "not available" in refused.text
    missing = post_form(client, f"{url}/reschedule", {"day": "2027-03-03"}, url)
    assert missing.status_code == 422 and 'class="field-error"' in missing.text
    moved = post_form(client, f"{url}/reschedule", {"day": "2027-03-03", "slot": free}, url)
    assert moved.status_code == 302
    row = booking_row(site, reference)
    assert row.starts_at == datetime(2027, 3, 3, 10, 0, tzinfo=UTC)
    assert audited(site, "booking.rescheduled")


def test_rescheduling_takes_the_month_day_time_steps_one_day_at_a_time(site, business):
    with site.app_context(), db.write_transaction(site) as session:
        session.get(Service, business.service_id).slot_step_minutes = 5
    reference = book(site, business, "2027-03-02T10:00:00+01:00")
    client = log_in(site, "receptionist@example.com")  # every provider's agenda
    url = f"/admin/salon/bookings/{reference}"
    page = client.get(url)
    assert 'name="slot"' not in page.text and 'type="radio"' not in page.text  # a calendar
    assert "March 2027" in page.text and "<strong>Ana</strong>" in page.text
    hrefs = [unescape(href) for href in re.findall(r'href="([^"]+)"', page.text)]
    day_link = next(href for href in hrefs if "day=2027-03-04" in href)
    day = client.get(day_link)
    times = re.findall(r'<button type="submit" name="slot" value="([^"]+)">', day.text)
    assert len(times) == 91  # Ana's day, 09:00 to 16:30 every 5 minutes: no other day
    assert {value.split("-")[0] for value in times} == {str(business.provider_id)}
    anyone = client.get(day_link.replace(f"provider={business.provider_id}", "provider=any"))
    labels = re.findall(r'name="slot" value="[^"]+">([^<]+)</button>', anyone.text)
    assert len(labels) == 91 and labels[0] == "09:00 · Ana"  # its own provider first
    ben = slot_value(business.second_provider_id, "2027-03-04T15:05:00+01:00")
    assert (
        f'value="{ben}"'
        in client.get(
            day_link.replace(
                f"provider={business.provider_id}", f"provider={business.second_provider_id}"
            )
        ).text
    )
    moved = post_form(client, f"{url}/reschedule", {"day": "2027-03-04", "slot": ben}, day_link)
    assert moved.status_code == 302
    row = booking_row(site, reference)
    assert row.starts_at == datetime(2027, 3, 4, 14, 5, tzinfo=UTC)
    assert row.provider_id == business.second_provider_id
    far = client.get(f"{url}?month=2029-01")
    assert "Bookings open up to 365 days ahead" in far.text


def test_completed_and_no_show_only_once_the_appointment_started(site, business, clock):
    first = book(site, business, "2027-03-01T10:00:00+01:00")
    second = book(site, business, "2027-03-01T11:00:00+01:00")
    client = log_in(site)
    url = f"/admin/salon/bookings/{first}"
    early = post_form(client, f"{url}/outcome", {"outcome": "completed"}, url)
    assert early.status_code == 409 and "not started" in early.text
    clock.set(datetime(2027, 3, 1, 11, 0, tzinfo=UTC))
    client = log_in(site)  # the earlier session went idle meanwhile
    page = client.get(url)
    assert "Mark completed" in page.text and "Mark no-show" in page.text
    bogus = post_form(client, f"{url}/outcome", {"outcome": "paid"}, url)
    assert bogus.status_code == 422
    assert post_form(client, f"{url}/outcome", {"outcome": "completed"}, url).status_code == 302
    other = f"/admin/salon/bookings/{second}"
    assert post_form(client, f"{other}/outcome", {"outcome": "no-show"}, other).status_code == 302
    assert booking_row(site, first).status == "completed"
    assert booking_row(site, second).status == "no-show"
    assert [e.subject for e in audited(site, "booking.completed")] == [f"booking:{first}"]
    assert [e.subject for e in audited(site, "booking.no_show")] == [f"booking:{second}"]
    again = post_form(client, f"{url}/outcome", {"outcome": "no-show"}, url)
    assert again.status_code == 409


# --- booking for a client ------------------------------------------------------------------------


def test_staff_book_for_a_client_through_the_booking_lifecycle(site, business, clock):
    with site.app_context():
        plugin_changes.enable(site, business.tenant_id, "no-ben", {}, clock())
    book(site, business, "2027-03-02T09:00:00+01:00", name="Bob")
    client = log_in(site)
    form_url = f"/admin/salon/bookings/new?service={business.service_id}&day=2027-03-02"
    page = client.get(form_url)
    assert page.status_code == 200
    no_inline_code(page)
    free = slot_value(business.provider_id, "2027-03-02T10:00:00+01:00")
    taken = slot_value(business.provider_id, "2027-03-02T09:00:00+01:00")
    assert f'value="{free}"' in page.text and f'value="{taken}"' not in page.text
    today = client.get("/admin/salon/bookings/new")  # the first service, today
    assert slot_value(business.provider_id, "2027-03-01T10:00:00+01:00") in today.text
    details = {"service": business.service_id, "day": "2027-03-02", "name": "Cyd"}
    url = "/admin/salon/bookings/new"
    bad = post_form(client, url, {**details, "slot": free, "email": "nope"}, form_url)
    assert bad.status_code == 422 and 'class="field-error"' in bad.text
    details["email"] = "cyd@example.com"
    clash = post_form(client, url, {**details, "slot": taken}, form_url)
    assert clash.status_code == 409 and "not available" in clash.text
    ben = slot_value(business.second_provider_id, "2027-03-02T10:00:00+01:00")
    refused = post_form(client, url, {**details, "slot": ben}, form_url)
    assert refused.status_code == 409 and "Ben is fully booked this month." in refused.text
    made = post_form(client, url, {**details, "slot": free, "phone": "+33 1 23"}, form_url)
    assert made.status_code == 302
    with site.app_context():
        row = db.session().scalar(select(Booking).where(Booking.client_name == "Cyd"))
        assert row.starts_at == datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
        assert row.client_phone == "+33 1 23"
    assert made.headers["Location"].endswith(f"/admin/salon/bookings/{row.reference}")
    [entry] = [e for e in audited(site, "booking.created") if e.subject.endswith(row.reference)]
    assert entry.actor == f"user:{user_id(site, 'receptionist@example.com')}"


# --- catalogue -----------------------------------------------------------------------------------


def test_a_receptionist_cannot_reach_the_catalogue_staff_or_business_pages(site):
    client = log_in(site)
    for url in (
        "/admin/salon/services",
        "/admin/salon/services/new",
        "/admin/salon/providers",
        "/admin/salon/staff",
        "/admin/salon/business",
    ):
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/salon/services/new", data={"name": "x"}).status_code == 403
    home = client.get("/admin/salon/")
    assert "/admin/salon/services" not in home.text and "/admin/salon/bookings/new" in home.text


def test_a_manager_adds_and_edits_services_with_field_errors(site, business):
    client = log_in(site, "manager@example.com")
    fields = {
        "name": "Colour",
        "duration_minutes": "0",
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "10",
        "price": "55.50",
        "min_notice_minutes": "60",
        "horizon_days": "90",
        "slot_step_minutes": "15",
        "active": "y",
    }
    bad = post_form(client, "/admin/salon/services/new", fields)
    assert bad.status_code == 422 and 'class="field-error"' in bad.text
    # A number of hundreds of digits is refused as too large, not a 500 (NumberRange makes it
    # a float).
    huge = post_form(client, "/admin/salon/services/new", {**fields, "horizon_days": "9" * 400})
    assert huge.status_code == 422 and "That number is too large." in huge.text
    fields["duration_minutes"] = "90"
    assert post_form(client, "/admin/salon/services/new", fields).status_code == 302
    with site.app_context():
        service = db.session().scalar(select(Service).where(Service.name == "Colour"))
        assert (service.duration_minutes, service.price_cents, service.active) == (90, 5550, True)
    edit = f"/admin/salon/services/{service.id}"
    assert 'value="55.50"' in client.get(edit).text
    fields.pop("active")
    assert post_form(client, edit, {**fields, "name": "Colour+"}).status_code == 302
    with site.app_context():
        service = db.session().get(Service, service.id)
        assert (service.name, service.active) == ("Colour+", False)
    assert "Colour+" in client.get("/admin/salon/services").text
    assert audited(site, "service.created") and audited(site, "service.updated")
    assert client.get("/admin/salon/services/99999").status_code == 404


def test_providers_their_services_hours_and_time_off(site, business):
    client = log_in(site, "manager@example.com")
    made = post_form(
        client,
        "/admin/salon/providers/new",
        {
            "name": "Cleo",
            "email": "cleo@example.com",
            "services": str(business.service_id),
            "active": "y",
        },
    )
    assert made.status_code == 302
    with site.app_context():
        provider_id = db.session().scalar(select(Provider.id).where(Provider.name == "Cleo"))
    url = f"/admin/salon/providers/{provider_id}"
    assert made.headers["Location"].endswith(url)
    bad_email = post_form(client, url, {"name": "Cleo", "email": "nope", "active": "y"})
    assert bad_email.status_code == 422 and 'class="field-error"' in bad_email.text

    hours = {f"d{day}s0": "10:00" for day in range(5)} | {f"d{day}e0": "12:00" for day in range(5)}
    wrong = post_form(client, f"{url}/hours", {**hours, "d0e0": "09:00"}, url)
    assert wrong.status_code == 422 and "start before it ends" in wrong.text
    garbled = post_form(client, f"{url}/hours", {**hours, "d1s0": "ten"}, url)
    assert garbled.status_code == 422 and "Use times like" in garbled.text
    assert post_form(client, f"{url}/hours", hours, url).status_code == 302
    with site.app_context():
        provider = db.session().get(Provider, provider_id)
        assert sorted((h.weekday, h.starts.hour, h.ends.hour) for h in provider.working_hours) == [
            (day, 10, 12) for day in range(5)
        ]
    booking_page = client.get(
        f"/admin/salon/bookings/new?service={business.service_id}&day=2027-03-02"
    )
    assert slot_value(provider_id, "2027-03-02T10:00:00+01:00") in booking_page.text

    backwards = post_form(
        client,
        f"{url}/time-off",
        {"starts_at": "2027-03-02T12:00", "ends_at": "2027-03-02T10:00"},
        url,
    )
    assert backwards.status_code == 422 and "after the start" in backwards.text
    off = post_form(
        client,
        f"{url}/time-off",
        {"starts_at": "2027-03-02T00:00", "ends_at": "2027-03-03T00:00", "reason": "Training"},
        url,
    )
    assert off.status_code == 302
    with site.app_context():
        row = db.session().scalar(select(TimeOff).where(TimeOff.provider_id == provider_id))
        assert row.starts_at == datetime(2027, 3, 1, 23, 0, tzinfo=UTC)  # Paris midnight
    booking_page = client.get(
        f"/admin/salon/bookings/new?service={business.service_id}&day=2027-03-02"
    )
    assert slot_value(provider_id, "2027-03-02T10:00:00+01:00") not in booking_page.text
    assert "Training" in client.get(url).text
    removed = post_form(client, f"{url}/time-off/{row.id}/remove", {}, url)
    assert removed.status_code == 302
    with site.app_context():
        assert db.session().scalar(select(TimeOff).where(TimeOff.id == row.id)) is None
    assert audited(site, "provider.hours_set") and audited(site, "provider.time_off_removed")


def test_a_day_with_several_openings_keeps_them_all(site, business):
    client = log_in(site, "owner@example.com")
    url = f"/admin/salon/providers/{business.provider_id}"
    spans = {
        "d0s0": "09:00",
        "d0e0": "10:00",
        "d0s1": "11:00",
        "d0e1": "12:00",
        "d0s2": "13:00",
        "d0e2": "14:00",
    }
    assert post_form(client, f"{url}/hours", spans, url).status_code == 302
    page = client.get(url)
    assert 'name="d0s2" type="time" value="13:00"' in page.text
    overlap = post_form(client, f"{url}/hours", {**spans, "d0s1": "09:30"}, url)
    assert overlap.status_code == 422 and "must not overlap" in overlap.text
    with site.app_context():
        provider = db.session().get(Provider, business.provider_id)
        assert [(h.weekday, h.starts.hour) for h in provider.working_hours] == [
            (0, 9),
            (0, 11),
            (0, 13),
        ]


# --- staff accounts and the business -------------------------------------------------------------


def test_a_manager_creates_staff_but_never_owners(site):
    client = log_in(site, "manager@example.com")
    page = client.get("/admin/salon/staff/new")
    assert 'value="owner"' not in page.text and "password_hash" not in page.text
    assert 'type="password"' not in page.text  # invited by e-mail: nobody types it for them
    owner = post_form(
        client, "/admin/salon/staff/new", {"email": "new@example.com", "role": "owner"}
    )
    assert owner.status_code == 422
    bad = post_form(client, "/admin/salon/staff/new", {"email": "new@", "role": "staff"})
    assert bad.status_code == 422 and 'class="field-error"' in bad.text
    made = post_form(
        client, "/admin/salon/staff/new", {"email": "new@example.com", "role": "staff"}
    )
    assert made.status_code == 302
    taken = post_form(
        client, "/admin/salon/staff/new", {"email": "new@example.com", "role": "staff"}
    )
    assert taken.status_code == 422 and "Taken." in taken.text
    listing = client.get("/admin/salon/staff")
    assert "new@example.com" in listing.text and "argon2" not in listing.text
    with site.app_context():
        invitation = db.session().scalar(
            select(OutboxMessage.text_body).where(OutboxMessage.to_address == "new@example.com")
        )
    link = re.search(r"/admin/salon/invite/[A-Za-z0-9_-]+", invitation).group(0)
    newcomer = site.test_client()
    accepted = post_form(newcomer, link, {"new_password": PASSWORD, "confirm": PASSWORD})
    assert accepted.status_code == 302
    log_in(site, "new@example.com")

    new_id = user_id(site, "new@example.com")
    promote = post_form(client, f"/admin/salon/staff/{new_id}", {"role": "owner", "active": "y"})
    assert promote.status_code == 422
    owner_id = user_id(site, "owner@example.com")
    touch_owner = post_form(client, f"/admin/salon/staff/{owner_id}", {"role": "owner"})
    assert touch_owner.status_code == 422
    assert (
        post_form(client, f"/admin/salon/staff/{new_id}", {"role": "receptionist"}).status_code
        == 302
    )  # and deactivated
    with site.app_context():
        account = db.session().get(User, new_id)
        assert (account.role, account.active) == ("receptionist", False)
        live = db.session().scalars(
            select(AuthSession).where(
                AuthSession.user_id == new_id, AuthSession.revoked_at.is_(None)
            )
        )
        assert list(live) == []
    assert audited(site, "user.changed")


def test_the_owner_may_promote_and_the_last_owner_stays(site):
    client = log_in(site, "owner@example.com")
    owner_id = user_id(site, "owner@example.com")
    demote = post_form(client, f"/admin/salon/staff/{owner_id}", {"role": "manager", "active": "y"})
    assert demote.status_code == 422 and "active owner" in demote.text
    manager_id = user_id(site, "manager@example.com")
    assert (
        post_form(
            client, f"/admin/salon/staff/{manager_id}", {"role": "owner", "active": "y"}
        ).status_code
        == 302
    )


def test_only_the_owner_edits_the_business_details(site):
    manager = log_in(site, "manager@example.com")
    assert manager.get("/admin/salon/business").status_code == 403
    owner = log_in(site, "owner@example.com")
    bad = post_form(owner, "/admin/salon/business", {"name": "", "contact_email": "x"})
    assert bad.status_code == 422 and bad.text.count('class="field-error"') == 2
    saved = post_form(
        owner,
        "/admin/salon/business",
        {
            "name": "Salon Ana",
            "contact_email": "hello@salon.example",
            "phone": "+33 1 00",
            "address": "1 rue de Paris",
        },
    )
    assert saved.status_code == 302
    page = owner.get("/admin/salon/business")
    assert "hello@salon.example" in page.text and "1 rue de Paris" in page.text
    assert audited(site, "business.updated")


def test_my_sessions_lists_and_ends_sessions(site):
    first = log_in(site)
    second = log_in(site)
    page = second.get("/admin/salon/sessions")
    assert page.status_code == 200 and "My sessions" in page.text and "this one" in page.text
    ids = re.findall(r"/admin/salon/sessions/(\d+)/end", page.text)
    assert len(ids) == 1
    ended = second.post(f"/admin/salon/sessions/{ids[0]}/end", data={"csrf_token": token_of(page)})
    assert ended.status_code == 302
    assert first.get("/admin/salon/").status_code == 302


# --- who may see what ----------------------------------------------------------------------------


def test_another_tenants_user_gets_404_and_anonymous_goes_to_login(site, business):
    reference = book(site, business, "2027-03-02T10:00:00+01:00")
    stranger = log_in(site, "spa@example.com", slug="spa")
    assert stranger.get("/admin/spa/").status_code == 200
    for url in (
        "/admin/salon/",
        "/admin/salon/week",
        f"/admin/salon/bookings/{reference}",
        "/admin/salon/services",
        "/admin/salon/sessions",
    ):
        assert stranger.get(url).status_code == 404, url
    anonymous = site.test_client().get(f"/admin/salon/bookings/{reference}")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].endswith("/admin/salon/login")


# A forgotten password's pages and an invitation's: for someone who cannot log in yet.
PUBLIC_PASSWORD_PAGES = {
    "admin_passwords.forgot",
    "admin_passwords.sent",
    "admin_passwords.reset",
    "admin_passwords.invite",
}


def test_every_admin_page_requires_login(site, business):
    reference = book(site, business, "2027-03-02T10:00:00+01:00")
    values = {
        "slug": "salon",
        "reference": reference,
        "service_id": business.service_id,
        "provider_id": business.provider_id,
        "user_id": 1,
        "session_id": 1,
        "time_off_id": 1,
        "email": "ann@example.com",
    }
    client = site.test_client()
    checked = 0
    for rule in site.url_map.iter_rules():
        if not rule.rule.startswith("/admin/<slug>/") or rule.rule.startswith(
            "/admin/<slug>/login"
        ):
            continue
        if rule.endpoint.startswith("plugin_"):
            continue  # a plugin's page: 404 where it is not enabled (tested with plugin pages)
        if rule.endpoint in PUBLIC_PASSWORD_PAGES:
            continue  # for whoever cannot log in (tested in test_password_pages.py)
        url = rule.rule
        for name in rule.arguments:
            url = re.sub(rf"<(?:\w+:)?{name}>", str(values[name]), url)
        if "GET" in rule.methods:
            response = client.get(url)
            assert response.status_code == 302, url
            assert response.headers["Location"].endswith("/admin/salon/login"), url
        if "POST" in rule.methods:
            response = client.post(url, data={"reason": "x", "outcome": "completed"})
            assert response.status_code in (302, 403), url
            if response.status_code == 302:
                assert response.headers["Location"].endswith("/admin/salon/login"), url
        checked += 1
    assert checked >= 15
    assert booking_row(site, reference).status == "confirmed"


def test_a_before_data_access_refusal_closes_the_page(site, business, clock):
    reference = book(site, business, "2027-03-02T10:00:00+01:00")
    with site.app_context():
        plugin_changes.enable(site, business.tenant_id, "no-bookings", {}, clock())
    client = log_in(site)
    assert client.get(f"/admin/salon/bookings/{reference}").status_code == 403
    assert client.get("/admin/salon/").status_code == 200  # another scope


def test_platform_support_reads_the_agendas_but_is_sent_to_the_login_elsewhere(site, clock):
    with site.app_context():
        create_user(
            site,
            tenant_id=None,
            email="help@bookwell.example",
            role="support",
            password=PASSWORD,
            now=clock(),
        )
    client = site.test_client()
    page = client.get("/support/login")
    client.post(
        "/support/login",
        data={"csrf_token": token_of(page), "email": "help@bookwell.example", "password": PASSWORD},
    )
    assert client.get("/admin/salon/week").status_code == 200  # read-only, audited
    assert audited(site, "support.access")
    for url in ("/admin/salon/staff", "/admin/salon/bookings/new", "/admin/salon/services"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].endswith("/admin/salon/login")
