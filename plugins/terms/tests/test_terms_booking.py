"""No booking without the terms, through every door, and proof of each consent given."""

import hashlib
import re
from datetime import datetime

import pytest

from bookwell.core.testing import csrf_token_of

TEXT = "# Salon terms\n\nPay on the day.\n"
SLOT = "2027-03-02T10:00:00+01:00"
DETAILS = (
    "/book/salon/details?service={service}&provider={provider}&start=2027-03-02T10:00:00%2B01:00"
)


@pytest.fixture
def bookwell_settings():
    # The hooks' time limit is for slow plugins, not for a test machine shared by many runs: a
    # numbering that overran it would refuse a booking (or drop a link) these tests expect.
    return {"GUARD_TIMEOUT_SECONDS": 10}


@pytest.fixture
def terms(enable_plugin):
    return enable_plugin("terms", text=TEXT)


def staff_bookings(member, day="2027-03-02"):
    answer = member.api.get(f"bookings?from={day}&to={day}")
    assert answer.status_code == 200, answer.json
    return answer.json


def details_url(tenant):
    return DETAILS.format(service=tenant.service_id, provider=tenant.provider_id)


def send_details(browser, url, **extra):
    form = browser.get(url)
    assert form.status_code == 200, form.text
    key = re.search(r'name="form_key" value="([^"]+)"', form.text).group(1)
    data = {"csrf_token": csrf_token_of(form), "form_key": key, "name": "Ann"}
    data.update(email="ann@example.com", **extra)
    return browser.post(url, data=data)


# --- the API --------------------------------------------------------------------------------------


def test_a_booking_without_the_terms_is_refused_and_nothing_is_stored(terms, client, owner):
    answer = client.try_book(SLOT)
    assert answer.status_code == 422
    error = answer.json["error"]
    assert error["code"] == "invalid"
    assert "I accept the Terms & Conditions" in error["fields"]["consents"]
    assert staff_bookings(owner) == []


def test_a_booking_with_the_terms_keeps_proof_of_them(terms, client, owner):
    booking = client.http.post(
        client.bookings_url,
        json={
            "service_id": client.business.service_id,
            "provider_id": client.business.provider_id,
            "start": SLOT,
            "client": {"name": "Ann", "email": "ann@example.com"},
            "consents": ["terms"],
        },
        headers={"User-Agent": "Ann's browser/1.0"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert booking.status_code == 201, booking.json
    (listed,) = staff_bookings(owner)
    assert listed["consents"] == [
        {
            "id": "terms",
            "version": "1",
            "text_sha256": hashlib.sha256(TEXT.encode()).hexdigest(),
            "given_at": "2027-03-01T08:00:00+00:00",
            "ip": "198.51.100.7",
            "user_agent": "Ann's browser/1.0",
        }
    ]


def test_a_booking_made_under_new_terms_names_the_new_version(terms, enable_plugin, client, owner):
    client.book(SLOT, consents=["terms"])
    enable_plugin("terms", text=TEXT + "\nCancel a day ahead.\n")
    client.book("2027-03-02T11:00:00+01:00", consents=["terms"])
    versions = [item["consents"][0]["version"] for item in staff_bookings(owner)]
    assert versions == ["1", "2"]


def test_a_moved_booking_keeps_the_consent_it_was_made_with(terms, enable_plugin, client, owner):
    booking = client.book(SLOT, consents=["terms"])
    before = owner.api.get(f"bookings/{booking['reference']}").json["consents"]
    enable_plugin("terms", text=TEXT + "\nNew rules.\n")
    client.reschedule(booking, "2027-03-03T10:00:00+01:00")
    after = owner.api.get(f"bookings/{booking['reference']}").json["consents"]
    assert after == before and after[0]["version"] == "1"


def test_a_business_without_the_plugin_books_without_terms(client):
    assert client.book(SLOT)["status"] == "confirmed"


def test_another_business_is_not_asked_for_this_ones_terms(terms, second_client):
    assert second_client.book(SLOT)["status"] == "confirmed"


def test_a_crash_while_asking_for_the_terms_refuses_the_booking(terms, client, owner, monkeypatch):
    import bookwell.plugins.terms as plugin

    def broken(ctx, text):
        raise RuntimeError("the versions table is gone")

    monkeypatch.setattr(plugin, "version_of", broken)
    answer = client.try_book(SLOT, consents=["terms"])
    assert answer.status_code == 503
    assert answer.json["error"]["code"] == "plugin_failed"
    page = client.http.get(details_url(client.business))  # the form cannot even be shown
    assert page.status_code == 503 and "Sorry" in page.text
    monkeypatch.undo()
    assert staff_bookings(owner) == []


# --- the booking pages ----------------------------------------------------------------------------


def test_the_details_step_links_the_terms_beside_an_unticked_box(terms, client):
    page = client.http.get(details_url(client.business))
    assert page.status_code == 200
    box = re.search(r'<input type="checkbox"[^>]*value="terms"[^>]*>', page.text).group(0)
    assert "checked" not in box
    assert "I accept the Terms &amp; Conditions" in page.text
    assert 'href="http://127.0.0.1:8000/book/salon/terms/1"' in page.text


def test_the_booking_page_refuses_without_the_box_ticked(terms, client, owner):
    answer = send_details(client.http, details_url(client.business))
    assert answer.status_code == 422
    assert "Please tick this box to continue." in answer.text
    assert staff_bookings(owner) == []


def test_the_booking_page_books_with_the_box_ticked(terms, client, owner):
    answer = send_details(client.http, details_url(client.business), consents="terms")
    assert answer.status_code == 303, answer.text
    (booked,) = staff_bookings(owner)
    assert [consent["id"] for consent in booked["consents"]] == ["terms"]
    assert booked["consents"][0]["ip"] == "127.0.0.1"


# --- staff booking for a client -------------------------------------------------------------------


def staff_booking_form(tenant, **extra):
    epoch = int(datetime.fromisoformat(SLOT).timestamp())
    return {
        "service": str(tenant.service_id),
        "day": "2027-03-02",
        "slot": f"{tenant.provider_id}-{epoch}",
        "name": "Ann",
        "email": "ann@example.com",
        **extra,
    }


def test_staff_booking_for_a_client_also_needs_the_terms(terms, tenant, owner):
    form = f"/admin/salon/bookings/new?service={tenant.service_id}&day=2027-03-02"
    shown = owner.pages.get(form)
    assert 'name="consents" value="terms"' in shown.text
    assert 'href="http://127.0.0.1:8000/book/salon/terms/1"' in shown.text
    refused = owner.submit("/admin/salon/bookings/new", staff_booking_form(tenant), form_on=form)
    assert refused.status_code == 422
    assert "Please accept: I accept the Terms &amp; Conditions" in refused.text
    assert staff_bookings(owner) == []
    made = owner.submit(
        "/admin/salon/bookings/new", staff_booking_form(tenant, consents="terms"), form_on=form
    )
    assert made.status_code in (302, 303), made.text
    (booked,) = staff_bookings(owner)
    assert booked["consents"][0]["version"] == "1"


def test_staff_see_the_proof_on_the_bookings_page(terms, client, owner):
    booking = client.book(SLOT, consents=["terms"])
    page = owner.pages.get(f"/admin/salon/bookings/{booking['reference']}")
    assert page.status_code == 200
    assert '<a href="http://127.0.0.1:8000/book/salon/terms/1">terms, version 1</a>' in page.text
    assert hashlib.sha256(TEXT.encode()).hexdigest() in page.text
    assert "from 127.0.0.1" in page.text and "01 March 2027, 09:00:00" in page.text
