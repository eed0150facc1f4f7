"""Booking e-mail: written with the booking, sent once from the outbox, retried on failure."""

from __future__ import annotations

import dataclasses
import email
import socket
import socketserver
import threading
import time
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import icalendar
import pytest
from conftest import booking_body
from sqlalchemy import select

from bookwell.core.booking import lifecycle
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.mail import deliver_due, outbox
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.scheduling import schedule
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, OutboxMessage, Provider, Tenant
from bookwell.hooks import Manifest, hookimpl

BOOKINGS = "/api/v1/tenants/salon/bookings"
SLOT = "2027-03-02T10:00:00+01:00"  # a Tuesday, 09:00 UTC
BASE_URL = "https://book.example"
ADDRESS = "12 rue de la Paix, 75002 Paris"


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


class Tagging:
    MANIFEST = manifest("tagging")

    @hookimpl
    def filter_message(ctx, settings, message):
        return dataclasses.replace(message, subject=f"[{ctx.tenant.name}] {message.subject}")


class Silent:
    MANIFEST = manifest("silent")

    @hookimpl
    def filter_message(ctx, settings, message):
        return None


class Shouting:
    MANIFEST = manifest("shouting")

    @hookimpl
    def filter_message(ctx, settings, message):
        return dataclasses.replace(message, subject=message.subject.upper())


class Nonsense:
    MANIFEST = manifest("nonsense")

    @hookimpl
    def filter_message(ctx, settings, message):
        return "not a message"


class Broken:
    MANIFEST = manifest("broken-filter")

    @hookimpl
    def filter_message(ctx, settings, message):
        raise RuntimeError("filter crashed")


@pytest.fixture
def app(make_app):
    return make_app(
        MAIL_DELIVERY="manual",
        BASE_URL=BASE_URL,
        EXTRA_PLUGINS=[Tagging, Silent, Shouting, Nonsense, Broken],
    )


@pytest.fixture
def salon(app, business):
    """The business with an address, a contact e-mail and a provider with an e-mail."""
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, business.tenant_id)
        tenant.address = ADDRESS
        tenant.contact_email = "hello@salon.example"
        session.get(Provider, business.provider_id).email = "ana@salon.example"
    return business


def rows(app, **where) -> list[OutboxMessage]:
    with db.fresh_session(app) as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for key, value in where.items():
            query = query.where(getattr(OutboxMessage, key) == value)
        return list(session.scalars(query))


def book(http, business, start=SLOT, **kwargs):
    response = http.post(BOOKINGS, json=booking_body(business, start, **kwargs))
    assert response.status_code == 201, response.json
    return response.json


def outbox_files(app) -> list[Path]:
    folder = Path(app.instance_path) / "outbox"
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def parsed(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def header(message: email.message.EmailMessage, name: str) -> str:
    # Python's parser keeps the leading space of a header folded right after its colon.
    return str(message[name]).strip()


def message_to(app, address: str) -> email.message.EmailMessage:
    found = [parsed(path) for path in outbox_files(app)]
    found = [message for message in found if header(message, "To") == address]
    assert len(found) == 1, [message["Subject"] for message in found]
    return found[0]


def parts(message: email.message.EmailMessage) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if not part.is_multipart():
            found[part.get_content_type()] = part.get_content()
    return found


def calendar_of(text: str) -> tuple[icalendar.Calendar, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(text)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


# --- enqueueing --------------------------------------------------------------------------------


def test_a_booking_enqueues_the_confirmation_and_the_provider_notice(app, client, salon, clock):
    booked = book(client, salon)
    messages = rows(app)
    assert [(row.kind, row.to_address) for row in messages] == [
        ("booking.confirmed", "ann@example.com"),
        ("provider.confirmed", "ana@salon.example"),
    ]
    for row in messages:
        assert row.tenant_id == salon.tenant_id
        assert row.booking_id is not None
        assert row.sent_at is None and row.attempts == 0 and row.last_error is None
        assert row.next_attempt_at == clock() and row.created_at == clock()
    client_row = messages[0]
    assert (
        client_row.subject == "Booking confirmed: Cut on Tuesday 2 March 2027, 10:00 (Europe/Paris)"
    )
    link = f"{BASE_URL}/book/salon/manage/{booked['reference']}?token={booked['manage_token']}"
    assert link in client_row.text_body and link in client_row.html_body
    assert "ann@example.com" in messages[1].text_body  # the provider learns who comes
    assert messages[1].ics is None
    assert len({row.message_id for row in messages}) == 2


def test_a_refused_booking_enqueues_nothing(app, client, salon):
    book(client, salon)
    taken = client.post(BOOKINGS, json=booking_body(salon, SLOT, name="Bob"))
    assert taken.status_code == 409
    assert len(rows(app)) == 2


def test_mail_is_written_in_the_bookings_own_transaction(app, salon, clock, monkeypatch):
    """A failure after the mail's placeholder was written rolls back the booking and its mail
    alike."""
    real = lifecycle.mailing.write_placeholder

    def enqueue_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("after the mail was enqueued")

    monkeypatch.setattr(lifecycle.mailing, "write_placeholder", enqueue_then_fail)
    with app.app_context(), pytest.raises(RuntimeError):
        lifecycle.create_booking(
            app,
            tenant_id=salon.tenant_id,
            service_id=salon.service_id,
            provider_id=salon.provider_id,
            start=datetime.fromisoformat(SLOT),
            client=lifecycle.ClientDetails("Ann", "ann@example.com"),
            now=clock(),
        )
    assert rows(app) == []


def test_a_provider_without_an_email_gets_no_notice(app, client, business):
    book(client, business)
    assert [row.kind for row in rows(app)] == ["booking.confirmed"]


def test_html_is_escaped_and_text_is_not(app, client, salon):
    book(client, salon, client={"name": "Ann <b>&</b>", "email": "ann@example.com"})
    client_row = rows(app, kind="booking.confirmed")[0]
    assert "Hello Ann <b>&</b>," in client_row.text_body
    assert "Hello Ann &lt;b&gt;&amp;&lt;/b&gt;," in client_row.html_body


# --- delivery ------------------------------------------------------------------------------------


def test_delivery_writes_each_message_once_as_an_eml_file(app, client, salon, clock):
    booked = book(client, salon)
    first = deliver_due(app, clock())
    assert (first.claimed, first.sent, first.failed) == (2, 2, 0)
    assert len(outbox_files(app)) == 2
    assert all(row.sent_at == clock() and row.claimed_until is None for row in rows(app))
    again = deliver_due(app, clock() + timedelta(hours=1))
    assert (again.claimed, again.sent) == (0, 0)
    assert len(outbox_files(app)) == 2

    message = message_to(app, "ann@example.com")
    assert message["From"].addresses[0].display_name == "Salon"
    assert message["From"].addresses[0].addr_spec == "no-reply@bookwell.invalid"
    assert message["Reply-To"] == "hello@salon.example"
    assert header(message, "Message-ID") == rows(app, kind="booking.confirmed")[0].message_id
    found = parts(message)
    link = f"{BASE_URL}/book/salon/manage/{booked['reference']}?token={booked['manage_token']}"
    assert link in found["text/plain"]
    assert f'href="{link}"' in found["text/html"].replace("&amp;", "&")
    assert "Tuesday 2 March 2027, 10:00 (Europe/Paris)" in found["text/plain"]
    (attachment,) = [part for part in message.walk() if part.get_filename() == "invite.ics"]
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "REQUEST"

    calendar, event = calendar_of(found["text/calendar"])
    assert calendar["METHOD"] == "REQUEST"
    assert str(event["UID"]) == f"{booked['reference']}@bookwell"
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    start = event.decoded("DTSTART")
    assert (start.hour, start.minute, start.utcoffset()) == (10, 0, timedelta(hours=1))
    assert start == datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2027, 3, 2, 9, 30, tzinfo=UTC)
    assert str(event["LOCATION"]) == ADDRESS
    assert str(event["SUMMARY"]) == "Cut – Salon"
    assert event["SEQUENCE"] == 0
    assert [str(zone["TZID"]) for zone in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]

    notice = message_to(app, "ana@salon.example")
    assert "A new booking was made." in parts(notice)["text/plain"]
    assert not any(part.get_filename() for part in notice.walk())


def test_two_concurrent_deliveries_send_every_message_once(make_app, app, client, salon, clock):
    for index, hour in enumerate((10, 11, 12, 13)):
        book(client, salon, f"2027-03-02T{hour}:00:00+01:00", name=f"Client{index}")
    other = make_app(MAIL_DELIVERY="manual", BASE_URL=BASE_URL)  # a second worker process
    barrier = threading.Barrier(2)
    reports = []

    def worker(which):
        barrier.wait()
        reports.append(deliver_due(which, clock()))

    threads = [threading.Thread(target=worker, args=(each,)) for each in (app, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report.sent for report in reports) == 8
    assert sum(report.claimed for report in reports) == 8
    assert len(outbox_files(app)) == 8
    assert all(row.sent_at is not None for row in rows(app))


def test_a_claimed_message_is_not_sent_again_until_its_lease_ends(app, client, salon, clock):
    """A worker that died after claiming: its messages wait for the lease, then go out; the
    file transport writes the same file again rather than a second one."""
    book(client, salon)
    with db.write_transaction(app) as session:
        for row in session.scalars(select(OutboxMessage)):
            row.claimed_until = clock() + outbox.LEASE
    assert deliver_due(app, clock()).claimed == 0
    later = clock() + outbox.LEASE + timedelta(seconds=1)
    assert deliver_due(app, later).sent == 2
    # Re-sending one (as after a crash between sending and marking) keeps one file per message.
    with db.write_transaction(app) as session:
        session.scalars(select(OutboxMessage)).first().sent_at = None
    assert deliver_due(app, later).sent == 1
    assert len(outbox_files(app)) == 2


def test_a_round_claims_the_oldest_due_first_up_to_its_limit(app, client, salon, clock):
    """One statement claims a round's batch: the messages due longest first, never more than
    the limit, never one held or still a placeholder; the rest wait for the next round."""
    for index, hour in enumerate((10, 11, 12)):
        book(client, salon, f"2027-03-02T{hour}:00:00+01:00", name=f"Client{index}")
    with db.write_transaction(app) as session:
        messages = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        assert len(messages) == 6  # each booking: the client's confirmation, the provider's notice
        # Due in the reverse order of their ids (the last longest), one held, one a placeholder.
        for minutes, row in enumerate(messages):
            row.next_attempt_at = clock() - timedelta(minutes=minutes + 1)
        messages[0].next_attempt_at = outbox.HELD_UNTIL
        messages[1].compose_event = "confirmed"
        expected_order = [row.message_id for row in reversed(messages[2:])]
    first = outbox._claim(app, clock(), 3, None)
    assert [envelope.message_id for envelope in first] == expected_order[:3]
    assert all(envelope.business == "Salon" for envelope in first)
    second = outbox._claim(app, clock(), 3, None)
    assert [envelope.message_id for envelope in second] == expected_order[3:]
    assert outbox._claim(app, clock(), 3, None) == []


def test_storage_chooses_the_outbox_folder(make_app, tmp_path, clock):
    app = make_app(MAIL_DELIVERY="manual", STORAGE=str(tmp_path / "elsewhere"))
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, "shop", name="Shop", timezone="UTC", now=clock())
        from bookwell.core.mail import OutgoingMessage

        outbox.enqueue(
            session,
            OutgoingMessage("x@example.com", "Hi", "Hello", None, None, "test"),
            tenant.id,
            None,
            clock(),
        )
    assert deliver_due(app, clock()).sent == 1
    assert len(list((tmp_path / "elsewhere" / "outbox").glob("*.eml"))) == 1


# --- reschedule and cancel -----------------------------------------------------------------------


def test_a_reschedule_sends_the_new_time_with_a_higher_sequence(app, client, salon, clock):
    booked = book(client, salon)
    moved = client.post(
        f"{BOOKINGS}/{booked['reference']}/reschedule",
        json={"token": booked["manage_token"], "start": "2027-03-03T14:00:00+01:00"},
    )
    assert moved.status_code == 200, moved.json
    assert [row.kind for row in rows(app)][2:] == ["booking.rescheduled", "provider.rescheduled"]
    deliver_due(app, clock())
    message = [
        parsed(path)
        for path in outbox_files(app)
        if header(parsed(path), "Subject").startswith("Booking moved: Cut now")
    ][0]
    text = parts(message)["text/plain"]
    assert "moved from Tuesday 2 March 2027, 10:00 (Europe/Paris)" in text
    assert "Wednesday 3 March 2027, 14:00 (Europe/Paris)" in text
    calendar, event = calendar_of(parts(message)["text/calendar"])
    assert calendar["METHOD"] == "REQUEST"
    assert event["SEQUENCE"] == 1
    assert str(event["UID"]) == f"{booked['reference']}@bookwell"
    assert event.decoded("DTSTART") == datetime(2027, 3, 3, 13, 0, tzinfo=UTC)


def test_a_client_change_with_the_token_links_back(app, client, salon, clock):
    booked = book(client, salon)
    with app.app_context():
        lifecycle.reschedule_booking(
            app,
            tenant_id=salon.tenant_id,
            reference=booked["reference"],
            authorise=lambda booking: None,
            start=datetime.fromisoformat("2027-03-03T14:00:00+01:00"),
            now=clock(),
            manage_token=booked["manage_token"],
        )
    row = rows(app, kind="booking.rescheduled")[0]
    link = f"{BASE_URL}/book/salon/manage/{booked['reference']}?token={booked['manage_token']}"
    assert link in row.text_body


def test_a_move_to_another_provider_tells_both(app, client, salon, clock):
    with db.write_transaction(app) as session:
        session.get(Provider, salon.second_provider_id).email = "ben@salon.example"
    booked = book(client, salon)
    moved = client.post(
        f"{BOOKINGS}/{booked['reference']}/reschedule",
        json={
            "token": booked["manage_token"],
            "start": SLOT,
            "provider_id": salon.second_provider_id,
        },
    )
    assert moved.status_code == 200, moved.json
    assert [(row.kind, row.to_address) for row in rows(app)][2:] == [
        ("booking.rescheduled", "ann@example.com"),
        ("provider.rescheduled", "ben@salon.example"),
        ("provider.cancelled", "ana@salon.example"),
    ]


def test_a_cancellation_sends_a_cancel_invitation(app, client, salon, clock):
    booked = book(client, salon)
    cancelled = client.post(
        f"{BOOKINGS}/{booked['reference']}/cancel", json={"token": booked["manage_token"]}
    )
    assert cancelled.status_code == 200, cancelled.json
    kinds = [(row.kind, row.to_address) for row in rows(app)]
    assert kinds[2:] == [
        ("booking.cancelled", "ann@example.com"),
        ("provider.cancelled", "ana@salon.example"),
    ]
    deliver_due(app, clock())
    message = [
        parsed(path)
        for path in outbox_files(app)
        if header(parsed(path), "Subject").startswith("Booking cancelled")
        and header(parsed(path), "To") == "ann@example.com"
    ][0]
    assert "has been cancelled" in parts(message)["text/plain"]
    (attachment,) = [part for part in message.walk() if part.get_filename() == "invite.ics"]
    assert attachment.get_param("method") == "CANCEL"
    calendar, event = calendar_of(attachment.get_content())
    assert calendar["METHOD"] == "CANCEL"
    assert event["STATUS"] == "CANCELLED"
    assert event["SEQUENCE"] == 1
    assert str(event["UID"]) == f"{booked['reference']}@bookwell"


# --- filter_message ------------------------------------------------------------------------------


def enable(app, business, clock, *names):
    for name in names:
        plugin_changes.enable(app, business.tenant_id, name, {}, clock())


def test_filter_message_changes_what_is_sent(app, client, salon, clock):
    enable(app, salon, clock, "silent", "tagging")
    book(client, salon)
    assert all(row.subject.startswith("[Salon] ") for row in rows(app))
    deliver_due(app, clock())
    assert header(parsed(outbox_files(app)[0]), "Subject").startswith("[Salon] ")


def test_filters_apply_one_after_another(app, client, salon, clock):
    enable(app, salon, clock, "tagging", "shouting")
    book(client, salon)
    for row in rows(app):
        assert row.subject.upper().startswith("[SALON] ")
        assert "BOOKING CONFIRMED" in row.subject or "NEW BOOKING" in row.subject


def test_a_filter_answering_nonsense_holds_the_message(app, client, salon, clock):
    enable(app, salon, clock, "nonsense")
    book(client, salon)
    assert all(row.last_error.startswith("held: filter_message of nonsense") for row in rows(app))
    assert deliver_due(app, clock()).claimed == 0


def test_a_failing_filter_holds_the_message_but_not_the_booking(app, client, salon, clock):
    enable(app, salon, clock, "broken-filter")
    book(client, salon)
    held = rows(app)
    assert len(held) == 2
    assert all(row.last_error.startswith("held: filter_message of broken-filter") for row in held)
    assert all(row.next_attempt_at == outbox.HELD_UNTIL for row in held)
    assert deliver_due(app, clock() + timedelta(days=365)).claimed == 0
    assert outbox_files(app) == []


def test_a_filter_of_another_tenant_does_not_apply(app, client, salon, clock):
    with db.write_transaction(app) as session:
        other = create_tenant(session, "other", name="Other", timezone="UTC", now=clock())
    plugin_changes.enable(app, other.id, "tagging", {}, clock())
    book(client, salon)
    assert not any(row.subject.startswith("[") for row in rows(app))


# --- failure and retry ---------------------------------------------------------------------------


class _Recorder(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept mail, recording each (recipients, data)."""

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        recipients, lines, reading = [], [], False
        while line := self.rfile.readline():
            if reading:
                if line.rstrip(b"\r\n") == b".":
                    self.server.received.append((recipients, b"".join(lines)))
                    recipients, lines, reading = [], [], False
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                continue
            command = line[:4].upper()
            if command == b"EHLO":
                self.wfile.write(b"250-test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                continue
            if command == b"MAIL":
                self.server.mail_commands.append(line)
            if command == b"RCPT":
                recipients.append(line.split(b":", 1)[1].strip().strip(b"<>").decode())
            if command == b"DATA":
                reading = True
                self.wfile.write(b"354 go on\r\n")
            elif command == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    server.received = []
    server.mail_commands = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_smtp_delivers_each_message_once(app, client, salon, clock, smtp_server):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{smtp_server.server_address[1]}"
    book(client, salon)
    assert deliver_due(app, clock()).sent == 2
    assert deliver_due(app, clock()).claimed == 0
    assert sorted(to for to, _ in smtp_server.received) == [
        ["ana@salon.example"],
        ["ann@example.com"],
    ]
    assert outbox_files(app) == []
    sent = email.message_from_bytes(
        next(data for to, data in smtp_server.received if to == ["ann@example.com"]),
        policy=policy.default,
    )
    assert header(sent, "Message-ID") == rows(app, kind="booking.confirmed")[0].message_id
    assert "invite.ics" in [part.get_filename() for part in sent.walk()]


def test_a_mail_failure_never_fails_the_booking_and_is_retried(
    app, client, salon, clock, smtp_server
):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{closed_port()}"
    book(client, salon)
    report = deliver_due(app, clock())
    assert (report.claimed, report.sent, report.failed) == (2, 0, 2)
    for row in rows(app):
        assert row.sent_at is None and row.attempts == 1 and row.claimed_until is None
        assert "ConnectionRefusedError" in row.last_error
        assert row.next_attempt_at == clock() + timedelta(minutes=1)
    assert deliver_due(app, clock()).claimed == 0  # not before the backoff
    clock.advance(minutes=1)
    assert deliver_due(app, clock()).failed == 2
    assert {row.next_attempt_at for row in rows(app)} == {clock() + timedelta(minutes=5)}
    assert {row.attempts for row in rows(app)} == {2}

    clock.advance(minutes=5)
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{smtp_server.server_address[1]}"
    assert deliver_due(app, clock()).sent == 2
    assert all(row.sent_at == clock() and row.attempts == 2 for row in rows(app))
    clock.advance(hours=3)
    assert deliver_due(app, clock()).claimed == 0
    assert len(smtp_server.received) == 2


def test_backoff_grows_and_is_capped_then_gives_up():
    assert [outbox.backoff(n) for n in (1, 2, 3, 4, 5, 9)] == [
        timedelta(minutes=minutes) for minutes in (1, 5, 30, 120, 120, 120)
    ]


def test_a_message_that_keeps_failing_is_held_after_the_last_attempt(app, client, salon, clock):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{closed_port()}"
    book(
        client,
        salon,
    )
    with db.write_transaction(app) as session:
        for row in session.scalars(select(OutboxMessage)):
            row.attempts = outbox.MAX_ATTEMPTS - 1
    deliver_due(app, clock())
    for row in rows(app):
        assert row.attempts == outbox.MAX_ATTEMPTS
        assert row.next_attempt_at == outbox.HELD_UNTIL
        assert row.last_error.startswith("gave up after")


def test_background_delivery_follows_a_booking(make_app, clock):
    app = make_app(BASE_URL=BASE_URL)  # MAIL_DELIVERY defaults to "background"
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, "salon", name="Salon", timezone="Europe/Paris", now=clock())
        service = add_service(
            session, tenant, "Cut", duration_minutes=30, slot_step_minutes=30, horizon_days=365
        )
        from conftest import open_every_day

        provider = add_provider(session, tenant, "Ana", [service], open_every_day())
        ids = (tenant.id, service.id, provider.id)
    response = app.test_client().post(
        BOOKINGS,
        json={
            "service_id": ids[1],
            "provider_id": ids[2],
            "start": SLOT,
            "client": {"name": "Ann", "email": "ann@example.com"},
        },
    )
    assert response.status_code == 201, response.json
    deadline = time.monotonic() + 10
    while not outbox_files(app) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(outbox_files(app)) == 1
    while rows(app)[0].sent_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows(app)[0].sent_at is not None


def test_background_delivery_failing_does_not_fail_the_booking(make_app, clock):
    app = make_app(SMTP_URL=f"smtp://127.0.0.1:{closed_port()}")
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, "salon", name="Salon", timezone="Europe/Paris", now=clock())
        service = add_service(
            session, tenant, "Cut", duration_minutes=30, slot_step_minutes=30, horizon_days=365
        )
        from conftest import open_every_day

        provider = add_provider(session, tenant, "Ana", [service], open_every_day())
        ids = (service.id, provider.id)
    response = app.test_client().post(
        BOOKINGS,
        json={
            "service_id": ids[0],
            "provider_id": ids[1],
            "start": SLOT,
            "client": {"name": "Ann", "email": "ann@example.com"},
        },
    )
    assert response.status_code == 201, response.json
    deadline = time.monotonic() + 10
    while rows(app)[0].attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    row = rows(app)[0]
    assert row.attempts == 1 and row.sent_at is None and row.last_error


# --- tenants and tick ----------------------------------------------------------------------------


def test_each_tenants_mail_is_its_own_and_tick_sends_it(app, client, salon, clock):
    with db.write_transaction(app) as session:
        other = create_tenant(session, "barber", name="Barber", timezone="UTC", now=clock())
        service = add_service(
            session, other, "Shave", duration_minutes=30, slot_step_minutes=30, horizon_days=365
        )
        from conftest import open_every_day

        provider = add_provider(session, other, "Cy", [service], open_every_day())
        other_ids = (other.id, service.id, provider.id)
    book(client, salon)
    response = client.post(
        "/api/v1/tenants/barber/bookings",
        json={
            "service_id": other_ids[1],
            "provider_id": other_ids[2],
            "start": "2027-03-02T10:00:00+00:00",
            "client": {"name": "Dan", "email": "dan@example.com"},
        },
    )
    assert response.status_code == 201, response.json
    assert {row.to_address for row in rows(app, tenant_id=other_ids[0])} == {"dan@example.com"}
    assert {row.to_address for row in rows(app, tenant_id=salon.tenant_id)} == {
        "ann@example.com",
        "ana@salon.example",
    }
    only_barber = deliver_due(app, clock(), tenant_id=other_ids[0])
    assert only_barber.sent == 1
    assert parsed(outbox_files(app)[0])["From"].addresses[0].display_name == "Barber"
    with app.app_context():
        assert schedule.tick(app, clock(), dry_run=True)[0].mail is None
        reports = {report.tenant: report.mail for report in schedule.tick(app, clock())}
    assert reports["salon"].sent == 2 and reports["barber"].sent == 0
    assert len(outbox_files(app)) == 3


def test_the_mail_command_sends_and_counts(app, client, salon, database_url, monkeypatch):
    from click.testing import CliRunner

    from bookwell.core.cli.root import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    book(client, salon)
    with db.write_transaction(app) as session:  # due by the real clock the command reads
        for row in session.scalars(select(OutboxMessage)):
            row.next_attempt_at = datetime(2020, 1, 1, tzinfo=UTC)

    def run(*args):
        return CliRunner().invoke(main, ["--instance", app.instance_path, "mail", *args])

    assert run("status").output.strip() == "waiting 2, retrying 0, held 0, sent 0, to compose 0"
    delivered = run("deliver")
    assert delivered.exit_code == 0, delivered.output
    assert delivered.output.strip() == "claimed 2, sent 2, failed 0"
    assert len(outbox_files(app)) == 2
    assert run("status").output.strip() == "waiting 0, retrying 0, held 0, sent 2, to compose 0"
    # A booking's mail not yet composed is no message yet (it may become several): counted apart.
    with db.write_transaction(app) as session:
        booking = session.scalars(select(Booking)).one()
        outbox.enqueue_placeholder(
            session,
            tenant_id=booking.tenant_id,
            booking_id=booking.id,
            event="cancelled",
            sealed_facts="",
            to="ann@example.com",
            now=datetime(2099, 1, 1, tzinfo=UTC),  # not due for composing by the real clock
        )
    assert run("status").output.strip() == "waiting 0, retrying 0, held 0, sent 2, to compose 1"


def test_a_slow_transport_hands_back_what_it_could_not_send_in_time(
    app, client, salon, clock, monkeypatch
):
    book(client, salon)
    ticks = iter([0.0, 1.0, outbox.LEASE.total_seconds()])  # the first send took most of it
    monkeypatch.setattr(outbox, "_monotonic", lambda: next(ticks))
    report = deliver_due(app, clock())
    assert (report.claimed, report.sent) == (2, 1)
    assert [row.claimed_until for row in rows(app)] == [None, None]
    assert [row.sent_at is None for row in rows(app)] == [False, True]
    monkeypatch.setattr(outbox, "_monotonic", lambda: 0.0)
    assert deliver_due(app, clock()).sent == 1


def booked_for(app, client, salon, clock, address: str) -> None:
    """A booking whose client writes from ``address``, its mail (and the provider's) delivered."""
    body = booking_body(salon, SLOT)
    body["client"]["email"] = address
    assert client.post(BOOKINGS, json=body).status_code == 201
    assert deliver_due(app, clock()).sent == 2


def test_an_international_domain_goes_out_in_its_ascii_form(app, client, salon, clock, smtp_server):
    """The default header policy wrote ``vic@=?utf-8?q?ex=C3=A4mple?=.com``: no address."""
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{smtp_server.server_address[1]}"
    booked_for(app, client, salon, clock, "vic@exämple.com")
    data = next(data for to, data in smtp_server.received if to == ["vic@xn--exmple-cua.com"])
    sent = email.message_from_bytes(data, policy=policy.default)
    assert header(sent, "To") == "vic@xn--exmple-cua.com"


def test_a_non_ascii_mailbox_is_written_as_utf8_not_as_an_encoded_word(app, client, salon, clock):
    booked_for(app, client, salon, clock, "bøb@example.com")
    written = [path.read_bytes() for path in outbox_files(app)]
    to_lines = [line for data in written for line in data.splitlines() if line.startswith(b"To:")]
    assert len(to_lines) == 2 and not [line for line in to_lines if b"=?" in line]
    (to_bob,) = [data for data in written if "To: bøb@example.com".encode() in data]
    assert header(parsed_bytes(to_bob), "To") == "bøb@example.com"


def test_a_non_ascii_mailbox_goes_over_smtp_as_smtputf8(app, client, salon, clock, smtp_server):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{smtp_server.server_address[1]}"
    booked_for(app, client, salon, clock, "bøb@example.com")
    assert sorted(b"SMTPUTF8" in line for line in smtp_server.mail_commands) == [False, True]
    (data,) = [data for to, data in smtp_server.received if to == ["bøb@example.com"]]
    assert "To: bøb@example.com\r\n".encode() in data
    assert all(line.endswith(b"\r\n") for line in data.splitlines(keepends=True))
    sent = parsed_bytes(data)
    assert header(sent, "To") == "bøb@example.com"
    assert "invite.ics" in [part.get_filename() for part in sent.walk()]


def parsed_bytes(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)
