"""ctx.data.archive_and_delete_ended: old bookings are written to the plugin's folder, then go with
everything that was theirs (consents, reschedules, outbox rows and .eml files), in one audited
step that a crash cannot make lose anything and that concurrent calls never repeat; the audit
trail, other businesses and bookings that have not ended are never touched."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import booking_body
from sqlalchemy import func, select, update

from bookwell.core import audit
from bookwell.core.context import data as plugin_data
from bookwell.core.context import make_context
from bookwell.core.mail import deliver_due, transport
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    AuditEntry,
    Booking,
    BookingConsent,
    BookingReschedule,
    OutboxMessage,
    Tenant,
)
from bookwell.core.testing import open_business
from bookwell.hooks import ArchiveResult, Consent, Manifest, hookimpl

LATER = datetime(2027, 4, 1, 8, 0, tzinfo=UTC)  # a month after the bookings below
TERMS = Consent("terms", "I accept the terms", "The terms of the salon.", version="2")


class Terms:
    MANIFEST = Manifest("terms", "Terms", "Asks for the terms.", "1", "test", "tests")

    @hookimpl
    def booking_requirements():
        return [TERMS]


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=[Terms], MAIL_DELIVERY="manual", DATABASE_POOL_SIZE=20)


@pytest.fixture
def salon(app, business, clock):
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "terms", {}, clock())
    return business


@pytest.fixture
def spa(app, clock):
    return open_business(app, clock(), "spa", "Spa")


def book(app, business, start: str, name: str = "Ann", **extra) -> dict:
    body = booking_body(business, start, name=name, **extra)
    answer = app.test_client().post(f"/api/v1/tenants/{business.slug}/bookings", json=body)
    assert answer.status_code == 201, answer.json
    return answer.json


def book_salon(app, salon, start: str, name: str = "Ann") -> dict:
    return book(app, salon, start, name, consents=["terms"])


def ctx_of(app, business, now: datetime, *, plugin: str | None = "cleanup", dry_run=False):
    """The context a plugin's hook gets, bound to ``plugin`` as the plugin host binds it."""
    with app.app_context():
        tenant = db.session().get(Tenant, business.tenant_id)
        ctx = make_context(tenant, now, dry_run=dry_run)
    return ctx.for_plugin(plugin) if plugin else ctx


def archive_ended(app, business, before: datetime, limit: int, **options) -> ArchiveResult:
    ctx = ctx_of(app, business, options.pop("now", before), **options)
    with app.app_context():
        return ctx.data.archive_and_delete_ended(before, limit)


def read_archive(path: Path) -> tuple[dict, list[dict]]:
    header, *bookings = [json.loads(line) for line in path.read_text().splitlines()]
    return header, bookings


def references(app, business) -> list[str]:
    with db.fresh_session(app) as session:
        return list(
            session.scalars(
                select(Booking.reference)
                .where(Booking.tenant_id == business.tenant_id)
                .order_by(Booking.starts_at)
            )
        )


def count(app, model, *where) -> int:
    with db.fresh_session(app) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def outbox_of(app, booking_ids) -> list[OutboxMessage]:
    with db.fresh_session(app) as session:
        return list(
            session.scalars(select(OutboxMessage).where(OutboxMessage.booking_id.in_(booking_ids)))
        )


def booking_ids(app, refs) -> list[int]:
    with db.fresh_session(app) as session:
        return list(session.scalars(select(Booking.id).where(Booking.reference.in_(refs))))


def eml_of(app, message: OutboxMessage) -> Path:
    return transport.outbox_folder(app) / transport.file_name(message.message_id)


def audit_trail(app, tenant_id) -> list[tuple[int, str]]:
    with db.fresh_session(app) as session:
        return list(
            session.execute(
                select(AuditEntry.id, AuditEntry.entry_hash)
                .where(AuditEntry.tenant_id == tenant_id)
                .order_by(AuditEntry.sequence)
            )
        )


def archived_entries(app, tenant_id) -> list[AuditEntry]:
    with db.fresh_session(app) as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.tenant_id == tenant_id,
                    AuditEntry.action == "bookings.archived_and_deleted",
                )
                .order_by(AuditEntry.sequence)
            )
        )


def chain_holds(app, tenant_id) -> bool:
    with db.fresh_session(app) as session:
        return audit.verify(session, tenant_id).ok


@pytest.fixture
def history(app, salon, spa, clock):
    """Three salon bookings of March (one moved once, one cancelled), one of April that has not
    ended by ``LATER``, and one of the spa's; their mail delivered as .eml files; then the clock
    at ``LATER``."""
    moved = book_salon(app, salon, "2027-03-02T12:00:00+01:00", name="Bob")
    answer = app.test_client().post(
        f"/api/v1/tenants/salon/bookings/{moved['reference']}/reschedule",
        json={"token": moved["manage_token"], "start": "2027-03-02T11:00:00+01:00"},
    )
    assert answer.status_code == 200, answer.json
    first = book_salon(app, salon, "2027-03-02T10:00:00+01:00")
    cancelled = book_salon(app, salon, "2027-03-03T10:00:00+01:00", name="Cyd")
    answer = app.test_client().post(
        f"/api/v1/tenants/salon/bookings/{cancelled['reference']}/cancel",
        json={"token": cancelled["manage_token"]},
    )
    assert answer.status_code == 200, answer.json
    future = book_salon(app, salon, "2027-04-10T10:00:00+02:00", name="Dee")
    elsewhere = book(app, spa, "2027-03-02T10:00:00+01:00")
    assert deliver_due(app, clock()).failed == 0
    clock.set(LATER)
    return {
        "ended": [first["reference"], moved["reference"], cancelled["reference"]],
        "future": future["reference"],
        "spa": elsewhere["reference"],
    }


# --- archive, then delete ------------------------------------------------------------------------


def test_ended_bookings_are_archived_then_go_with_everything_that_was_theirs(
    app, salon, spa, history
):
    ended = booking_ids(app, history["ended"])
    messages = outbox_of(app, ended)
    assert len(messages) >= 4 and all(eml_of(app, message).exists() for message in messages)
    others = outbox_of(app, booking_ids(app, [history["future"], history["spa"]]))
    trail_before = audit_trail(app, salon.tenant_id)

    result = archive_ended(app, salon, LATER, 10)

    assert result.deleted == 3 and result.remaining == 0
    assert result.first_end == datetime(2027, 3, 2, 9, 30, tzinfo=UTC)
    assert result.last_end == datetime(2027, 3, 3, 9, 30, tzinfo=UTC)
    # The archive: in the plugin's own folder, on disk, its checksum true.
    folder = ctx_of(app, salon, LATER).files
    assert result.archive.parent == folder and result.archive.name.endswith(".jsonl")
    body = result.archive.read_bytes()
    assert hashlib.sha256(body).hexdigest() == result.checksum
    sidecar = folder / f"{result.archive.name}.sha256"
    assert sidecar.read_text() == f"{result.checksum}  {result.archive.name}\n"
    assert result.archive.stat().st_mode & 0o077 == 0  # clients' details: the owner's only
    header, archived = read_archive(result.archive)
    assert header["type"] == "archive" and header["tenant"] == "salon"
    assert header["plugin"] == "cleanup" and header["bookings"] == 3
    assert [entry["reference"] for entry in archived] == history["ended"]  # oldest end first
    first, moved, cancelled = archived
    assert first["service"]["name"] == "Cut" and first["provider"]["name"] == "Ana"
    assert first["client"] == {
        "name": "Ann",
        "email": "ann@example.com",
        "phone": None,
        "notes": None,
    }
    assert first["start"] == "2027-03-02T09:00:00+00:00" and first["status"] == "confirmed"
    assert [consent["id"] for consent in first["consents"]] == ["terms"]
    assert first["consents"][0]["version"] == "2"
    assert first["consents"][0]["text_sha256"] == hashlib.sha256(TERMS.text.encode()).hexdigest()
    assert first["consents"][0]["ip"] == "127.0.0.1"  # the proof goes whole into the archive
    assert first["consents"][0]["user_agent"].startswith("Werkzeug/")
    assert moved["reschedule_count"] == 1
    assert moved["reschedules"] == [
        {
            "previous_provider": {"id": salon.provider_id, "name": "Ana"},
            "previous_start": "2027-03-02T11:00:00+00:00",
            "previous_end": "2027-03-02T11:30:00+00:00",
            "rescheduled_at": "2027-03-01T08:00:00+00:00",
        }
    ]
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellation_reason"] == "cancelled by the client"
    archived_messages = {m["message_id"] for entry in archived for m in entry["messages"]}
    assert archived_messages == {message.message_id for message in messages}
    assert all("text" not in m and m["sent_at"] for e in archived for m in e["messages"])

    # Gone: the bookings and every row and file of theirs.
    assert references(app, salon) == [history["future"]]
    assert count(app, BookingConsent, BookingConsent.booking_id.in_(ended)) == 0
    assert count(app, BookingReschedule, BookingReschedule.booking_id.in_(ended)) == 0
    assert outbox_of(app, ended) == []
    assert not any(eml_of(app, message).exists() for message in messages)
    # Untouched: the booking still to come, the spa's, and their mail.
    assert references(app, spa) == [history["spa"]]
    assert count(app, BookingConsent) == 1  # the April booking's
    assert {
        m.id for m in outbox_of(app, booking_ids(app, [history["future"], history["spa"]]))
    } == {m.id for m in others}
    assert all(eml_of(app, message).exists() for message in others)
    # The audit trail: every entry kept, one more, and the chain holds.
    trail_after = audit_trail(app, salon.tenant_id)
    assert trail_after[: len(trail_before)] == trail_before
    assert len(trail_after) == len(trail_before) + 1
    assert chain_holds(app, salon.tenant_id) and chain_holds(app, spa.tenant_id)
    [entry] = archived_entries(app, salon.tenant_id)
    assert entry.actor == "plugin:cleanup"
    assert json.loads(entry.details) == {
        "count": 3,
        "first_end": "2027-03-02T09:30:00.000000+00:00",
        "last_end": "2027-03-03T09:30:00.000000+00:00",
        "ended_before": "2027-04-01T08:00:00.000000+00:00",
        "archive": result.archive.name,
        "checksum": result.checksum,
        "csv_archive": result.csv_archive.name,
        "csv_checksum": result.csv_checksum,
    }


def test_the_same_bookings_are_archived_as_csv_beside_the_json_lines(app, salon, history):
    result = archive_ended(app, salon, LATER, 10)
    assert result.csv_archive.parent == result.archive.parent
    assert result.csv_archive.name == result.archive.name.removesuffix(".jsonl") + ".csv"
    body = result.csv_archive.read_bytes()
    assert hashlib.sha256(body).hexdigest() == result.csv_checksum
    sidecar = result.csv_archive.parent / f"{result.csv_archive.name}.sha256"
    assert sidecar.read_text() == f"{result.csv_checksum}  {result.csv_archive.name}\n"
    assert result.csv_archive.stat().st_mode & 0o077 == 0
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    _, archived = read_archive(result.archive)
    assert [row["reference"] for row in rows] == [entry["reference"] for entry in archived]
    first = rows[0]
    assert first["client_email"] == "ann@example.com" and first["client_phone"] == ""
    assert first["service"] == "Cut" and first["start"] == "2027-03-02T09:00:00+00:00"
    assert json.loads(first["consents"]) == archived[0]["consents"]
    assert json.loads(rows[1]["reschedules"]) == archived[1]["reschedules"]
    assert rows[2]["status"] == "cancelled"


def test_a_csv_cell_a_spreadsheet_would_run_is_kept_as_text(app, salon, clock):
    client = {"name": "=HYPERLINK(1)", "email": "eve@example.com"}
    book(app, salon, "2027-03-02T10:00:00+01:00", consents=["terms"], client=client)
    clock.set(LATER)
    result = archive_ended(app, salon, LATER, 10)
    [row] = csv.DictReader(io.StringIO(result.csv_archive.read_text()))
    assert row["client_name"] == "'=HYPERLINK(1)"
    assert read_archive(result.archive)[1][0]["client"]["name"] == "=HYPERLINK(1)"  # exact


def test_a_limit_takes_the_oldest_first_and_the_next_call_carries_on(app, salon, history):
    first = archive_ended(app, salon, LATER, 2)
    assert (first.deleted, first.remaining) == (2, 1)
    assert [entry["reference"] for entry in read_archive(first.archive)[1]] == history["ended"][:2]
    second = archive_ended(app, salon, LATER, 2)
    assert (second.deleted, second.remaining) == (1, 0)
    assert [entry["reference"] for entry in read_archive(second.archive)[1]] == history["ended"][2:]
    assert second.archive != first.archive and first.archive.exists()
    done = archive_ended(app, salon, LATER, 2)
    assert done == ArchiveResult(deleted=0)
    assert references(app, salon) == [history["future"]]
    assert len(archived_entries(app, salon.tenant_id)) == 2
    assert chain_holds(app, salon.tenant_id)


def test_only_bookings_that_ended_before_the_instant_go(app, salon, history):
    # The second booking ends at 10:30 UTC on 2 March: not *before* 10:30.
    result = archive_ended(app, salon, datetime(2027, 3, 2, 10, 30, tzinfo=UTC), 10, now=LATER)
    assert result.deleted == 1 and result.remaining == 0
    assert references(app, salon) == [*history["ended"][1:], history["future"]]


@pytest.mark.parametrize(
    ("before", "limit", "message"),
    [
        (LATER + timedelta(seconds=1), 10, "later than ctx.now"),
        (datetime(2027, 3, 30), 10, "aware"),
        (LATER, 0, "limit"),
        (LATER, 501, "limit"),
        (LATER, True, "limit"),
        (LATER, 2.5, "limit"),
    ],
)
def test_a_bad_request_is_refused_and_changes_nothing(app, salon, history, before, limit, message):
    with pytest.raises(ValueError, match=message):
        archive_ended(app, salon, before, limit, now=LATER)
    assert len(references(app, salon)) == 4
    assert not ctx_of(app, salon, LATER).files.exists()


def test_a_context_bound_to_no_plugin_refuses(app, salon, history):
    ctx = ctx_of(app, salon, LATER, plugin=None)
    with app.app_context(), pytest.raises(RuntimeError, match="hands to a plugin"):
        ctx.data.archive_and_delete_ended(LATER, 10)
    assert len(references(app, salon)) == 4


def test_each_plugin_archives_into_its_own_folder(app, salon, history):
    one = archive_ended(app, salon, LATER, 1, plugin="one")
    two = archive_ended(app, salon, LATER, 1, plugin="two")
    assert one.archive.parent == ctx_of(app, salon, LATER, plugin="one").files
    assert two.archive.parent == ctx_of(app, salon, LATER, plugin="two").files
    assert one.archive.parent != two.archive.parent
    assert one.archive.parent.parts[-2:] == ("one", "salon")
    assert [e.actor for e in archived_entries(app, salon.tenant_id)] == ["plugin:one", "plugin:two"]


def test_a_dry_run_says_what_would_go_and_changes_nothing(app, salon, history):
    messages = outbox_of(app, booking_ids(app, history["ended"]))
    trail = audit_trail(app, salon.tenant_id)
    result = archive_ended(app, salon, LATER, 2, dry_run=True)
    assert result == ArchiveResult(
        deleted=2,
        first_end=datetime(2027, 3, 2, 9, 30, tzinfo=UTC),
        last_end=datetime(2027, 3, 2, 10, 30, tzinfo=UTC),
        remaining=1,
    )
    assert len(references(app, salon)) == 4
    assert all(eml_of(app, message).exists() for message in messages)
    assert audit_trail(app, salon.tenant_id) == trail
    assert not ctx_of(app, salon, LATER).files.exists()


def test_a_booking_whose_mail_is_being_sent_waits_for_a_later_call(app, salon, history, clock):
    [first] = booking_ids(app, history["ended"][:1])
    with db.write_transaction(app) as session:  # as a sender's claim leaves it, mid-delivery
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.booking_id == first)
            .values(sent_at=None, claimed_until=clock() + timedelta(minutes=10))
        )
    result = archive_ended(app, salon, LATER, 10)
    assert result.deleted == 2 and result.remaining == 1
    assert history["ended"][0] in references(app, salon)
    assert {e["reference"] for e in read_archive(result.archive)[1]} == set(history["ended"][1:])
    clock.advance(minutes=11)  # the sender's lease ran out
    later = archive_ended(app, salon, LATER, 10, now=clock())
    assert later.deleted == 1 and references(app, salon) == [history["future"]]


@pytest.mark.parametrize("state", ["being sent", "not composed yet"])
def test_bookings_whose_mail_is_to_come_are_passed_over_not_chosen_again(
    app, salon, history, clock, state
):
    """One booking at a time: the first, whose mail is still to go, must not take the call's
    whole share, call after call, while the others wait behind it."""
    [first] = booking_ids(app, history["ended"][:1])
    values = (
        {"sent_at": None, "claimed_until": clock() + timedelta(minutes=10)}
        if state == "being sent"
        else {"sent_at": None, "compose_event": "created"}
    )
    with db.write_transaction(app) as session:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.booking_id == first).values(**values)
        )
    result = archive_ended(app, salon, LATER, 1)
    assert result.deleted == 1
    assert {e["reference"] for e in read_archive(result.archive)[1]} == {history["ended"][1]}
    assert history["ended"][0] in references(app, salon)


# --- crashes and company -------------------------------------------------------------------------


def test_a_crash_between_archive_and_delete_loses_nothing(app, salon, history, monkeypatch):
    messages = outbox_of(app, booking_ids(app, history["ended"]))
    folder = ctx_of(app, salon, LATER).files

    def power_cut(*arguments):
        raise RuntimeError("power cut")

    monkeypatch.setattr(plugin_data, "delete_archived", power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        archive_ended(app, salon, LATER, 10)
    [orphan] = folder.glob("*.jsonl")  # written and on disk before the deletion began
    assert [e["reference"] for e in read_archive(orphan)[1]] == history["ended"]
    assert len(references(app, salon)) == 4
    assert len(outbox_of(app, booking_ids(app, history["ended"]))) == len(messages)
    assert all(eml_of(app, message).exists() for message in messages)
    assert archived_entries(app, salon.tenant_id) == []
    assert chain_holds(app, salon.tenant_id)

    monkeypatch.undo()
    result = archive_ended(app, salon, LATER, 10)
    assert result.deleted == 3 and result.archive != orphan  # a new part; the first one stays
    assert [e["reference"] for e in read_archive(result.archive)[1]] == history["ended"]
    assert orphan.exists() and references(app, salon) == [history["future"]]
    assert not any(eml_of(app, message).exists() for message in messages)
    [entry] = archived_entries(app, salon.tenant_id)
    assert json.loads(entry.details)["archive"] == result.archive.name


def test_a_booking_changed_while_its_archive_was_written_is_archived_as_it_is_deleted(
    app, salon, history, monkeypatch
):
    """The archive is written before the write lock is taken: a change made meanwhile makes the
    step start again under the lock, and the stale archive goes."""
    real_write, writes = plugin_data.write_csv_archive, []

    def write_then_change(*arguments):
        written = real_write(*arguments)
        writes.append(written[0])
        if len(writes) == 1:  # staff edit the first booking in between
            with db.write_transaction(app) as session:
                session.execute(
                    update(Booking)
                    .where(Booking.reference == history["ended"][0])
                    .values(client_notes="Edited meanwhile")
                )
        return written

    monkeypatch.setattr(plugin_data, "write_csv_archive", write_then_change)
    result = archive_ended(app, salon, LATER, 10)
    assert result.deleted == 3 and len(writes) == 2
    assert read_archive(result.archive)[1][0]["client"]["notes"] == "Edited meanwhile"
    folder = result.archive.parent
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [
            result.archive.name,
            f"{result.archive.name}.sha256",
            result.csv_archive.name,
            f"{result.csv_archive.name}.sha256",
        ]
    )  # the stale archive is gone, checksums and all
    [entry] = archived_entries(app, salon.tenant_id)
    assert json.loads(entry.details)["archive"] == result.archive.name
    assert references(app, salon) == [history["future"]]


def test_calls_at_once_never_take_the_same_booking(app, salon, clock):
    made = [
        book_salon(app, salon, f"2027-03-0{day}T{hour}:00:00+01:00", name=f"C{day}{hour}")
        for day in (2, 3)
        for hour in (10, 11, 12)
    ]
    clock.set(LATER)
    callers = 4
    barrier = threading.Barrier(callers)
    results: list = [None] * callers

    def call(index: int) -> None:
        ctx = ctx_of(app, salon, LATER)
        barrier.wait()
        with app.app_context():
            results[index] = ctx.data.archive_and_delete_ended(LATER, 2)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(result, ArchiveResult) for result in results), results
    assert sorted(result.deleted for result in results) == [0, 2, 2, 2]
    taken = [
        entry["reference"]
        for result in results
        if result.archive
        for entry in read_archive(result.archive)[1]
    ]
    assert sorted(taken) == sorted(booking["reference"] for booking in made)  # each once
    assert references(app, salon) == []
    assert len(archived_entries(app, salon.tenant_id)) == 3
    assert chain_holds(app, salon.tenant_id)
