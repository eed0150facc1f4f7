"""History cleanup on schedule: old bookings are archived (JSON lines and CSV, with checksums),
then deleted with everything that was theirs, in batches, audited; what has not ended, what is
to come, other businesses and the audit trail stay; crashes and runs at once lose and repeat
nothing."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, text

import bookwell.plugins.history_cleanup as history_cleanup
from bookwell.core.testing import open_business
from bookwell.hooks import Consent, Manifest, hookimpl

TERMS = Consent("terms", "I accept the terms", "The salon's terms.", version="3")
# The bookings below are in early March 2027; with 30 days kept, they go from mid-April.
MAY = datetime(2027, 5, 1, 8, 0, tzinfo=UTC)


class Terms:
    """Bookings carry a consent, as with a terms plugin: it must go with its booking."""

    MANIFEST = Manifest("test_terms", "Terms", "Asks for the terms.", "1", "test", "tests")

    @hookimpl
    def booking_requirements():
        return [TERMS]


@pytest.fixture
def bookwell_plugins():
    return [Terms]


@pytest.fixture
def bookwell_settings():
    return {"MAIL_DELIVERY": "manual"}


@pytest.fixture
def sql(database_url):
    engine = create_engine(database_url)

    def run(statement: str, **values):
        query = text(statement).bindparams(
            *(
                bindparam(key, expanding=True)
                for key, value in values.items()
                if isinstance(value, list)
            )
        )
        with engine.connect() as connection:
            return connection.execute(query, values).all()

    yield run
    engine.dispose()


@pytest.fixture
def salon(tenant, enable_plugin):
    enable_plugin("test_terms")
    enable_plugin("history_cleanup", retention_days=30)
    return tenant


def files_of(app, slug="salon") -> Path:
    return Path(app.instance_path) / "files" / "history_cleanup" / slug


def references(sql, business) -> list[str]:
    rows = sql(
        "SELECT reference FROM bookings WHERE tenant_id = :t ORDER BY starts_at",
        t=business.tenant_id,
    )
    return [row[0] for row in rows]


OF_BOOKINGS = {
    "consents": "SELECT count(*) FROM booking_consents WHERE booking_id IN :ids",
    "reschedules": "SELECT count(*) FROM booking_reschedules WHERE booking_id IN :ids",
    "outbox": "SELECT count(*) FROM outbox_messages WHERE booking_id IN :ids",
    "messages": "SELECT message_id FROM outbox_messages WHERE booking_id IN :ids",
}


def ids_of(sql, refs: list[str]) -> list[int]:
    return [row[0] for row in sql("SELECT id FROM bookings WHERE reference IN :refs", refs=refs)]


def belonging(sql, ids: list[int]) -> dict[str, int]:
    """How many rows of each kind that belongs to a booking the bookings ``ids`` have."""
    return {
        kind: sql(OF_BOOKINGS[kind], ids=ids)[0][0]
        for kind in ("consents", "reschedules", "outbox")
    }


def verify_audit(bookwell_cli):
    verified = bookwell_cli("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output


@pytest.fixture
def history(app, salon, client, make_client, run_schedule, clock):
    """Three March bookings of the salon (one moved, one cancelled), their mail sent as .eml
    files; one in June; the spa's March booking (the spa has the cleanup too)."""
    first = client.book("2027-03-02T10:00:00+01:00", consents=["terms"])
    moved = make_client("Bob").book("2027-03-02T12:00:00+01:00", consents=["terms"])
    moved = make_client("Bob").reschedule(moved, "2027-03-02T11:00:00+01:00")
    cancelled = make_client("Cyd").book("2027-03-03T10:00:00+01:00", consents=["terms"])
    make_client("Cyd").cancel(cancelled)
    june = make_client("Dee").book("2027-06-10T10:00:00+02:00", consents=["terms"])
    run_schedule()  # the mail goes out: .eml files on disk
    return {
        "ended": [first["reference"], moved["reference"], cancelled["reference"]],
        "june": june["reference"],
    }


def test_old_bookings_go_with_everything_theirs_and_the_rest_stays(
    app, salon, history, sql, run_schedule, audit_trail, bookwell_cli
):
    ids = ids_of(sql, history["ended"])
    messages = [row[0] for row in sql(OF_BOOKINGS["messages"], ids=ids)]
    outbox = Path(app.instance_path) / "outbox"
    emls = [outbox / (m.strip("<>").replace("/", "_") + ".eml") for m in messages]
    assert messages and all(eml.exists() for eml in emls)
    assert belonging(sql, ids) == {"consents": 3, "reschedules": 1, "outbox": len(messages)}

    run_schedule(at=MAY)

    assert references(sql, salon) == [history["june"]]
    assert belonging(sql, ids) == {"consents": 0, "reschedules": 0, "outbox": 0}
    assert not any(eml.exists() for eml in emls)
    assert sql("SELECT count(*) FROM booking_consents")[0][0] == 1  # June's

    # The archive, in both forms, each with a true checksum.
    [archive] = files_of(app).glob("*.jsonl")
    header, *lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert header["bookings"] == 3 and [line["reference"] for line in lines] == history["ended"]
    table = archive.with_suffix(".csv")
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [row["reference"] for row in rows] == history["ended"]
    for path in (archive, table):
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        assert Path(f"{path}.sha256").read_text() == f"{checksum}  {path.name}\n"

    # The audit trail says what went: how many, the dates, the archive and its checksum.
    [deleted] = audit_trail(action="bookings.archived_and_deleted")
    assert deleted.actor == "plugin:history_cleanup"
    assert deleted.details["count"] == 3
    assert deleted.details["first_end"].startswith("2027-03-02T09:30")
    assert deleted.details["last_end"].startswith("2027-03-03T09:30")
    assert deleted.details["archive"] == archive.name
    assert deleted.details["checksum"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert deleted.details["csv_archive"] == table.name
    [run] = audit_trail(action="plugin.history_cleanup.cleanup.run")
    assert run.details["deleted"] == 3 and run.details["retention_days"] == 30
    # Nothing of the trail went: the entries about the deleted bookings are all there.
    assert len(audit_trail(action="booking.created")) >= 4
    verify_audit(bookwell_cli)


def test_a_booking_that_has_not_ended_by_the_cutoff_stays(app, salon, client, run_schedule, sql):
    """Started before the cutoff, ends after it: it has not been over for 30 days, so it stays;
    a confirmed booking still to come stays too, however far the clock goes."""
    straddling = client.book("2027-03-02T10:00:00+01:00", consents=["terms"])
    future = client.book("2027-12-01T10:00:00+01:00", consents=["terms"])
    cutoff = datetime(2027, 3, 2, 9, 15, tzinfo=UTC)  # mid-appointment (09:00-09:30 UTC)
    run_schedule(at=cutoff + timedelta(days=30))
    assert references(sql, salon) == [straddling["reference"], future["reference"]]
    run_schedule(at=datetime(2027, 3, 2, 9, 30, tzinfo=UTC) + timedelta(days=30))
    assert references(sql, salon) == [straddling["reference"], future["reference"]]  # not *before*
    run_schedule(at=datetime(2027, 3, 2, 9, 31, tzinfo=UTC) + timedelta(days=30))
    assert references(sql, salon) == [future["reference"]]


def test_other_businesses_keep_their_bookings(app, salon, client, clock, run_schedule, sql):
    spa = open_business(app, clock(), "spa", "Spa")
    http = app.test_client()
    body = {
        "service_id": spa.service_id,
        "provider_id": spa.provider_id,
        "start": "2027-03-02T10:00:00+01:00",
        "client": {"name": "Ann", "email": "ann@example.com"},
    }
    assert http.post("/api/v1/tenants/spa/bookings", json=body).status_code == 201
    client.book("2027-03-02T10:00:00+01:00", consents=["terms"])
    run_schedule(at=MAY)
    assert references(sql, salon) == []
    assert len(references(sql, spa)) == 1  # the spa never enabled it
    assert not files_of(app, "spa").exists()


def test_the_default_keeps_a_year(app, tenant, enable_plugin, client, run_schedule, sql):
    enable_plugin("test_terms")
    assert enable_plugin("history_cleanup") == {"retention_days": 365, "archive_retention_days": 90}
    client.book("2027-03-02T10:00:00+01:00", consents=["terms"])
    run_schedule(at=datetime(2028, 3, 1, 8, 0, tzinfo=UTC))
    assert len(references(sql, tenant)) == 1
    run_schedule(at=datetime(2028, 3, 2, 10, 0, tzinfo=UTC))
    assert references(sql, tenant) == []


def make_bookings(make_client, count: int) -> list[str]:
    made = []
    for index in range(count):
        day, hour = 2 + index // 8, 9 + index % 8
        booked = make_client(f"C{index}").book(
            f"2027-03-{day:02}T{hour:02}:00:00+01:00", consents=["terms"]
        )
        made.append(booked["reference"])
    return made


def test_a_run_deletes_batch_after_batch(
    app, salon, make_client, run_schedule, sql, audit_trail, monkeypatch
):
    made = make_bookings(make_client, 7)
    monkeypatch.setattr(history_cleanup, "BATCH", 2)
    run_schedule(at=MAY)
    assert references(sql, salon) == []
    batches = audit_trail(action="bookings.archived_and_deleted")
    assert [entry.details["count"] for entry in batches] == [2, 2, 2, 1]
    assert len(list(files_of(app).glob("*.jsonl"))) == 4
    assert len(list(files_of(app).glob("*.csv"))) == 4
    [run] = audit_trail(action="plugin.history_cleanup.cleanup.run")
    assert run.details["deleted"] == 7 and run.details["archives"] == 4
    archived = sorted(
        json.loads(line)["reference"]
        for archive in files_of(app).glob("*.jsonl")
        for line in archive.read_text().splitlines()[1:]
    )
    assert archived == sorted(made)


def test_a_run_stops_when_its_time_is_up_and_the_next_carries_on(
    app, salon, make_client, run_schedule, sql, monkeypatch
):
    make_bookings(make_client, 5)
    monkeypatch.setattr(history_cleanup, "BATCH", 2)
    monkeypatch.setattr(history_cleanup, "RUN_SECONDS", 0)  # one batch, then time is up
    run_schedule(at=MAY)
    assert len(references(sql, salon)) == 3
    run_schedule()
    assert len(references(sql, salon)) == 1
    run_schedule()
    assert references(sql, salon) == []


def test_a_crash_half_way_loses_nothing_and_the_next_run_finishes(
    app, salon, make_client, run_schedule, sql, audit_trail, bookwell_cli, monkeypatch, power_cut
):
    """The power goes after the second batch was archived, before it was deleted."""
    made = make_bookings(make_client, 5)
    monkeypatch.setattr(history_cleanup, "BATCH", 2)
    power_cut(2)  # the test kit stages it inside core's archive_and_delete_ended
    run_schedule(at=MAY)  # the plugin's run fails (logged); the first batch is done
    assert len(references(sql, salon)) == 3
    assert len(list(files_of(app).glob("*.jsonl"))) == 2  # the second one's archive is there
    assert len(audit_trail(action="bookings.archived_and_deleted")) == 1

    run_schedule()
    assert references(sql, salon) == []
    entries = audit_trail(action="bookings.archived_and_deleted")
    assert sum(entry.details["count"] for entry in entries) == 5  # each deleted once
    # Every booking is in an archive that the trail names; the orphan repeats some of them.
    named = {entry.details["archive"] for entry in entries}
    archived = sorted(
        json.loads(line)["reference"]
        for archive in files_of(app).glob("*.jsonl")
        if archive.name in named
        for line in archive.read_text().splitlines()[1:]
    )
    assert archived == sorted(made)
    verify_audit(bookwell_cli)


def test_two_runs_at_once_never_delete_or_archive_twice(
    app, salon, make_client, plugin_context_for, sql, audit_trail, bookwell_cli, monkeypatch, clock
):
    made = make_bookings(make_client, 16)
    monkeypatch.setattr(history_cleanup, "BATCH", 2)
    clock.set(MAY)
    runs = 2
    barrier = threading.Barrier(runs)
    done: list = [None] * runs
    failures: list = []

    def run(index: int) -> None:
        try:
            with plugin_context_for("history_cleanup") as ctx:
                barrier.wait()
                done[index] = history_cleanup.cleanup(ctx, {"retention_days": 30})
        except Exception as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert sum(done) == 16
    assert references(sql, salon) == []
    entries = audit_trail(action="bookings.archived_and_deleted")
    assert sum(entry.details["count"] for entry in entries) == 16
    archived = sorted(
        json.loads(line)["reference"]
        for archive in files_of(app).glob("*.jsonl")
        for line in archive.read_text().splitlines()[1:]
    )
    assert archived == sorted(made)  # each booking in exactly one archive
    verify_audit(bookwell_cli)
