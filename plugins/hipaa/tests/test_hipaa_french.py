"""HIPAA mode in French: the emergency page's errors on a French page, the owners' e-mail and
the minimum-necessary rewrite of booking mail in the business's language (a plugin's mail
speaks it); the API's refusal to platform support stays English."""

from __future__ import annotations

import html

import hipaa_kit
import pytest
from hipaa_kit import add_support_user, enrol

from bookwell.core.testing import BearerClient

# The kit's fixtures: the app on HTTPS, HIPAA mode on with the owner enrolled.
app = hipaa_kit.app
hipaa = hipaa_kit.hipaa

PAGE = "/admin/salon/hipaa/emergency"
REASON = "Patient collapsed in the waiting room; need their booking history"


@pytest.fixture
def in_french(tenant, bookwell_cli):
    result = bookwell_cli("tenants", "set", tenant.slug, "--language", "fr")
    assert result.exit_code == 0, result.output


def test_an_unknown_address_is_refused_in_french_on_the_emergency_page(
    staff_member, owner, hipaa, clock
):
    enrol(staff_member, clock)
    assert staff_member.pages.get(PAGE, query_string={"lang": "fr"}).status_code == 200
    refused = staff_member.submit(PAGE, {"email": "nobody@example.com", "reason": REASON})
    assert refused.status_code == 422
    shown = html.unescape(refused.text)
    assert "Cet établissement n’a aucun rendez-vous pour cette adresse : vérifiez-la." in shown
    short = staff_member.submit(PAGE, {"email": "nobody@example.com", "reason": "why"})
    assert "Une raison de 10 à 1000 caractères." in html.unescape(short.text)


def test_the_owners_are_told_in_the_business_language(
    staff_member, owner, hipaa, client, clock, outbox, in_french
):
    enrol(staff_member, clock)
    client.book("2027-03-02T10:00:00+01:00")
    taken = staff_member.submit(PAGE, {"email": "ann@example.com", "reason": REASON})
    assert taken.status_code == 200
    (mail,) = outbox(kind="hipaa.emergency_access")
    assert mail.subject == "Accès d’urgence utilisé chez Salon"
    assert "vient d’utiliser un accès d’urgence au dossier d’un client pour une heure" in (
        mail.text
    )


def test_booking_mail_is_rewritten_in_the_business_language(hipaa, client, outbox, in_french):
    booking = client.book("2027-03-02T10:00:00+01:00")
    (mail,) = [m for m in outbox(kind="booking.confirmed") if m.booking == booking["reference"]]
    headline = "Rendez-vous chez Salon, mardi 2 mars 2027, 10:00 (Europe/Paris)"
    assert mail.subject == headline
    assert mail.text.startswith(headline + ".\n\nVotre rendez-vous est confirmé.")
    assert "Le consulter, le déplacer ou l’annuler :" in mail.text
    assert "SUMMARY:Rendez-vous chez Salon" in mail.ics


def test_support_is_refused_in_english_through_the_api(app, owner, hipaa, clock, bookwell_cli):
    support = BearerClient(app.test_client(), "salon", add_support_user(app, clock, bookwell_cli))
    answer = support.get("bookings", headers={"Accept-Language": "fr"})
    assert answer.status_code == 403
    assert answer.json["error"]["code"] == "support_access_not_granted"
    assert answer.json["error"]["message"].startswith("This business is in HIPAA mode:")
