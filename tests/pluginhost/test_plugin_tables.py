"""ctx.tables: a plugin reads and writes its own tables (made by its migrations), and every
statement is limited to the context's tenant; another plugin's table, core's, a table without
``tenant_id``, or a clause that could reach past the tenant's rows is refused."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import booking_body
from flask import Blueprint, jsonify
from guide_examples import guide_example
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from bookwell.core.booking.tenants import create_tenant
from bookwell.core.context import make_context
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant
from bookwell.hooks import Manifest, hookimpl
from bookwell.hooks.pages import plugin_context

MIGRATIONS = Path(__file__).parent / "plugin_tables"
metadata = MetaData()
entries = Table(
    "table_notes_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("text", String(200), nullable=False),
    Column("votes", Integer, nullable=False, server_default="0"),
)
no_tenant = Table("table_notes_totals", metadata, Column("id", Integer, primary_key=True))
visit_notes = Table(
    "visit_notes_entries", MetaData(), Column("id", Integer), Column("tenant_id", Integer)
)
bookings = Table("bookings", MetaData(), Column("id", Integer), Column("tenant_id", Integer))


class TableNotes:
    """Notes a booking leaves behind (after_confirm), and a page that lists them."""

    MANIFEST = Manifest("table-notes", "Table notes", "Notes.", "1.0", "test", "tests")

    @hookimpl
    def migrations():
        return str(MIGRATIONS)

    @hookimpl
    def after_confirm(ctx):
        ctx.tables.insert(entries, text=f"booked {ctx.booking.reference}")

    @hookimpl
    def routes():
        pages = Blueprint("table_notes", __name__, url_prefix="/book/<slug>/table-notes")

        @pages.get("/")
        def listed(slug):
            rows = plugin_context(slug).tables.select(entries, order_by=entries.c.id)
            return jsonify([row["text"] for row in rows])

        return pages


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=[TableNotes])


@pytest.fixture
def spa_id(app, business, clock) -> int:
    with db.write_transaction(app) as session:
        return create_tenant(session, "spa", name="Spa", timezone="UTC", now=clock()).id


def tables_of(app, tenant_id, now, plugin="table-notes", **fields):
    with app.app_context():
        tenant = db.session().get(Tenant, tenant_id)
        return make_context(tenant, now, **fields).for_plugin(plugin).tables


def every_row(app) -> list[tuple]:
    with db.fresh_session(app) as session:
        found = session.execute(select(entries).order_by(entries.c.id))
        return [tuple(row) for row in found]


def test_insert_fills_the_tenant_and_select_gives_the_tenants_rows_as_dicts(
    app, business, spa_id, clock
):
    salon = tables_of(app, business.tenant_id, clock())
    spa = tables_of(app, spa_id, clock())
    first = salon.insert(entries, text="Call Ann", votes=2)
    spa.insert(entries, text="Spa's own")
    second = salon.insert(entries, text="Order towels", tenant_id=business.tenant_id)
    assert isinstance(first, int) and second > first
    assert salon.select(entries, order_by=entries.c.id) == [
        {"id": first, "tenant_id": business.tenant_id, "text": "Call Ann", "votes": 2},
        {"id": second, "tenant_id": business.tenant_id, "text": "Order towels", "votes": 0},
    ]
    assert [row["text"] for row in spa.select(entries)] == ["Spa's own"]


def test_select_filters_orders_and_limits(app, business, clock):
    salon = tables_of(app, business.tenant_id, clock())
    for number, words in enumerate(["b", "a", "c", "a"]):
        salon.insert(entries, text=words, votes=number)
    found = salon.select(entries, entries.c.text == "a", order_by=entries.c.votes.desc())
    assert [row["votes"] for row in found] == [3, 1]
    ordered = salon.select(entries, order_by=("text", entries.c.votes), limit=3)
    assert [(row["text"], row["votes"]) for row in ordered] == [("a", 1), ("a", 3), ("b", 0)]
    lowered = salon.select(entries, func.upper(entries.c.text) == "C")
    assert [row["votes"] for row in lowered] == [2]
    assert salon.select(entries, limit=0) == []


def test_update_and_delete_reach_only_the_tenants_rows(app, business, spa_id, clock):
    salon = tables_of(app, business.tenant_id, clock())
    spa = tables_of(app, spa_id, clock())
    kept = salon.insert(entries, text="salon")
    spa.insert(entries, text="spa")
    assert spa.update(entries, votes=entries.c.votes + 5) == 1  # no where: all of its rows
    assert spa.update(entries, entries.c.id == kept, text="taken over") == 0
    assert salon.update(entries, entries.c.id == kept, text="still salon's") == 1
    assert spa.delete(entries) == 1
    assert every_row(app) == [(kept, business.tenant_id, "still salon's", 0)]
    assert salon.delete(entries, entries.c.text == "nope") == 0
    assert salon.delete(entries, entries.c.id == kept) == 1
    assert every_row(app) == []


def test_the_tenant_of_a_row_cannot_be_chosen_or_changed(app, business, spa_id, clock):
    salon = tables_of(app, business.tenant_id, clock())
    with pytest.raises(ValueError, match="tenant_id"):
        salon.insert(entries, text="planted", tenant_id=spa_id)
    salon.insert(entries, text="mine")
    with pytest.raises(ValueError, match="tenant_id"):
        salon.update(entries, tenant_id=spa_id)
    assert [row[1] for row in every_row(app)] == [business.tenant_id]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (bookings, "not a table of plugin table-notes"),
        (visit_notes, "not a table of plugin table-notes"),
        (no_tenant, "no tenant_id"),
        (Table("table_notes_x", MetaData(), Column("tenant_id", Integer), schema="other"), "not a"),
        ("table_notes_entries", "sqlalchemy Table"),
    ],
)
def test_only_the_plugins_own_tables_with_a_tenant_are_taken(app, business, clock, table, message):
    salon = tables_of(app, business.tenant_id, clock())
    for call in (
        lambda: salon.select(table),
        lambda: salon.insert(table, id=1),
        lambda: salon.update(table, id=1),
        lambda: salon.delete(table),
    ):
        with pytest.raises(ValueError, match=message):
            call()


def test_a_table_under_a_longer_installed_plugins_prefix_is_that_plugins(app, business, clock):
    # "table_notes_entries" starts with "table_" too, but it is table-notes' table.
    shorter = tables_of(app, business.tenant_id, clock(), plugin="table")
    with pytest.raises(ValueError, match="table of plugin table-notes"):
        shorter.select(entries)


@pytest.mark.parametrize(
    "clause",
    [
        text("1 = 1"),
        literal_column("1") == 1,
        entries.c.id.in_(select(entries.c.id)),  # a subquery sees every tenant's rows
        entries.c.id == bookings.c.id,
        "text = 'a'",
    ],
)
def test_clauses_that_could_reach_past_the_tenant_are_refused(app, business, clock, clause):
    salon = tables_of(app, business.tenant_id, clock())
    salon.insert(entries, text="mine")
    with pytest.raises(ValueError, match="table_notes_entries"):
        salon.select(entries, clause)
    with pytest.raises(ValueError, match="table_notes_entries"):
        salon.delete(entries, clause)
    with pytest.raises(ValueError, match="table_notes_entries"):
        salon.update(entries, text=clause if not isinstance(clause, str) else text(clause))
    with pytest.raises(ValueError, match="table_notes_entries"):
        salon.select(entries, order_by=clause if not isinstance(clause, str) else text(clause))
    assert len(every_row(app)) == 1


def test_bad_columns_and_limits_are_refused(app, business, clock):
    salon = tables_of(app, business.tenant_id, clock())
    with pytest.raises(ValueError, match="no column 'colour'"):
        salon.insert(entries, text="x", colour="red")
    with pytest.raises(ValueError, match="no column 'colour'"):
        salon.update(entries, colour="red")
    with pytest.raises(ValueError, match="update what"):
        salon.update(entries, entries.c.id == 1)
    with pytest.raises(ValueError, match="no column 'colour'"):
        salon.select(entries, order_by="colour")
    with pytest.raises(ValueError, match="limit"):
        salon.select(entries, limit=-1)
    assert every_row(app) == []


def test_a_dry_run_reads_and_counts_but_writes_nothing(app, business, clock):
    tables_of(app, business.tenant_id, clock()).insert(entries, text="kept")
    dry = tables_of(app, business.tenant_id, clock(), dry_run=True)
    assert dry.insert(entries, text="not written") is None
    assert dry.update(entries, text="changed") == 1
    assert dry.delete(entries) == 1
    assert [row["text"] for row in dry.select(entries)] == ["kept"]
    assert [row[2] for row in every_row(app)] == ["kept"]


def test_a_plugin_writes_its_table_from_a_hook_and_reads_it_in_a_view(app, business, clock):
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "table-notes", {}, clock())
    client = app.test_client()
    made = client.post(
        "/api/v1/tenants/salon/bookings",
        json=booking_body(business, "2027-03-02T10:00:00+01:00"),
    )
    assert made.status_code == 201
    listed = client.get("/book/salon/table-notes/")
    assert listed.json == [f"booked {made.json['reference']}"]


def test_the_guides_example_keeps_notes_in_the_visit_notes_table(app, business, spa_id, clock):
    notes = guide_example("Tables and migrations", "ctx.tables.insert")
    client = app.test_client()
    made = client.post(
        "/api/v1/tenants/salon/bookings",
        json=booking_body(business, "2027-03-02T10:00:00+01:00"),
    ).json
    with app.app_context():
        salon = db.session().get(Tenant, business.tenant_id)
        (booking,) = make_context(salon, clock()).data.client_bookings("ann@example.com")
        # The installed visit_notes plugin's table, as its hooks would get it.
        ctx = make_context(salon, clock(), booking=booking).for_plugin("visit_notes")
        spa = make_context(db.session().get(Tenant, spa_id), clock()).for_plugin("visit_notes")
    notes.after_confirm(ctx)
    (note,) = notes.notes_of(ctx, made["reference"])
    assert note["text"] == "Booked." and note["tenant_id"] == business.tenant_id
    # Aware and in UTC, on SQLite (which keeps no zone) as on PostgreSQL (its session's zone).
    assert note["written_at"] == clock() and note["written_at"].tzinfo == UTC
    assert notes.notes_of(spa, made["reference"]) == []
    # An instant given in another zone is stored as the same instant, and read back in UTC.
    paris = clock().astimezone(ZoneInfo("Europe/Paris"))
    ctx.tables.insert(
        notes.entries,
        booking_reference="other",
        text="Later.",
        written_at=paris + timedelta(hours=1),
    )
    (later,) = notes.notes_of(ctx, "other")
    assert later["written_at"] == clock() + timedelta(hours=1)
    assert later["written_at"].tzinfo == UTC
    newer = ctx.tables.select(notes.entries, notes.entries.c.written_at > clock())
    assert [row["text"] for row in newer] == ["Later."]


def test_a_row_that_breaks_a_constraint_raises_integrity_error_and_changes_nothing(
    app, business, clock
):
    salon = tables_of(app, business.tenant_id, clock())
    first = salon.insert(entries, text="Call Ann")
    with pytest.raises(IntegrityError):
        salon.insert(entries, id=first, text="Same key")
    with pytest.raises(IntegrityError):
        salon.update(entries, entries.c.id == first, text=None)  # NOT NULL
    assert [row["text"] for row in salon.select(entries)] == ["Call Ann"]
