"""The terms in French: the consent box on the booking page and its refusal, the public
page's date, the staff page's errors; in English through the JSON API."""

from __future__ import annotations

import html
import re

import pytest

from bookwell.core.testing import csrf_token_of

TEXT = "# Salon terms\n\nPay on the day.\n"
FRENCH = {"Accept-Language": "fr"}
DETAILS = (
    "/book/salon/details?service={service}&provider={provider}&start=2027-03-02T10:00:00%2B01:00"
)


@pytest.fixture
def bookwell_settings():
    # A numbering that overran the hooks' time limit on a busy machine would drop the box.
    return {"GUARD_TIMEOUT_SECONDS": 10}


@pytest.fixture
def terms(enable_plugin):
    return enable_plugin("terms", text=TEXT)


def test_the_consent_box_reads_in_french_and_a_booking_without_it_is_refused(app, terms, client):
    browser = app.test_client()
    url = DETAILS.format(service=client.business.service_id, provider=client.business.provider_id)
    form = browser.get(url, headers=FRENCH)
    assert form.status_code == 200
    assert "J’accepte les conditions générales" in html.unescape(form.text)
    key = re.search(r'name="form_key" value="([^"]+)"', form.text).group(1)
    refused = browser.post(
        url,
        data={
            "csrf_token": csrf_token_of(form),
            "form_key": key,
            "name": "Ann",
            "email": "ann@example.com",
        },
        headers=FRENCH,
    )
    assert refused.status_code == 422
    assert "J’accepte les conditions générales" in html.unescape(refused.text)


def test_the_api_lists_and_refuses_in_english(terms, client):
    listed = client.http.get("/api/v1/tenants/salon/booking-requirements", headers=FRENCH)
    assert [consent["label"] for consent in listed.json["consents"]] == [
        "I accept the Terms & Conditions"
    ]
    refused = client.http.post(
        client.bookings_url,
        json={
            "service_id": client.business.service_id,
            "provider_id": client.business.provider_id,
            "start": "2027-03-02T10:00:00+01:00",
            "client": {"name": "Ann", "email": "ann@example.com"},
        },
        headers=FRENCH,
    )
    assert refused.status_code == 422
    assert "Please accept: I accept the Terms & Conditions" in str(refused.json)


def test_the_public_page_dates_its_version_in_french(terms, client):
    page = client.http.get("/book/salon/terms/1", headers=FRENCH)
    assert page.status_code == 200
    assert re.search(r"Version 1, publiée le \d{1,2} [a-zéû]+ 2027", html.unescape(page.text)), (
        page.text
    )
    english = client.http.get("/book/salon/terms/1?lang=en").text
    assert re.search(r"Version 1, published \d{1,2} [A-Z][a-z]+ 2027\.", english)


def test_a_bad_day_on_the_staff_page_is_explained_in_french(terms, owner):
    owner.pages.get("/admin/salon/terms/", query_string={"lang": "fr"})
    refused = owner.pages.get("/admin/salon/terms/consents.csv", query_string={"from": "soon"})
    assert refused.status_code == 422
    assert "« from » doit être un jour, par exemple 2027-03-01." in html.unescape(refused.text)
