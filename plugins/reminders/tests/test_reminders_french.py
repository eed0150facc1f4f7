"""A reminder is written in the business's language (a plugin's mail speaks it): French for a
business whose default is French, with the day in French; English otherwise."""

from __future__ import annotations

import pytest

from bookwell.core.scheduling import schedule

TUESDAY_TEN = "2027-03-02T10:00:00+01:00"  # 25 hours after the clock's start


@pytest.fixture
def reminders_on(enable_plugin):
    return enable_plugin("reminders")


def remind(app, clock):
    clock.advance(hours=2)  # the appointment is now within the 24 hours before it
    with app.app_context():
        schedule.tick(app, clock())


def test_a_french_business_reminds_in_french(
    app, tenant, client, clock, outbox, reminders_on, bookwell_cli
):
    result = bookwell_cli("tenants", "set", tenant.slug, "--language", "fr")
    assert result.exit_code == 0, result.output
    booking = client.book(TUESDAY_TEN)
    remind(app, clock)
    (mail,) = outbox(kind="booking.reminder")
    assert mail.booking == booking["reference"]
    assert mail.subject.startswith("Rappel : ") and mail.subject.endswith(
        " le mardi 2 mars 2027 à 10:00"
    )
    assert "Un rappel de votre rendez-vous chez Salon :" in mail.text
    assert "mardi 2 mars 2027 à 10:00 (Europe/Paris)" in mail.text
    assert f"Référence : {booking['reference']}" in mail.text
    assert "\n\nÀ bientôt !" in mail.text


def test_an_english_business_reminds_in_english(app, client, clock, outbox, reminders_on):
    booking = client.book(TUESDAY_TEN)
    remind(app, clock)
    (mail,) = outbox(kind="booking.reminder")
    assert mail.booking == booking["reference"]
    assert mail.subject.endswith(" on Tuesday 2 March 2027 at 10:00")
    assert "A reminder of your appointment at Salon:" in mail.text
    assert "\n\nSee you soon!" in mail.text
