"""Nothing ever deletes audit entries: not a history cleanup that deletes the bookings they are
about, not switching the plugin off. Every entry stays as it was, with the personal data its
pseudonyms stand for, and the trail verifies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

MAY = datetime(2027, 5, 1, 8, 0, tzinfo=UTC)  # March's bookings are past 30 days by then


@pytest.fixture
def bookwell_settings():
    # Mail sent by the test itself (the schedule's run): a background delivery still sending
    # when the clock jumps to May would hold its booking back from the cleanup, by design.
    return {"MAIL_DELIVERY": "manual"}


@pytest.fixture
def snapshot(database_url):
    engine = create_engine(database_url)

    def take() -> dict[str, set]:
        with engine.connect() as connection:
            return {
                "entries": set(
                    connection.execute(
                        text(
                            "SELECT id, chain, sequence, actor, action, subject, details, "
                            "entry_hash FROM audit_entries"
                        )
                    ).all()
                ),
                "people": set(
                    connection.execute(text("SELECT pseudonym, email FROM audit_people")).all()
                ),
                "personal": set(
                    connection.execute(
                        text("SELECT entry_id, person_id, ip FROM audit_personal")
                    ).all()
                ),
                "bookings": set(connection.execute(text("SELECT reference FROM bookings")).all()),
            }

    yield take
    engine.dispose()


def test_a_cleanup_and_switching_it_off_leave_every_audit_entry(
    tenant,
    make_client,
    enable_plugin,
    disable_plugin,
    run_schedule,
    snapshot,
    bookwell_cli,
    audit_trail,
):
    enable_plugin("history_cleanup", retention_days=30)
    ann = make_client("Ann")
    ann.cancel(ann.book("2027-03-02T10:00:00+01:00"))
    make_client("Bob").book("2027-03-03T10:00:00+01:00")
    before = snapshot()
    assert len(before["bookings"]) == 2 and before["people"] and before["personal"]

    run_schedule(at=MAY)
    cleaned = snapshot()
    assert cleaned["bookings"] == set()  # the bookings went ...
    assert before["entries"] < cleaned["entries"]  # ... every entry about them stayed
    assert before["people"] == cleaned["people"] and before["personal"] <= cleaned["personal"]
    assert [entry.subject_email for entry in audit_trail(action="booking.cancelled")] == [None]
    assert audit_trail(action="booking.cancelled")[0].actor_email == "ann@example.com"

    assert disable_plugin("history_cleanup")
    switched_off = snapshot()
    assert cleaned["entries"] < switched_off["entries"]  # plus the entry saying so
    assert cleaned["people"] == switched_off["people"]
    assert cleaned["personal"] <= switched_off["personal"]
    verified = bookwell_cli("audit", "verify")
    assert verified.exit_code == 0, verified.output
