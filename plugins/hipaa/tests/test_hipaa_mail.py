"""Minimum necessary in mail: in HIPAA mode every e-mail about a booking, and its .ics, says
only "Appointment at <business>, <time>" (and what happened), with the client's manage link;
never the client's name, phone or notes, the service or the provider."""

from __future__ import annotations

import re

import hipaa_kit
import pytest
from sqlalchemy import create_engine, text

import bookwell.plugins.hipaa.minimum as hipaa_minimum

# The kit's fixtures: the app on HTTPS, HIPAA mode on with the owner enrolled.
app = hipaa_kit.app
hipaa = hipaa_kit.hipaa

PHONE, NOTES = "+33 6 12 34 56 78", "Diabetic; bring insulin"
TEN, ELEVEN = "2027-03-02T10:00:00+01:00", "2027-03-02T11:00:00+01:00"
WHEN_TEN = "Tuesday 2 March 2027, 10:00 (Europe/Paris)"
WHEN_ELEVEN = "Tuesday 2 March 2027, 11:00 (Europe/Paris)"
# What a message must never say: the client's name and details, the service, the providers.
NEVER = ("Ann", PHONE, "Diabetic", "Cut", "A cut.", "Ana", "Ben")


@pytest.fixture
def providers_with_mail(tenant, database_url):
    """Both providers have an address, so that they are sent their notices."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        for provider_id, address in (
            (tenant.provider_id, "ana@salon.example"),
            (tenant.second_provider_id, "ben@salon.example"),
        ):
            connection.execute(
                text("UPDATE providers SET email = :address WHERE id = :id"),
                {"address": address, "id": provider_id},
            )
    engine.dispose()


def book(client, tenant, start=TEN) -> dict:
    answer = client.post(
        service_id=tenant.service_id,
        provider_id=tenant.provider_id,
        start=start,
        client={"name": "Ann", "email": "ann@example.com", "phone": PHONE, "notes": NOTES},
    )
    assert answer.status_code == 201, answer.json
    return answer.json


def assert_minimum(mail, when: str) -> None:
    headline = f"Appointment at Salon, {when}"
    assert mail.subject == headline
    assert mail.text.startswith(headline + ".")
    for part in (mail.subject, mail.text, mail.html or "", mail.ics or ""):
        # Without the links, whose random tokens may spell anything.
        part = re.sub(r"https?://\S+", "", re.sub(r"\r\n[ \t]", "", part))
        for secret in NEVER:
            assert secret not in part, (mail.kind, secret, part)
    assert mail.html and headline in mail.html


def manage_link(booking) -> str:
    return f"/book/salon/manage/{booking['reference']}?token="


def test_every_booking_mail_says_only_when_and_where(
    hipaa, client, tenant, providers_with_mail, outbox
):
    booking = book(client, tenant)
    moved = client.post(
        f"/{booking['reference']}/reschedule",
        token=booking["manage_token"],
        start=ELEVEN,
        provider_id=tenant.second_provider_id,
    )
    assert moved.status_code == 200, moved.json
    client.cancel(booking)

    mails = [mail for mail in outbox() if mail.booking == booking["reference"]]
    kinds = [(mail.kind, mail.to) for mail in mails]
    assert kinds == [
        ("booking.confirmed", "ann@example.com"),
        ("provider.confirmed", "ana@salon.example"),
        ("booking.rescheduled", "ann@example.com"),
        ("provider.rescheduled", "ben@salon.example"),
        ("provider.cancelled", "ana@salon.example"),
        ("booking.cancelled", "ann@example.com"),
        ("provider.cancelled", "ben@salon.example"),
    ]
    confirmed, notice, rescheduled, *others = mails
    assert_minimum(confirmed, WHEN_TEN)
    assert_minimum(notice, WHEN_TEN)
    for mail in (rescheduled, *others):
        assert_minimum(mail, WHEN_ELEVEN)

    # The client keeps the manage link (but a cancelled booking has nothing left to manage);
    # providers are sent to the staff pages.
    assert manage_link(booking) in confirmed.text and manage_link(booking) in confirmed.html
    assert manage_link(booking) in rescheduled.text
    assert "manage" not in others[2].text  # booking.cancelled
    assert "Your appointment is confirmed." in confirmed.text
    assert "Your appointment was cancelled." in others[2].text
    assert "staff pages" in notice.text and "token" not in notice.text


def test_the_invitation_keeps_the_time_and_the_link_only(hipaa, client, tenant, outbox):
    booking = book(client, tenant)
    (confirmed,) = outbox(kind="booking.confirmed")
    ics = confirmed.ics
    assert "SUMMARY:Appointment at Salon" in ics
    assert "DTSTART;TZID=Europe/Paris:20270302T100000" in ics
    assert f"UID:{booking['reference']}@bookwell" in ics
    assert "BEGIN:VTIMEZONE" in ics and "METHOD:REQUEST" in ics
    unfolded = re.sub(r"\r\n[ \t]", "", ics)
    assert manage_link(booking) in unfolded
    (attendee,) = re.findall(r"^ATTENDEE.*$", unfolded, re.MULTILINE)
    assert attendee.strip() == "ATTENDEE:mailto:ann@example.com"  # no name beside it
    client.cancel(booking)
    (cancelled,) = outbox(kind="booking.cancelled")
    assert "METHOD:CANCEL" in cancelled.ics and "STATUS:CANCELLED" in cancelled.ics


def test_a_reminder_says_only_when_and_where(
    hipaa, client, tenant, enable_plugin, run_schedule, outbox
):
    enable_plugin("reminders", hours_before=48)
    book(client, tenant)
    run_schedule()
    (reminder,) = outbox(kind="booking.reminder")
    assert_minimum(reminder, WHEN_TEN)
    assert "A reminder of your appointment." in reminder.text
    assert "confirmation e-mail" in reminder.text


def test_without_hipaa_mode_mail_is_as_it_was(client, tenant, outbox):
    book(client, tenant)
    (confirmed,) = outbox(kind="booking.confirmed")
    assert "Ann" in confirmed.text and "Cut" in confirmed.subject


def test_mail_that_is_not_about_a_booking_passes_with_its_link(
    hipaa, tenant, bookwell_cli, outbox, app
):
    from bookwell.core.testing import csrf_token_of

    assert bookwell_cli("tenants", "set", "salon", "--client-accounts").exit_code == 0
    browser = app.test_client()
    form = browser.get("/book/salon/account/register")
    browser.post(
        "/book/salon/account/register",
        data={
            "csrf_token": csrf_token_of(form),
            "name": "Carla",
            "email": "carla@example.com",
            "password": "a long enough password",
        },
    )
    (verify,) = outbox(kind="account.verify")
    assert "Carla" in verify.text and "/book/salon/account/" in verify.text


def test_a_crash_of_the_filter_holds_the_mail_and_the_booking_stands(
    hipaa, client, tenant, outbox, monkeypatch
):
    def crash(ctx, message):
        raise RuntimeError("cannot tell what to leave out")

    monkeypatch.setattr(hipaa_minimum, "necessary", crash)
    booking = book(client, tenant)
    assert client.get(booking)["status"] == "confirmed"
    (held,) = outbox(kind="booking.confirmed")
    assert not held.sent
    with pytest.raises(AssertionError):
        assert_minimum(held, WHEN_TEN)  # the original, which must never leave


def test_a_booking_mail_without_its_booking_is_held(hipaa, plugin_context_for):
    from bookwell.hooks import Context, OutgoingMessage

    with plugin_context_for("hipaa") as ctx:
        bare = Context(tenant=ctx.tenant, now=ctx.now)
    message = OutgoingMessage("a@example.com", "Booked: Cut", "Hello Ann", None, None, "booking.x")
    with pytest.raises(RuntimeError):
        hipaa_minimum.necessary(bare, message)
    other = OutgoingMessage("a@example.com", "Hello", "Hello Ann", None, None, "account.verify")
    assert hipaa_minimum.necessary(bare, other) is None
