"""The policy in French on the client's pages (a late cancellation refused on the manage page,
the consent box, the policy's page) and in English through the JSON API, whatever the browser
prefers."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from bookwell.core.testing import csrf_token_of

pytest_plugins = ["cancellation_policy_kit"]
DEADLINE = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # 24 hours before 09:00 UTC on 2 March
FRENCH = {"Accept-Language": "fr"}
DETAILS = (
    "/book/salon/details?service={service}&provider={provider}&start=2027-03-02T10:00:00%2B01:00"
)


def test_a_late_cancellation_is_refused_in_french_on_the_manage_page(
    app, client, book, policy_on, clock, reachable
):
    booking = book()
    browser = app.test_client()
    path = f"/book/salon/manage/{booking['reference']}"
    page = browser.get(
        path, query_string={"token": booking["manage_token"], "step": "cancel", "lang": "fr"}
    )
    assert page.status_code == 200
    clock.set(DEADLINE + timedelta(hours=2))
    answer = browser.post(
        f"{path}/cancel",
        data={"csrf_token": csrf_token_of(page), "token": booking["manage_token"]},
    )
    assert answer.status_code == 403
    shown = html.unescape(answer.text)
    assert (
        "Ce rendez-vous ne peut plus être annulé en ligne. Les annulations ferment 24 heures "
        "avant le rendez-vous, et ce moment est passé le lundi 1 mars 2027 à 10:00 "
        "(heure de Europe/Paris). Pour l’annuler, veuillez contacter Salon par téléphone au "
        "+33 1 23 45 67 89, ou par e-mail à hello@salon.example, ou en personne au "
        "1 rue de la Paix, Paris."
    ) in shown
    assert client.stored(booking).status == "confirmed"


def test_the_api_refuses_the_same_cancellation_in_english(
    app, client, book, policy_on, clock, reachable
):
    booking = book()
    clock.set(DEADLINE + timedelta(hours=2))
    answer = app.test_client().post(
        f"{client.bookings_url}/{booking['reference']}/cancel",
        json={"token": booking["manage_token"]},
        headers=FRENCH,
    )
    assert answer.status_code == 403
    assert answer.json["error"]["code"] == "cancellation_window_passed"
    assert answer.json["error"]["message"].startswith(
        "This booking can no longer be cancelled online. Cancellations close 24 hours before "
        "the appointment, and that time passed on Monday 1 March 2027 at 10:00 "
        "(Europe/Paris time). To cancel it, please contact Salon by phone on"
    )


def test_the_consent_box_and_the_policy_page_read_in_french(app, client, policy_on):
    browser = app.test_client()
    url = DETAILS.format(service=client.business.service_id, provider=client.business.provider_id)
    details = browser.get(url, headers=FRENCH)
    assert details.status_code == 200
    assert "J’accepte les conditions d’annulation" in html.unescape(details.text)
    policy = html.unescape(browser.get("/book/salon/cancellation_policy/", headers=FRENCH).text)
    assert (
        "- Vous pouvez annuler en ligne jusqu’à 24 heures avant le rendez-vous, et le déplacer "
        "jusqu’à 24 heures avant."
    ) in policy
    assert "- Si vous avez payé d’avance, 100 % vous sont remboursés" in policy
    english = html.unescape(browser.get("/book/salon/cancellation_policy/?lang=en").text)
    assert "- You may cancel online up to 24 hours before the appointment" in english


def test_a_blocked_address_is_refused_in_french_on_the_staff_page(owner, policy_on):
    page = owner.pages.get("/admin/salon/cancellation_policy/", query_string={"lang": "fr"})
    assert page.status_code == 200
    refused = owner.submit(
        "/admin/salon/cancellation_policy/blocks",
        {"client": "12", "reason": "Missed three visits"},
        form_on="/admin/salon/cancellation_policy/",
    )
    assert refused.status_code == 422
    assert "Indiquez une adresse e-mail, ou un numéro de téléphone d’au moins" in html.unescape(
        refused.text
    )
