"""The built-in reminders plugin: one e-mail per appointment, hours_before ahead, through
on_schedule; a moved booking is reminded again, a cancelled one never."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest
from conftest import booking_body, open_every_day
from sqlalchemy import select

from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost.host import host_of
from bookwell.core.scheduling import schedule
from bookwell.core.storage import db
from bookwell.core.storage.models import OutboxMessage

SALON = "/api/v1/tenants/salon/bookings"
TUESDAY_10 = "2027-03-02T10:00:00+01:00"  # 09:00 UTC, 25 hours after the clock's start
TUESDAY_START = datetime(2027, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def app(make_app):
    return make_app(MAIL_DELIVERY="manual", BASE_URL="https://book.example")


@pytest.fixture
def salon(app, business, clock):
    """The business with reminders on, at their default of 24 hours."""
    plugin_changes.enable(app, business.tenant_id, "reminders", {}, clock())
    return business


def book(client, business, start=TUESDAY_10, name="Ann") -> dict:
    response = client.post(SALON, json=booking_body(business, start, name=name))
    assert response.status_code == 201, response.json
    return response.json


def tick(app, now, **options):
    with app.app_context():
        return schedule.tick(app, now, **options)


def tick_every(app, clock, minutes: int, until: datetime) -> None:
    """Run the schedule every ``minutes`` from the clock's time to ``until``."""
    while clock() <= until:
        tick(app, clock())
        clock.advance(minutes=minutes)


def reminders(app) -> list[OutboxMessage]:
    with db.fresh_session(app) as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == "booking.reminder")
        return list(session.scalars(query.order_by(OutboxMessage.id)))


def reminder_files(app) -> list[email.message.EmailMessage]:
    found = [
        email.message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted((Path(app.instance_path) / "outbox").glob("*.eml"))
    ]
    return [message for message in found if str(message["Subject"]).startswith("Reminder")]


def test_reminders_is_a_built_in_plugin(app):
    plugin = host_of(app).installed["reminders"]
    assert (plugin.source, plugin.status) == ("built-in", "ok")
    (hours,) = plugin.manifest.settings
    assert (hours.key, hours.type, hours.default, hours.min, hours.max) == (
        "hours_before",
        "int",
        24,
        1,
        336,
    )


def test_each_booking_is_reminded_once_however_often_the_schedule_runs(app, client, salon, clock):
    first = book(client, salon)
    second = book(client, salon, "2027-03-02T15:00:00+01:00", name="Bea")
    tick_every(app, clock, 20, until=datetime(2027, 3, 2, 16, tzinfo=UTC))
    assert sorted(row.dedupe_key for row in reminders(app)) == sorted(
        [
            f"reminder:{first['reference']}:2027-03-02T09:00:00+00:00",
            f"reminder:{second['reference']}:2027-03-02T14:00:00+00:00",
        ]
    )
    assert all(row.sent_at is not None for row in reminders(app))
    assert len(reminder_files(app)) == 2


def test_the_reminder_goes_out_hours_before_and_not_earlier(app, client, salon, clock):
    book(client, salon)
    clock.set(TUESDAY_START - timedelta(hours=24, seconds=1))
    tick(app, clock())
    assert reminders(app) == []
    clock.set(TUESDAY_START - timedelta(hours=24))
    tick(app, clock())
    (row,) = reminders(app)
    assert row.created_at == TUESDAY_START - timedelta(hours=24)


def test_the_reminder_says_what_when_where_and_how_to_cancel(app, client, salon, clock):
    booked = book(client, salon)
    clock.set(TUESDAY_START - timedelta(hours=2))
    tick(app, clock())
    (message,) = reminder_files(app)
    assert str(message["To"]) == "ann@example.com"
    assert str(message["From"]).startswith("Salon <")
    assert str(message["Subject"]) == "Reminder: Cut on Tuesday 2 March 2027 at 10:00"
    text = message.get_body(("plain",)).get_content()
    for expected in (
        "Hello Ann",
        "appointment at Salon",
        "Cut with Ana",
        "Tuesday 2 March 2027 at 10:00 (Europe/Paris)",
        booked["reference"],
        "https://book.example/book/salon/",
    ):
        assert expected in text


def test_hours_before_is_the_tenants_setting(app, client, salon, clock):
    plugin_changes.enable(app, salon.tenant_id, "reminders", {"hours_before": 2}, clock())
    book(client, salon)
    tick_every(app, clock, 30, until=TUESDAY_START - timedelta(hours=2, minutes=1))
    assert reminders(app) == []
    clock.set(TUESDAY_START - timedelta(hours=2))
    tick(app, clock())
    assert len(reminders(app)) == 1


def test_a_rescheduled_booking_is_reminded_of_its_new_time(app, client, salon, clock):
    booked = book(client, salon)
    clock.set(TUESDAY_START - timedelta(hours=20))
    tick(app, clock())
    moved = client.post(
        f"{SALON}/{booked['reference']}/reschedule",
        json={"token": booked["manage_token"], "start": "2027-03-03T10:00:00+01:00"},
    )
    assert moved.status_code == 200, moved.json
    tick_every(app, clock, 60, until=datetime(2027, 3, 3, 9, tzinfo=UTC))
    assert [row.dedupe_key for row in reminders(app)] == [
        f"reminder:{booked['reference']}:2027-03-02T09:00:00+00:00",
        f"reminder:{booked['reference']}:2027-03-03T09:00:00+00:00",
    ]


def test_a_cancelled_booking_is_not_reminded(app, client, salon, clock):
    booked = book(client, salon)
    cancelled = client.post(
        f"{SALON}/{booked['reference']}/cancel", json={"token": booked["manage_token"]}
    )
    assert cancelled.status_code == 200
    tick_every(app, clock, 60, until=TUESDAY_START)
    assert reminders(app) == []


def test_a_booking_made_inside_the_window_is_reminded_at_the_next_run(app, client, salon, clock):
    clock.set(TUESDAY_START - timedelta(hours=3))
    book(client, salon)
    tick(app, clock())
    assert len(reminders(app)) == 1


def test_an_appointment_that_has_started_is_not_reminded(app, client, salon, clock):
    clock.set(TUESDAY_START - timedelta(minutes=10))
    book(client, salon)
    clock.set(TUESDAY_START)  # the schedule did not run before the appointment began
    tick(app, clock())
    assert reminders(app) == []


def test_a_tenant_without_the_plugin_gets_no_reminders(app, client, business, clock):
    book(client, business)
    tick_every(app, clock, 60, until=TUESDAY_START)
    assert reminders(app) == []


def test_a_disabled_plugin_sends_nothing(app, client, salon, clock):
    book(client, salon)
    plugin_changes.disable(app, salon.tenant_id, "reminders", clock())
    tick_every(app, clock, 60, until=TUESDAY_START)
    assert reminders(app) == []


def test_another_tenant_is_unaffected(app, client, salon, clock):
    with db.write_transaction(app) as session:
        spa = create_tenant(session, "spa", name="Spa", timezone="UTC", now=clock())
        service = add_service(session, spa, "Massage", duration_minutes=60, slot_step_minutes=60)
        provider = add_provider(session, spa, "Cleo", [service], open_every_day())
        body = {
            "service_id": service.id,
            "provider_id": provider.id,
            "start": "2027-03-02T09:00:00+00:00",
            "client": {"name": "Cy", "email": "cy@example.com"},
        }
    assert client.post("/api/v1/tenants/spa/bookings", json=body).status_code == 201
    book(client, salon)
    tick_every(app, clock, 60, until=TUESDAY_START)
    assert [row.to_address for row in reminders(app)] == ["ann@example.com"]


def test_a_dry_run_reports_and_sends_nothing(app, client, salon, clock, caplog):
    booked = book(client, salon)
    clock.set(TUESDAY_START - timedelta(hours=1))
    with caplog.at_level("INFO", logger="bookwell.plugins.reminders"):
        (report,) = tick(app, clock(), dry_run=True)
    assert "reminders" in report.plugins
    assert reminders(app) == []
    assert f"would remind {booked['reference']}" in caplog.text
    tick(app, clock())  # the real run still sends it
    assert len(reminders(app)) == 1
    caplog.clear()
    with caplog.at_level("INFO", logger="bookwell.plugins.reminders"):
        tick(app, clock(), dry_run=True)
    assert "would remind" not in caplog.text  # sent already: nothing left to preview
