"""Booking and account mail in the reader's language: the client's when the booking request
said it, else the business's default; a provider's notice always in the business's default."""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar
import pytest
from sqlalchemy import select

from bookwell.core import testing
from bookwell.core.storage import db
from bookwell.core.storage.models import OutboxMessage, Provider, Tenant

BOOKINGS = "/api/v1/tenants/salon/bookings"
MONDAY = "2026-11-30T14:30:00+01:00"  # Monday 30 November 2026, 14:30 in Paris


@pytest.fixture
def app(make_app):
    return make_app(MAIL_DELIVERY="manual", BASE_URL="https://book.example")


@pytest.fixture
def salon(app, clock):
    """The test business (a 30.00 EUR cut), its clock a week before the booked Monday."""
    clock.set(datetime(2026, 11, 23, 8, tzinfo=UTC))
    business = testing.open_business(app, clock())
    with db.write_transaction(app) as session:
        session.get(Provider, business.provider_id).email = "ana@salon.example"
    return business


def speaking(app, business, language: str) -> None:
    with db.write_transaction(app) as session:
        session.get(Tenant, business.tenant_id).language = language


def book(app, business, **headers) -> dict:
    body = {
        "service_id": business.service_id,
        "provider_id": business.provider_id,
        "start": MONDAY,
        "client": {"name": "Ann", "email": "ann@example.com"},
    }
    answer = app.test_client().post(BOOKINGS, json=body, headers=headers)
    assert answer.status_code == 201, answer.json
    return answer.json


def mail(app, kind: str) -> OutboxMessage:
    with db.fresh_session(app) as session:
        (row,) = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind))
        return row


def test_a_french_business_confirms_in_french_with_french_dates_and_prices(app, salon):
    speaking(app, salon, "fr")
    book(app, salon)
    row = mail(app, "booking.confirmed")
    assert row.subject == (
        "Rendez-vous confirmé : Cut le lundi 30 novembre 2026, 14:30 (Europe/Paris)"
    )
    for body in (row.text_body, row.html_body):
        assert "Bonjour Ann," in body
        assert "lundi 30 novembre 2026, 14:30" in body
        assert "Consulter, déplacer ou annuler votre rendez-vous" in body
        assert "Hello" not in body and "Monday" not in body
    assert "Votre rendez-vous chez Salon est confirmé." in row.text_body
    assert "Votre rendez-vous chez <strong>Salon</strong> est confirmé." in row.html_body
    assert '<html lang="fr">' in row.html_body
    event = icalendar.Calendar.from_ical(row.ics).walk("VEVENT")[0]
    description = str(event["DESCRIPTION"])
    assert description.startswith("Cut avec Ana chez Salon (référence ")
    assert "Pour consulter, déplacer ou annuler ce rendez-vous : https://book.example/" in (
        description
    )


def test_a_french_business_shows_its_price_the_french_way(app, salon):
    speaking(app, salon, "fr")
    with db.write_transaction(app) as session:
        # A discount makes the mail show the price, the discount and what is left to pay.
        tenant = session.get(Tenant, salon.tenant_id)
        tenant.address = "12 rue de la Paix, Paris"
    booked = book(app, salon)
    from bookwell.core.booking import lifecycle
    from bookwell.core.mail import compose

    with app.app_context(), db.fresh_session(app) as session:
        booking = lifecycle.find_booking(session, salon.tenant_id, booked["reference"])
        tenant = session.get(Tenant, salon.tenant_id)
        facts = compose.BookingFacts(
            tenant=tenant,
            booking=compose.BookedAs.of(booking, discount_cents=500, discount_label="Fidélité"),
            service=booking.service,
            provider=booking.provider,
            now=datetime(2026, 11, 23, 8, tzinfo=UTC),
        )
        message = compose.client_message(app, facts, compose.CONFIRMED)
    assert "Prix : 30,00\xa0€" in message.text
    assert "Remise : Fidélité, -5,00\xa0€" in message.text
    assert "À régler : 25,00\xa0€" in message.text
    assert "Adresse : 12 rue de la Paix, Paris" in message.text


def test_the_clients_language_at_booking_time_wins_over_the_business_default(app, salon):
    speaking(app, salon, "fr")
    book(app, salon, **{"Accept-Language": "en-GB,en;q=0.8"})
    row = mail(app, "booking.confirmed")
    assert row.subject == "Booking confirmed: Cut on Monday 30 November 2026, 14:30 (Europe/Paris)"
    assert "€30.00" not in row.text_body  # no discount: no price line, in either language
    notice = mail(app, "provider.confirmed")  # the provider reads the business's language
    assert notice.subject.startswith("Nouveau rendez-vous : Cut avec Ann le lundi 30 novembre")
    assert "Un nouveau rendez-vous a été pris." in notice.text_body


def test_an_english_business_writes_to_a_french_client_in_french(app, salon):
    book(app, salon, **{"Accept-Language": "fr-FR,fr;q=0.9"})
    assert mail(app, "booking.confirmed").subject.startswith("Rendez-vous confirmé : Cut le lundi")
    assert mail(app, "provider.confirmed").subject.startswith("New booking: Cut with Ann on")


def test_a_language_bookwell_does_not_speak_falls_back_to_the_business_default(app, salon):
    speaking(app, salon, "fr")
    book(app, salon, **{"Accept-Language": "de-DE,de;q=0.9"})
    assert mail(app, "booking.confirmed").subject.startswith("Rendez-vous confirmé")


def test_mail_composed_later_from_its_placeholder_keeps_the_clients_language(
    app, salon, monkeypatch
):
    """The delivery job composes what the request left behind: from the sealed facts, which
    keep the language the client booked in."""
    from bookwell.core.booking import mailing
    from bookwell.core.mail import outbox

    monkeypatch.setattr(mailing, "compose_after_commit", lambda *args, **kwargs: None)
    book(app, salon, **{"Accept-Language": "fr"})
    with db.fresh_session(app) as session:
        assert session.scalars(select(OutboxMessage.compose_event)).all() == ["confirmed"]
    assert outbox.compose_placeholders(app, datetime(2026, 11, 24, tzinfo=UTC), 10) == 1
    assert mail(app, "booking.confirmed").subject.startswith("Rendez-vous confirmé : Cut le")
