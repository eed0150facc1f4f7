"""History cleanup beside the loyalty example (which needs the intact history it breaks), its
settings, and the dry runs: ``bookwell tick --dry-run`` and ``--now`` later than the clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import bookwell.plugins.history_cleanup as history_cleanup
from bookwell.core.testing import InvalidSettings, PluginConflict, host_of

REASON = "Loyalty discount needs intact history, which History cleanup breaks."
MAY = datetime(2027, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def bookwell_settings():
    return {"MAIL_DELIVERY": "manual"}


def card(page, name) -> str:
    found = re.search(
        rf'<section class="card plugin" id="plugin-{name}">(.*?)</section>', page.text, re.S
    )
    assert found, f"no card for {name}"
    return unescape(found.group(1))


@pytest.fixture
def bookings_count(database_url):
    engine = create_engine(database_url)

    def count() -> int:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT count(*) FROM bookings"))

    yield count
    engine.dispose()


def test_it_is_installed_and_breaks_intact_history(app):
    installed = host_of(app).installed
    assert installed["history_cleanup"].status == "ok"
    assert installed["history_cleanup"].manifest.breaks == ("intact_history",)
    assert installed["loyalty"].manifest.needs == ("intact_history",)  # the example, installed


@pytest.mark.parametrize("first", ["loyalty", "history_cleanup"])
def test_loyalty_and_the_cleanup_cannot_be_on_together_either_way_round(
    first, enable_plugin, owner
):
    second = "history_cleanup" if first == "loyalty" else "loyalty"
    enable_plugin(first)
    with pytest.raises(PluginConflict, match=re.escape(REASON)):
        enable_plugin(second)
    answer = owner.api.put(f"plugins/{second}", json={"enabled": True})
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "plugin_conflict"
    assert REASON in answer.json["error"]["message"]
    refused = owner.submit(
        "/admin/salon/marketplace/switch",
        {"plugin": second, "enabled": "on"},
        form_on="/admin/salon/marketplace",
    )
    assert refused.status_code == 409
    assert REASON in card(refused, second)
    listed = {entry["name"]: entry for entry in owner.api.get("plugins").json}
    assert listed[first]["enabled"] and not listed[second]["enabled"]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"retention_days": 29}, "retention_days"),
        ({"archive_retention_days": 0}, "archive_retention_days"),
        ({"retention_days": "a year"}, "retention_days"),
    ],
)
def test_settings_out_of_bounds_are_refused(enable_plugin, settings, field):
    with pytest.raises(InvalidSettings) as refused:
        enable_plugin("history_cleanup", **settings)
    assert field in refused.value.fields


def test_the_cli_sets_them_by_their_keys(bookwell_cli, tenant, enable_plugin):
    ran = bookwell_cli(
        "plugins",
        "enable",
        "history_cleanup",
        "--tenant",
        "salon",
        "--set",
        "retention_days=30",
        "--set",
        "archive_retention_days=7",
    )
    assert ran.exit_code == 0, ran.output
    assert enable_plugin("history_cleanup") == {"retention_days": 30, "archive_retention_days": 7}


@pytest.fixture
def old_bookings(tenant, enable_plugin, make_client, clock):
    enable_plugin("history_cleanup", retention_days=30)
    for index, hour in enumerate((10, 11, 12)):
        make_client(f"C{index}").book(f"2027-03-02T{hour}:00:00+01:00")


def test_tick_dry_run_says_what_would_go_and_deletes_nothing(
    app, old_bookings, bookwell_cli, bookings_count, audit_trail, clock
):
    clock.set(MAY)
    ran = bookwell_cli("tick", "--dry-run")
    assert ran.exit_code == 0, ran.output
    assert (
        "salon: would archive and delete 3 booking(s) that ended before 2027-04-01 08:00 UTC"
        " (the oldest ended 2027-03-02); would remove 0 archive(s) older than 90 days"
    ) in ran.output
    assert "dry run: salon at " in ran.output
    assert bookings_count() == 3
    assert audit_trail(action="bookings.archived_and_deleted") == []
    assert not (Path(app.instance_path) / "files" / "history_cleanup").exists()


def test_tick_now_in_the_future_deletes_only_when_allowed(
    old_bookings, bookwell_cli, bookings_count, clock
):
    assert clock() < MAY  # the bookings have not been over for 30 days yet
    refused = bookwell_cli("tick", "--now", MAY.isoformat())
    assert refused.exit_code != 0 and "--allow-future" in refused.output
    assert bookings_count() == 3
    previewed = bookwell_cli("tick", "--now", MAY.isoformat(), "--dry-run")
    assert previewed.exit_code == 0 and "would archive and delete 3" in previewed.output
    assert bookings_count() == 3
    ran = bookwell_cli("tick", "--now", MAY.isoformat(), "--allow-future")
    assert ran.exit_code == 0, ran.output
    assert "history_cleanup" in ran.output
    assert bookings_count() == 0


def test_tick_on_a_terminal_shows_the_deletion_as_a_bar(
    old_bookings, bookwell_cli, bookings_count, clock, monkeypatch
):
    monkeypatch.setattr(history_cleanup, "BATCH", 1)
    monkeypatch.setattr(history_cleanup, "PAUSE_SECONDS", 0)
    clock.set(MAY)
    ran = bookwell_cli("tick", terminal=True)
    assert ran.exit_code == 0, ran.output
    assert "\rsalon: history_cleanup [" in ran.output
    assert "1/3" in ran.output and "2/3" in ran.output
    assert "[##############################] 3/3" in ran.output
    assert bookings_count() == 0
    piped = bookwell_cli("tick")  # into a pipe: the report alone
    assert "[" not in piped.output and "\r" not in piped.output
