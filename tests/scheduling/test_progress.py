"""Long scheduled work: the guide's history cleanup deletes old bookings a bounded slice per run
and carries on at the next tick; ``ctx.progress`` is drawn by ``bookwell tick`` in a terminal,
and nowhere else."""

from __future__ import annotations

import importlib
import io
import logging
import os
import pty
import re
import select as readiness
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import booking_body
from sqlalchemy import func, select

from bookwell.core.cli import instance as cli_instance
from bookwell.core.cli.root import ProgressBars, main
from bookwell.core.context import tools
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.scheduling import schedule
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, Booking
from bookwell.core.testing import open_business

GUIDE = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
EXAMPLE = "src/bookwell_tidy_history/__init__.py"
JUNE = datetime(2027, 6, 1, 8, 0, tzinfo=UTC)  # the March bookings are over 30 days old


@pytest.fixture
def cleanup(tmp_path, monkeypatch):
    """The guide's history cleanup plugin, written out as its author would, with small slices:
    two bookings a call, one call a run."""
    shown = re.search(rf"^`{re.escape(EXAMPLE)}`:\n\n```python\n(.*?)^```", GUIDE, re.M | re.S)
    target = tmp_path / EXAMPLE
    target.parent.mkdir(parents=True)
    target.write_text(shown.group(1))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    sys.modules.pop("bookwell_tidy_history", None)
    module = importlib.import_module("bookwell_tidy_history")
    monkeypatch.setattr(module, "BATCH", 2)
    monkeypatch.setattr(module, "CALLS_PER_RUN", 1)
    yield module
    sys.modules.pop("bookwell_tidy_history", None)


@pytest.fixture
def app(make_app, cleanup):
    return make_app(EXTRA_PLUGINS=[cleanup], MAIL_DELIVERY="manual")


@pytest.fixture
def businesses(app, clock):
    """The salon, with the cleanup on (30 days) and five bookings in March; the spa, without
    it, with one."""
    salon = open_business(app, clock())
    spa = open_business(app, clock(), "spa", "Spa")
    with app.app_context():
        plugin_changes.enable(app, salon.tenant_id, "tidy_history", {"keep_days": 30}, clock())
    http = app.test_client()
    for index, start in enumerate(
        [
            "2027-03-02T10:00",
            "2027-03-02T11:00",
            "2027-03-03T10:00",
            "2027-03-04T10:00",
            "2027-03-05T10:00",
        ]
    ):
        body = booking_body(salon, f"{start}:00+01:00", name=f"Client{index}")
        assert http.post("/api/v1/tenants/salon/bookings", json=body).status_code == 201
    body = booking_body(spa, "2027-03-02T10:00:00+01:00")
    assert http.post("/api/v1/tenants/spa/bookings", json=body).status_code == 201
    clock.set(JUNE)
    return salon, spa


def bookings_of(app, business) -> int:
    with db.fresh_session(app) as session:
        return session.scalar(
            select(func.count(Booking.id)).where(Booking.tenant_id == business.tenant_id)
        )


def actions_of(app, business) -> list[str]:
    with db.fresh_session(app) as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.tenant_id == business.tenant_id)
                .order_by(AuditEntry.sequence)
            )
        )


def test_the_cleanup_takes_a_slice_per_tick_and_carries_on(app, businesses, clock):
    salon, spa = businesses
    reported: list[tuple] = []
    left = []
    for _ in range(4):
        with app.app_context():
            schedule.tick(app, clock(), progress=lambda *report: reported.append(report))
        left.append(bookings_of(app, salon))
    assert left == [3, 1, 0, 0]
    # Each run says how far it got of what there was when it started; the last found nothing.
    assert reported == [
        ("tidy_history", "salon", 2, 5),
        ("tidy_history", "salon", 2, 3),
        ("tidy_history", "salon", 1, 1),
        ("tidy_history", "salon", 0, 0),
    ]
    assert bookings_of(app, spa) == 1  # the spa never enabled it
    actions = actions_of(app, salon)
    assert actions.count("bookings.archived_and_deleted") == 3
    assert actions.count("plugin.tidy_history.cleanup.run") == 3
    folder = Path(app.instance_path) / "files" / "tidy_history" / "salon"
    assert len(list(folder.glob("*.jsonl"))) == 3 and len(list(folder.glob("*.csv"))) == 3
    assert len(list(folder.glob("*.sha256"))) == 6  # one per archive, JSON lines and CSV
    assert tools.EXTENSION not in app.extensions  # the listener was only the tick's


def test_a_dry_run_of_the_cleanup_only_says_what_would_go(app, businesses, clock, caplog):
    salon, _ = businesses
    with caplog.at_level(logging.INFO, logger="bookwell_tidy_history"), app.app_context():
        schedule.tick(app, clock(), dry_run=True)
    assert "salon: would archive and delete 2 of 5 old bookings" in caplog.text
    assert bookings_of(app, salon) == 5
    assert "bookings.archived_and_deleted" not in actions_of(app, salon)


# --- bookwell tick ------------------------------------------------------------------------------


@pytest.fixture
def tick_command(app, monkeypatch):
    """``bookwell tick`` on this test's app (with the cleanup plugin, on its clock)."""
    monkeypatch.setattr(cli_instance, "create_app", lambda overrides=None: app)
    # As for an operator whose database is named outside the instance folder (which this test
    # never creates): the command does not take the folder's absence for a mistyped path.
    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    return ["--instance", str(Path(app.instance_path)), "tick"]


def read_until(controller: int, last: str) -> str:
    """What the terminal shows, up to ``last``: the kernel hands a terminal's output to its
    reader a little later, in pieces."""
    shown = ""
    while last not in shown:
        ready, _, _ = readiness.select([controller], [], [], 10)
        if not ready:
            break
        shown += os.read(controller, 65536).decode()
    return shown


def test_tick_on_a_terminal_draws_a_bar_per_plugin_and_business(
    app, businesses, cleanup, tick_command, monkeypatch
):
    salon, _ = businesses
    monkeypatch.setattr(cleanup, "CALLS_PER_RUN", 3)  # the whole backlog in one run
    controller, terminal_end = pty.openpty()
    terminal = os.fdopen(terminal_end, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", terminal)
    try:
        main.main(tick_command, standalone_mode=False)
        terminal.flush()
        shown = read_until(controller, "spa at ")  # the report's last line
    finally:
        terminal.close()
        os.close(controller)
    monkeypatch.undo()
    assert "\rsalon: tidy_history [" in shown
    assert "2/5" in shown and "4/5" in shown and "5/5" in shown
    assert f"[{'#' * ProgressBars.WIDTH}] 5/5" in shown
    assert "salon at " in shown and "tidy_history" in shown.split("5/5")[1]  # the report
    assert bookings_of(app, salon) == 0


def test_tick_into_a_pipe_or_a_file_prints_the_report_alone(
    app, businesses, cleanup, tick_command, monkeypatch
):
    salon, _ = businesses
    monkeypatch.setattr(cleanup, "CALLS_PER_RUN", 3)
    ran = CliRunner().invoke(main, tick_command)
    assert ran.exit_code == 0, ran.output
    assert "[" not in ran.output and "/5" not in ran.output and "\r" not in ran.output
    assert [line.split(" at ")[0] for line in ran.output.splitlines()] == ["salon", "spa"]
    assert bookings_of(app, salon) == 0


# --- the bars -----------------------------------------------------------------------------------


def test_bars_redraw_in_place_and_keep_each_others_lines():
    screen = io.StringIO()
    bars = ProgressBars(screen)
    bars("cleanup", "salon", 1, 4)
    bars("cleanup", "salon", 2, 4)
    bars("export", "spa", 0, 0)  # another one reports: the salon's line stays as it was
    bars("cleanup", "salon", 9, 4)  # beyond the total: drawn full, and its line ends
    bars("export", "spa", 3, -1)
    bars.close()
    assert screen.getvalue() == (
        "\rsalon: cleanup [#######.......................] 1/4"
        "\rsalon: cleanup [###############...............] 2/4"
        "\n\rspa: export 0 done"
        "\n\rsalon: cleanup [##############################] 4/4\n"
        "\rspa: export 3 done\n"
    )
