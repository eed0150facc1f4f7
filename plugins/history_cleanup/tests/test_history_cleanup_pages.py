"""The staff page: the owner lists the archives and downloads them (audited), previews what a
run would delete (nothing is); other roles and other businesses get nothing. Archives older
than ``archive_retention_days`` are removed by the schedule."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bookwell.core.testing import open_business

MAY = datetime(2027, 5, 1, 8, 0, tzinfo=UTC)
PAGE = "/admin/salon/history_cleanup/"


@pytest.fixture
def bookwell_settings():
    return {"MAIL_DELIVERY": "manual"}


@pytest.fixture
def bookings_count(database_url):
    engine = create_engine(database_url)

    def count() -> int:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT count(*) FROM bookings"))

    yield count
    engine.dispose()


@pytest.fixture
def cleaned(app, tenant, enable_plugin, make_client, run_schedule):
    """Two March bookings archived and deleted in May; returns the archive's JSON-lines file."""
    enable_plugin("history_cleanup", retention_days=30, archive_retention_days=10)
    for index, hour in enumerate((10, 11)):
        make_client(f"C{index}").book(f"2027-03-02T{hour}:00:00+01:00")
    run_schedule(at=MAY)
    [archive] = (Path(app.instance_path) / "files" / "history_cleanup" / "salon").glob("*.jsonl")
    return archive


def test_the_owner_sees_each_archive_with_its_date_count_size_and_checksums(cleaned, owner):
    page = owner.pages.get(PAGE)
    assert page.status_code == 200
    shown = unescape(page.text)
    csv = cleaned.with_suffix(".csv")
    assert "2027-05-01 08:00 UTC" in shown  # made
    assert "2027-03-02 to 2027-03-02" in shown  # the ends of its bookings
    assert "<td>2</td>" in shown
    assert f"{cleaned.stat().st_size + csv.stat().st_size:,} bytes" in shown
    assert hashlib.sha256(cleaned.read_bytes()).hexdigest() in shown
    assert hashlib.sha256(csv.read_bytes()).hexdigest() in shown
    assert f"{PAGE}archives/{cleaned.name}" in shown and f"{PAGE}archives/{csv.name}" in shown
    assert 'href="/admin/salon/history_cleanup/"' in owner.pages.get("/admin/salon/").text


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_download_is_the_file_itself_and_is_audited(cleaned, owner, audit_trail, suffix):
    wanted = cleaned.with_suffix(suffix)
    answer = owner.pages.get(f"{PAGE}archives/{wanted.name}")
    assert answer.status_code == 200
    assert answer.data == wanted.read_bytes()
    assert "attachment" in answer.headers["Content-Disposition"]
    assert answer.headers["Cache-Control"] == "no-store"
    [entry] = audit_trail(action="plugin.history_cleanup.archive.downloaded")
    assert entry.actor == f"user:{owner.user_id}"
    assert entry.subject == f"archive:{wanted.name}"
    assert entry.details["bookings"] == 2
    assert entry.details["checksum"] == hashlib.sha256(wanted.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2Fbookwell.toml",
        "bookings-20270302-20270302-000000000000.jsonl",  # no such archive
        "{archive}.sha256",
        "{archive}x",
    ],
)
def test_nothing_but_an_archive_is_served(cleaned, owner, audit_trail, name):
    answer = owner.pages.get(f"{PAGE}archives/{name.format(archive=cleaned.name)}")
    assert answer.status_code == 404
    assert audit_trail(action="plugin.history_cleanup.archive.downloaded") == []


def test_only_who_may_export_data_may_see_or_download_archives(
    cleaned, manager, staff_member, receptionist
):
    # data.export: owners and managers.
    assert manager.pages.get(PAGE).status_code == 200
    assert manager.pages.get(f"{PAGE}archives/{cleaned.name}").status_code == 200
    assert "/history_cleanup/" in manager.pages.get("/admin/salon/").text
    for member in (staff_member, receptionist):
        assert member.pages.get(PAGE).status_code == 403
        assert member.pages.get(f"{PAGE}archives/{cleaned.name}").status_code == 403
        assert member.pages.get(f"{PAGE}preview").status_code == 403
        assert "/history_cleanup/" not in member.pages.get("/admin/salon/").text


def test_another_business_cannot_reach_the_archives(app, cleaned, staff_login, clock):
    spa = open_business(app, clock(), "spa", "Spa")
    spa_owner = staff_login("owner", business=spa)
    assert spa_owner.pages.get(PAGE).status_code == 404  # salon's page, spa's owner
    assert spa_owner.pages.get(f"{PAGE}archives/{cleaned.name}").status_code == 404
    # The spa has not enabled the plugin: its own page does not exist either.
    assert spa_owner.pages.get("/admin/spa/history_cleanup/").status_code == 404


def test_the_preview_button_says_what_would_go_and_deletes_nothing(
    tenant, enable_plugin, make_client, owner, clock, bookings_count, audit_trail
):
    enable_plugin("history_cleanup", retention_days=30)
    for index, hour in enumerate((10, 11, 12)):
        make_client(f"C{index}").book(f"2027-03-02T{hour}:00:00+01:00")
    make_client("Later").book("2027-06-02T10:00:00+02:00")
    clock.set(MAY)
    owner.sign_in_again()  # the clock moved past the session's idle time
    page = owner.pages.get(PAGE)
    assert "Preview what would be deleted" in page.text
    assert f'action="{PAGE}preview"' in page.text
    preview = unescape(owner.pages.get(f"{PAGE}preview").text)
    assert "Preview (nothing was deleted)" in preview
    assert "would archive and delete <strong>3</strong> booking(s)" in preview
    assert "ended before 2027-04-01 08:00 UTC" in preview
    assert "oldest ending 2027-03-02" in " ".join(preview.split())
    assert bookings_count() == 4
    assert audit_trail(action="bookings.archived_and_deleted") == []


def test_archives_past_their_retention_are_removed_on_schedule(
    app, cleaned, run_schedule, clock, audit_trail
):
    csv = cleaned.with_suffix(".csv")
    sidecars = [Path(f"{cleaned}.sha256"), Path(f"{csv}.sha256")]
    run_schedule(at=MAY + timedelta(days=10) - timedelta(seconds=1))
    assert cleaned.exists() and csv.exists() and all(path.exists() for path in sidecars)
    assert audit_trail(action="plugin.history_cleanup.archives.removed") == []

    run_schedule(at=MAY + timedelta(days=10))
    assert not cleaned.exists() and not csv.exists()
    assert not any(path.exists() for path in sidecars)
    [entry] = audit_trail(action="plugin.history_cleanup.archives.removed")
    assert entry.details["archives"] == [cleaned.name] and entry.details["count"] == 1
    run_schedule()  # nothing left to remove: no second entry
    assert len(audit_trail(action="plugin.history_cleanup.archives.removed")) == 1


def test_a_dry_run_lists_the_archives_it_would_remove(
    app, cleaned, run_schedule, clock, bookwell_cli
):
    clock.set(MAY + timedelta(days=11))
    ran = bookwell_cli("tick", "--dry-run")
    assert "would remove 1 archive(s) older than 10 days" in ran.output
    assert cleaned.exists()
