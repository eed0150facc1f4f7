"""A booking's mail is a placeholder in its transaction, composed after the commit, exactly once.

The request composes it right away; a request that died between its commit and its composing
leaves the placeholder to the delivery job (``deliver_due``, hence ``bookwell tick`` and the RQ
job), which composes it before sending and never sends a placeholder as it is.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from conftest import booking_body
from sqlalchemy import event, select, text, update

from bookwell.core.booking import lifecycle, mailing
from bookwell.core.mail import deliver_due, outbox
from bookwell.core.scheduling import schedule
from bookwell.core.storage import db
from bookwell.core.storage.models import OutboxMessage, Provider
from bookwell.core.web.plugin_pages import run_as_command_of
from bookwell.hooks.pages import plugin_context

BOOKINGS = "/api/v1/tenants/salon/bookings"
SLOT = "2027-03-02T10:00:00+01:00"
BASE_URL = "https://book.example"
AFTER_GRACE = outbox.PLACEHOLDER_GRACE + timedelta(seconds=1)


@pytest.fixture
def app(make_app):
    return make_app(MAIL_DELIVERY="manual", BASE_URL=BASE_URL)


@pytest.fixture
def salon(app, business):
    with db.write_transaction(app) as session:
        session.get(Provider, business.provider_id).email = "ana@salon.example"
        session.get(Provider, business.second_provider_id).email = "bo@salon.example"
    return business


def rows(app) -> list[OutboxMessage]:
    with db.fresh_session(app) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def manage_link(business, booked) -> str:
    return (
        f"{BASE_URL}/book/{business.slug}/manage/{booked['reference']}"
        f"?token={booked['manage_token']}"
    )


@pytest.fixture
def crash_after_commit(monkeypatch):
    """The request dies between its commit and composing its mail."""
    monkeypatch.setattr(mailing, "compose_after_commit", lambda *args, **kwargs: None)


def test_the_request_composes_its_placeholder_right_after_the_commit(app, client, salon):
    booked = client.post(BOOKINGS, json=booking_body(salon, SLOT)).json
    stored = rows(app)
    assert [row.kind for row in stored] == ["booking.confirmed", "provider.confirmed"]
    assert all(row.compose_event is None and row.compose_facts is None for row in stored)
    assert manage_link(salon, booked) in stored[0].text_body
    assert stored[0].ics and "BEGIN:VCALENDAR" in stored[0].ics


def test_only_the_composed_mail_commits_without_waiting_for_the_disk(app, client, salon):
    """The booking, its trail and its placeholder are committed durably before the 201; the
    messages composed from the placeholder (which a crash would only hand back to the delivery
    job) commit without waiting for PostgreSQL's log flush. SQLite does not flush at commit."""
    transactions: list[list[str]] = []
    engine = db.engine_of(app)

    def began(_connection):
        transactions.append([])

    def executed(_connection, _cursor, statement, *_rest):
        if transactions:
            transactions[-1].append(" ".join(statement.split()))

    event.listen(engine, "begin", began)
    event.listen(engine, "before_cursor_execute", executed)
    try:
        assert client.post(BOOKINGS, json=booking_body(salon, SLOT)).status_code == 201
    finally:
        event.remove(engine, "before_cursor_execute", executed)
        event.remove(engine, "begin", began)

    def relaxed(statements):
        return any("synchronous_commit = off" in statement for statement in statements)

    (booking,) = [t for t in transactions if any(s.startswith("INSERT INTO bookings") for s in t)]
    assert any(s.startswith("INSERT INTO audit_entries") for s in booking)
    assert any(s.startswith("INSERT INTO outbox_messages") for s in booking)  # the placeholder
    assert not relaxed(booking)
    composed = [t for t in transactions if any(s.startswith("UPDATE outbox_messages") for s in t)]
    assert len(composed) == 1
    assert relaxed(composed[0]) == (engine.dialect.name == "postgresql")
    assert [t for t in transactions if relaxed(t)] == (
        composed if engine.dialect.name == "postgresql" else []
    )


def test_a_placeholder_holds_the_token_sealed_and_is_never_sent(
    app, client, salon, clock, crash_after_commit
):
    booked = client.post(BOOKINGS, json=booking_body(salon, SLOT)).json
    (placeholder,) = rows(app)
    assert placeholder.compose_event == "confirmed"
    assert booked["manage_token"] not in placeholder.compose_facts  # sealed, not in clear
    app.extensions.pop(outbox.COMPOSER)  # nobody to compose it: still it must not go out
    report = deliver_due(app, clock() + AFTER_GRACE)
    assert (report.claimed, report.sent) == (0, 0)
    assert rows(app)[0].sent_at is None


def test_a_placeholder_left_by_a_dead_request_is_composed_by_the_tick(
    app, client, salon, clock, crash_after_commit
):
    booked = client.post(BOOKINGS, json=booking_body(salon, SLOT)).json
    # Within the grace the request's own turn is awaited: nothing composed, nothing sent.
    assert deliver_due(app, clock()).claimed == 0
    assert rows(app)[0].compose_event == "confirmed"
    clock.advance(seconds=AFTER_GRACE.total_seconds())
    with app.app_context():
        (report,) = schedule.tick(app, clock())
    assert report.mail.sent == 2
    stored = rows(app)
    assert [row.kind for row in stored] == ["booking.confirmed", "provider.confirmed"]
    assert all(row.compose_event is None and row.sent_at is not None for row in stored)
    link = manage_link(salon, booked)
    assert link in stored[0].text_body
    # The link in the late mail works: the booking opens with its token.
    shown = client.get(f"{BOOKINGS}/{booked['reference']}?token={booked['manage_token']}")
    assert shown.status_code == 200
    assert shown.json["reference"] == booked["reference"]
    # Composed once: a second tick composes and sends nothing more.
    with app.app_context():
        (again,) = schedule.tick(app, clock() + timedelta(minutes=5))
    assert again.mail.claimed == 0 and len(rows(app)) == 2


def test_a_late_reschedule_mail_tells_the_move_as_it_was(
    app, client, salon, clock, crash_after_commit
):
    """Composed later, after the booking moved again, the mail still says the move it
    announces (the sealed facts), not the booking's time when it is composed."""
    booked = client.post(BOOKINGS, json=booking_body(salon, SLOT)).json
    for start in ("2027-03-03T14:00:00+01:00", "2027-03-04T15:00:00+01:00"):
        with app.app_context():
            lifecycle.reschedule_booking(
                app,
                tenant_id=salon.tenant_id,
                reference=booked["reference"],
                authorise=lambda booking: None,
                start=datetime.fromisoformat(start),
                provider_id=salon.second_provider_id,
                now=clock(),
                manage_token=booked["manage_token"],
            )
    assert deliver_due(app, clock() + AFTER_GRACE).sent > 0
    moves = [row for row in rows(app) if row.kind == "booking.rescheduled"]
    assert len(moves) == 2
    assert "Wednesday 3 March 2027, 14:00" in moves[0].text_body
    assert "Tuesday 2 March 2027, 10:00" in moves[0].text_body  # where it came from
    assert "Thursday 4 March 2027, 15:00" in moves[1].text_body
    assert "SEQUENCE:1" in moves[0].ics and "SEQUENCE:2" in moves[1].ics
    # The first move took the booking from Ana to Bo: Ana was told it is off her agenda.
    notices = [(row.to_address, row.kind) for row in rows(app) if row.kind.startswith("provider")]
    assert ("ana@salon.example", "provider.cancelled") in notices


def test_two_composers_racing_store_the_mail_once(
    make_app, app, client, salon, clock, crash_after_commit
):
    client.post(BOOKINGS, json=booking_body(salon, SLOT))
    (placeholder,) = rows(app)
    other = make_app(MAIL_DELIVERY="manual", BASE_URL=BASE_URL)  # a second worker process
    barrier = threading.Barrier(2)
    won: list[bool] = []

    def compose(which):
        barrier.wait()
        won.append(mailing.compose_placeholder(which, placeholder.id, clock()))

    threads = [threading.Thread(target=compose, args=(each,)) for each in (app, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False, True]
    assert [row.kind for row in rows(app)] == ["booking.confirmed", "provider.confirmed"]
    assert mailing.compose_placeholder(app, placeholder.id, clock()) is False


def test_the_request_and_the_job_racing_store_the_mail_once(app, client, salon, clock, monkeypatch):
    """The delivery job composes the placeholder between the request's commit and its own
    composing: the request's claim finds it composed and stores nothing."""
    real = mailing.compose_after_commit

    def job_first(app_, placeholder, ctx, enabled):
        assert mailing.compose_placeholder(app_, placeholder.id, ctx.now) is True
        real(app_, placeholder, ctx, enabled)

    monkeypatch.setattr(mailing, "compose_after_commit", job_first)
    client.post(BOOKINGS, json=booking_body(salon, SLOT))
    assert [row.kind for row in rows(app)] == ["booking.confirmed", "provider.confirmed"]


def test_a_placeholder_that_cannot_be_composed_is_held_not_sent(
    app, client, salon, clock, crash_after_commit
):
    client.post(BOOKINGS, json=booking_body(salon, SLOT))
    with db.write_transaction(app) as session:
        session.execute(update(OutboxMessage).values(compose_facts="altered"))
    assert deliver_due(app, clock() + AFTER_GRACE).sent == 0
    (held,) = rows(app)
    assert held.compose_event is None and held.sent_at is None
    assert held.next_attempt_at == outbox.HELD_UNTIL
    assert "not composed" in held.last_error


def test_an_idempotent_replay_returns_the_token_of_the_mail(app, client, salon):
    headers = {"Idempotency-Key": "3f1c9a52-7d4e-4b8a-9c0d-2e6f1a7b8c9d"}
    first = client.post(BOOKINGS, json=booking_body(salon, SLOT), headers=headers)
    replay = client.post(BOOKINGS, json=booking_body(salon, SLOT), headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json["manage_token"] == first.json["manage_token"]
    assert manage_link(salon, replay.json) in rows(app)[0].text_body
    assert len(rows(app)) == 2  # the replay sent nothing more


def test_the_booking_transaction_writes_only_the_placeholder(app, client, salon, monkeypatch):
    """What the write transaction holds: one outbox row, with no text composed in it."""
    seen: list[list[tuple]] = []
    real = mailing.compose_after_commit

    def look_first(app_, placeholder, ctx, enabled):
        with db.engine_of(app_).connect() as connection:
            seen.append(
                list(
                    connection.execute(
                        text("SELECT compose_event, subject, text_body FROM outbox_messages")
                    )
                )
            )
        real(app_, placeholder, ctx, enabled)

    monkeypatch.setattr(mailing, "compose_after_commit", look_first)
    client.post(BOOKINGS, json=booking_body(salon, SLOT))
    assert seen == [[("confirmed", "", "")]]


def test_a_booking_whose_mail_is_still_a_placeholder_is_not_cleaned_up(
    app, client, salon, clock, crash_after_commit
):
    """The history cleanup archives a booking with its mail: not before its mail exists."""
    client.post(BOOKINGS, json=booking_body(salon, SLOT))
    clock.set(datetime.fromisoformat("2027-06-01T00:00:00+00:00"))
    ended_before = datetime.fromisoformat("2027-05-01T00:00:00+00:00")
    with app.app_context():
        run_as_command_of("history_cleanup")
        ctx = plugin_context(salon.slug)
        assert ctx.data.archive_and_delete_ended(ended_before, 10).deleted == 0
    assert deliver_due(app, clock()).sent == 2  # composed, then sent
    with app.app_context():
        run_as_command_of("history_cleanup")
        ctx = plugin_context(salon.slug)
        assert ctx.data.archive_and_delete_ended(ended_before, 10).deleted == 1
    assert rows(app) == []


def test_a_lone_message_is_composed_in_one_statement_on_postgresql(app, client, business):
    """With no provider to tell, a booking's mail is one message: on PostgreSQL its UPDATE
    commits on its own, turning off the wait for the disk within itself; SQLite writes it in
    the queued write transaction."""
    engine = db.engine_of(app)
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def on_execute(_connection, _cursor, statement, _parameters, _context, _many):
        statements.append(statement)

    response = client.post(BOOKINGS, json=booking_body(business, SLOT))
    assert response.status_code == 201, response.json
    (claim,) = [one for one in statements if one.startswith("UPDATE outbox_messages")]
    assert not [one for one in statements if "synchronous_commit" in one and one is not claim]
    assert ("set_config" in claim) == (engine.dialect.name == "postgresql")
    (message,) = rows(app)
    assert message.compose_event is None and message.kind == "booking.confirmed"
    assert message.subject.startswith("Booking confirmed")
