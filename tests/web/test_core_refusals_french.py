"""Core's own refusals in the page's language: a booking that can no longer be changed, on the
client's manage page and on the staff's booking page, in French; the JSON API answers the same
refusals in English, whatever the browser prefers."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from bookwell.core.testing import csrf_token_of

TUESDAY_TEN = "2027-03-02T10:00:00+01:00"
TUESDAY_TEN_UTC = datetime(2027, 3, 2, 9, tzinfo=UTC)
FRENCH = {"Accept-Language": "fr"}


def test_a_cancelled_booking_is_refused_in_french_on_the_manage_page(app, make_client):
    client = make_client()
    booking = client.book(TUESDAY_TEN)
    browser = app.test_client()
    path = f"/book/salon/manage/{booking['reference']}"
    page = browser.get(
        path, query_string={"token": booking["manage_token"], "step": "cancel", "lang": "fr"}
    )
    assert page.status_code == 200
    client.cancel(booking)  # elsewhere, while this page was open
    again = browser.post(
        f"{path}/cancel",
        data={"csrf_token": csrf_token_of(page), "token": booking["manage_token"]},
    )
    assert again.status_code == 409
    assert "Ce rendez-vous est annulé et ne peut plus être annulé." in html.unescape(again.text)
    api = app.test_client().post(
        f"{client.bookings_url}/{booking['reference']}/cancel",
        json={"token": booking["manage_token"]},
        headers=FRENCH,
    )
    assert api.status_code == 409
    assert api.json["error"]["code"] == "booking_not_changeable"
    assert api.json["error"]["message"] == (
        "This booking is cancelled and can no longer be cancelled."
    )


def test_a_started_booking_is_refused_in_french_on_the_staff_page(owner, make_client, clock):
    booking = make_client().book(TUESDAY_TEN)
    clock.set(TUESDAY_TEN_UTC + timedelta(minutes=5))
    owner.sign_in_again()  # the sessions of the day before have ended
    page = f"/admin/salon/bookings/{booking['reference']}"
    assert owner.pages.get(page, query_string={"lang": "fr"}).status_code == 200
    refused = owner.submit(f"{page}/cancel", {"reason": "Phoned in ill"}, form_on=page)
    assert refused.status_code == 409
    assert "Ce rendez-vous a déjà commencé et ne peut plus être annulé." in html.unescape(
        refused.text
    )
