"""The staff agendas as time grids (a table: a row per quarter of an hour, a column per provider on
the day page, per day on the week page): a booking is a block in its provider's column spanning
the rows of its time, closed hours and time off are shaded blocks, the current time is marked on
today; and the month overview's count of bookings per day."""

from __future__ import annotations

from datetime import UTC, datetime, time
from html.parser import HTMLParser

import pytest
from conftest import add_staff_and_a_rival, booking_body, log_in_staff

from bookwell.core.booking import catalogue


def without_admin_script(html: str) -> str:
    """The page without the one script staff pages load, a static file (admin.js)."""
    return html.replace('<script src="/static/admin.js" defer></script>', "")


TODAY = "2027-03-01"  # the clock fixture's day: Monday 1 March 2027, 09:00 in Paris


class GridReader(HTMLParser):
    """The time grids of a page: per table, its column headers and every body cell placed in
    (row, column) as a browser places it, counting the row header and the rowspans above."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self.table = None
        self.cell = None
        self.in_head = False
        self.row = -1
        self.column = 0
        self.covered: dict[int, int] = {}  # column -> rows still covered from above

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "table" and "time-grid" in classes:
            self.table = {"headers": [], "cells": [], "rows": []}
            self.tables.append(self.table)
            self.row, self.covered = -1, {}
        if self.table is None:
            return
        if tag == "thead":
            self.in_head = True
        elif tag == "tbody":
            self.in_head = False
        elif tag == "tr" and not self.in_head:
            self.row += 1
            self.column = 0
            self.table["rows"].append({"classes": classes, "header": ""})
        elif tag in ("th", "td"):
            if not self.in_head:
                while self.covered.get(self.column, 0) > 0:
                    self.column += 1
            self.cell = {
                "tag": tag,
                "classes": classes,
                "row": self.row,
                "column": self.column,
                "span": int(attributes.get("rowspan", 1)),
                "scope": attributes.get("scope"),
                "text": "",
            }

    def handle_endtag(self, tag):
        if self.table is None:
            return
        if tag in ("th", "td") and self.cell is not None:
            cell, self.cell = self.cell, None
            cell["text"] = " ".join(cell["text"].split())
            if self.in_head:
                self.table["headers"].append(cell["text"])
            elif tag == "th":
                self.table["rows"][-1]["header"] = cell["text"]
                self.table["rows"][-1]["scope"] = cell["scope"]
                self.column += 1
            else:
                cell["column"] -= 1  # counted from the first provider's (or day's) column
                self.table["cells"].append(cell)
                if cell["span"] > 1:
                    self.covered[self.column] = cell["span"]
                self.column += 1
        elif tag == "tr" and not self.in_head:
            self.covered = {c: n - 1 for c, n in self.covered.items() if n > 1}
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data


def grids_of(page) -> list[dict]:
    reader = GridReader()
    reader.feed(page.text)
    return reader.tables


def cell_with(grid, text):
    [found] = [cell for cell in grid["cells"] if text in cell["text"]]
    return found


def row_of(grid, label):
    return [row["header"].split()[0] for row in grid["rows"]].index(label)


@pytest.fixture
def site(make_app, business, clock):
    app = make_app()
    add_staff_and_a_rival(app, business, clock(), ("owner", "staff"))
    return app


def book(app, business, start, **options):
    response = app.test_client().post(
        "/api/v1/tenants/salon/bookings", json=booking_body(business, start, **options)
    )
    assert response.status_code == 201, response.json
    return response.json["reference"]


def cancel(app, reference):
    from sqlalchemy import select

    from bookwell.core.storage import db
    from bookwell.core.storage.models import Booking

    with app.app_context(), db.write_transaction(app) as session:
        row = session.scalar(select(Booking).where(Booking.reference == reference))
        row.status = "cancelled"


def ben_opens_at_noon_with_an_hour_off(app, business, clock):
    """Ben works 12:00-17:00 on weekdays (09:00-12:00 closed) and not at the weekend, and takes
    14:00-15:00 off on the 1st."""
    with app.app_context():
        catalogue.set_working_hours(
            app,
            tenant_id=business.tenant_id,
            provider_id=business.second_provider_id,
            hours={weekday: [(time(12), time(17))] for weekday in range(5)},
            actor=None,
            now=clock(),
        )
        catalogue.add_time_off(
            app,
            tenant_id=business.tenant_id,
            provider_id=business.second_provider_id,
            starts_at=datetime(2027, 3, 1, 13, 0, tzinfo=UTC),  # 14:00 in Paris
            ends_at=datetime(2027, 3, 1, 14, 0, tzinfo=UTC),
            reason="Dentist",
            actor=None,
            now=clock(),
        )


def test_the_day_grid_puts_each_booking_in_its_providers_column_over_its_rows(
    site, business, clock
):
    ben_opens_at_noon_with_an_hour_off(site, business, clock)
    book(site, business, "2027-03-01T10:00:00+01:00", name="Ann")
    book(
        site,
        business,
        "2027-03-01T12:30:00+01:00",
        name="Bob",
        provider_id=business.second_provider_id,
    )
    gone = book(site, business, "2027-03-01T15:00:00+01:00", name="Cyd")
    cancel(site, gone)
    clock.set(datetime(2027, 3, 1, 9, 10, tzinfo=UTC))  # 10:10 in Paris: during Ann's cut
    page = log_in_staff(site, "owner@example.com").get(f"/admin/salon/?date={TODAY}")
    assert page.status_code == 200
    assert "style=" not in page.text and "<script" not in without_admin_script(page.text)
    [grid] = grids_of(page)
    assert grid["headers"][1:3] == ["Ana", "Ben"]
    # A row per quarter of an hour, from the earliest opening (09:00) to the latest (17:00),
    # each headed by its time.
    assert [row["header"].split()[0] for row in grid["rows"]][:5] == [
        "09:00",
        "09:15",
        "09:30",
        "09:45",
        "10:00",
    ]
    assert len(grid["rows"]) == 8 * 4
    assert {row["scope"] for row in grid["rows"]} == {"row"}

    ann = cell_with(grid, "Ann")
    assert (ann["column"], ann["row"], ann["span"]) == (0, row_of(grid, "10:00"), 2)
    assert "booking" in ann["classes"] and "10:00–10:30" in ann["text"] and "Cut" in ann["text"]
    bob = cell_with(grid, "Bob")
    assert (bob["column"], bob["row"], bob["span"]) == (1, row_of(grid, "12:30"), 2)

    # Ben's closed morning: one shaded block, 09:00 to 12:00; his hour off: another.
    closed = [cell for cell in grid["cells"] if "closed" in cell["classes"]]
    assert [(c["column"], c["row"], c["span"]) for c in closed] == [(1, 0, 12)]
    off = cell_with(grid, "Dentist")
    assert "off" in off["classes"]
    assert (off["column"], off["row"], off["span"]) == (1, row_of(grid, "14:00"), 4)
    # Every other cell of Ana's is free, one per row: her column is whole.
    ana_rows = sum(cell["span"] for cell in grid["cells"] if cell["column"] == 0)
    ben_rows = sum(cell["span"] for cell in grid["cells"] if cell["column"] == 1)
    assert ana_rows == ben_rows == len(grid["rows"])

    # The cancelled booking frees its time: listed apart, not drawn.
    assert "Cyd" not in " ".join(cell["text"] for cell in grid["cells"])
    assert page.text.index("Cancelled") < page.text.index("Cyd")

    # Now (10:10) is marked: its row, and Ann's block in progress.
    now_rows = [index for index, row in enumerate(grid["rows"]) if "now" in row["classes"]]
    assert now_rows == [row_of(grid, "10:00")]
    assert "now" in ann["classes"] and "now" not in bob["classes"]


def test_the_current_time_is_marked_only_on_today(site, business, clock):
    clock.set(datetime(2027, 3, 1, 9, 10, tzinfo=UTC))
    owner = log_in_staff(site, "owner@example.com")
    [tomorrow] = grids_of(owner.get("/admin/salon/?date=2027-03-02"))
    assert not [row for row in tomorrow["rows"] if "now" in row["classes"]]
    assert not [cell for cell in tomorrow["cells"] if "now" in cell["classes"]]
    [today] = grids_of(owner.get("/admin/salon/"))
    assert [row["header"] for row in today["rows"] if "now" in row["classes"]] == ["10:00 (now)"]
    # Before the opening, no row is now.
    clock.set(datetime(2027, 3, 1, 6, 0, tzinfo=UTC))
    [early] = grids_of(owner.get("/admin/salon/"))
    assert not [row for row in early["rows"] if "now" in row["classes"]]


def test_a_booking_outside_the_opening_hours_stretches_the_grid(site, business, clock):
    with site.app_context():
        catalogue.set_working_hours(
            site,
            tenant_id=business.tenant_id,
            provider_id=business.provider_id,
            hours={weekday: [(time(7), time(20))] for weekday in range(7)},
            actor=None,
            now=clock(),
        )
    book(site, business, "2027-03-01T19:00:00+01:00", name="Eve")
    page = log_in_staff(site, "owner@example.com").get(f"/admin/salon/?date={TODAY}")
    [grid] = grids_of(page)
    assert grid["rows"][0]["header"] == "07:00" and grid["rows"][-1]["header"] == "19:45"
    eve = cell_with(grid, "Eve")
    assert (eve["column"], eve["row"]) == (0, row_of(grid, "19:00"))
    # Ben still opens at 09:00: his early hours and his evening are closed.
    closed = [
        (c["row"], c["span"])
        for c in grid["cells"]
        if c["column"] == 1 and "closed" in c["classes"]
    ]
    assert closed == [(0, 8), (row_of(grid, "17:00"), 12)]


def test_the_week_grid_has_a_table_per_provider_with_a_column_per_day(site, business, clock):
    ben_opens_at_noon_with_an_hour_off(site, business, clock)
    book(site, business, "2027-03-03T14:00:00+01:00", name="Ann")
    book(
        site,
        business,
        "2027-03-01T16:00:00+01:00",
        name="Bob",
        provider_id=business.second_provider_id,
    )
    book(site, business, "2027-03-09T14:00:00+01:00", name="Cyd")  # the week after
    page = log_in_staff(site, "owner@example.com").get(f"/admin/salon/week?start={TODAY}")
    assert page.status_code == 200
    ana, ben = grids_of(page)
    assert ana["headers"][1:] == [
        "Mon 1 Mar (today)",
        "Tue 2 Mar",
        "Wed 3 Mar",
        "Thu 4 Mar",
        "Fri 5 Mar",
        "Sat 6 Mar",
        "Sun 7 Mar",
    ]
    ann = cell_with(ana, "Ann")
    assert (ann["column"], ann["row"], ann["span"]) == (2, row_of(ana, "14:00"), 2)
    bob = cell_with(ben, "Bob")
    assert (bob["column"], bob["row"], bob["span"]) == (0, row_of(ben, "16:00"), 2)
    assert "Cyd" not in page.text
    # Ben's grid runs from his opening (12:00); his weekend is closed, his hour off only on
    # Monday.
    assert ben["rows"][0]["header"] == "12:00"
    assert ana["rows"][0]["header"] == "09:00 (now)"  # Monday 09:00: now, in today's column only
    assert [(c["column"], c["row"]) for c in ana["cells"] if "now" in c["classes"]] == [(0, 0)]
    closed = [c for c in ben["cells"] if "closed" in c["classes"]]
    assert sorted((c["column"], c["row"], c["span"]) for c in closed) == [
        (5, 0, len(ben["rows"])),
        (6, 0, len(ben["rows"])),
    ]
    off = cell_with(ben, "Dentist")
    assert (off["column"], off["row"], off["span"]) == (0, row_of(ben, "14:00"), 4)
    assert not [c for c in ana["cells"] if c["classes"][0] in ("closed", "off")]
    # Each day's header opens that day.
    assert 'href="/admin/salon/?date=2027-03-03"' in page.text


def test_staff_see_only_their_own_providers_grid(site, business):
    book(site, business, "2027-03-01T10:00:00+01:00", name="Ann")
    book(
        site,
        business,
        "2027-03-01T11:00:00+01:00",
        name="Bob",
        provider_id=business.second_provider_id,
    )
    page = log_in_staff(site, "staff@example.com").get(f"/admin/salon/?date={TODAY}")
    [grid] = grids_of(page)
    assert grid["headers"][1:] == ["Ana"]
    assert "Ann" in page.text and "Bob" not in page.text


def test_the_month_overview_counts_each_days_bookings_and_links_to_the_day(site, business):
    book(site, business, "2027-03-01T10:00:00+01:00", name="Ann")
    book(site, business, "2027-03-01T11:00:00+01:00", name="Bob")
    book(
        site,
        business,
        "2027-03-01T10:00:00+01:00",
        name="Cyd",
        provider_id=business.second_provider_id,
    )
    book(site, business, "2027-03-17T16:30:00+01:00", name="Dan")
    gone = book(site, business, "2027-03-20T10:00:00+01:00", name="Eve")
    cancel(site, gone)
    book(site, business, "2027-04-01T10:00:00+01:00", name="Fay")
    owner = log_in_staff(site, "owner@example.com")
    page = owner.get("/admin/salon/month?month=2027-03")
    assert page.status_code == 200
    counts = month_counts(page.text)
    assert counts["2027-03-01"] == "3 bookings"
    assert counts["2027-03-17"] == "1 booking"
    assert counts["2027-03-20"] == "no bookings"  # cancelled bookings are left out
    assert counts["2027-03-31"] == "no bookings"
    assert "2027-04-01" not in counts and len(counts) == 31
    assert "4 bookings this month" in page.text
    assert 'href="/admin/salon/?date=2027-03-17"' in page.text
    assert 'aria-current="date"' in page.text  # today, the 1st
    assert "Ann" not in page.text  # counts only: no client named
    # Staff count only what they may read: Ben's booking is not theirs.
    staff_counts = month_counts(
        log_in_staff(site, "staff@example.com").get("/admin/salon/month?month=2027-03").text
    )
    assert staff_counts["2027-03-01"] == "2 bookings"
    assert owner.get("/admin/salon/month").status_code == 200  # this month
    assert owner.get("/admin/salon/month?month=2027-13").status_code == 404
    assert owner.get("/admin/salon/month?month=nope").status_code == 404
    # Another business's owner cannot read this one's month.
    assert log_in_staff(site, "spa@example.com", "spa").get("/admin/salon/month").status_code == 404


def month_counts(html: str) -> dict[str, str]:
    """Per day (ISO) shown in the month, the count it reads out."""

    class Reader(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found: dict[str, str] = {}
            self.day = None
            self.counting = False

        def handle_starttag(self, tag, attrs):
            attributes = dict(attrs)
            if tag == "td" and "data-day" in attributes:
                self.day = attributes["data-day"]
                self.found[self.day] = ""
            if tag == "span" and attributes.get("class") == "count":
                self.counting = True

        def handle_endtag(self, tag):
            if tag == "td":
                self.day, self.counting = None, False

        def handle_data(self, data):
            if self.day and self.counting:
                self.found[self.day] = (self.found[self.day] + " " + data.strip()).strip()

    reader = Reader()
    reader.feed(html)
    return reader.found
