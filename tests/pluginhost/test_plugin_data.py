"""ctx.data: a plugin reads its tenant's bookings and sends mail, and never reaches another
tenant's rows; a "once" message is written once, however many callers race for it."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import booking_body, open_every_day
from sqlalchemy import event, select

from bookwell.core.access.users import create_user
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.context import make_context
from bookwell.core.context.data import PluginData
from bookwell.core.mail import deliver_due, outbox
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.scheduling import schedule
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, OutboxMessage, Tenant, User
from bookwell.hooks import Manifest, hookimpl

SALON = "/api/v1/tenants/salon/bookings"
SPA = "/api/v1/tenants/spa/bookings"
TUESDAY_10 = "2027-03-02T10:00:00+01:00"  # 09:00 UTC


class Tagging:
    MANIFEST = Manifest("tagging", "Tagging", "Tags subjects.", "1.0", "test", "tests")

    @hookimpl
    def filter_message(ctx, message):
        return dataclasses.replace(message, subject=f"[{ctx.tenant.slug}] {message.subject}")


class BrokenFilter:
    MANIFEST = Manifest("broken-filter", "Broken", "Fails.", "1.0", "test", "tests")

    @hookimpl
    def filter_message(ctx, message):
        raise RuntimeError("filter crashed")


@pytest.fixture
def app(make_app):
    return make_app(
        MAIL_DELIVERY="manual", DATABASE_POOL_SIZE=20, EXTRA_PLUGINS=[Tagging, BrokenFilter]
    )


@pytest.fixture
def spa(app, business, clock):
    """A second business, with its own service and provider, and a booking of Ann's."""
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, "spa", name="Spa", timezone="UTC", now=clock())
        service = add_service(
            session, tenant, "Massage", duration_minutes=60, price_cents=8000, slot_step_minutes=60
        )
        provider = add_provider(session, tenant, "Cleo", [service], open_every_day())
        ids = tenant.id, service.id, provider.id
    return ids


def book(client, url, body) -> dict:
    response = client.post(url, json=body)
    assert response.status_code == 201, response.json
    return response.json


def spa_booking(client, spa, start="2027-03-02T09:00:00+00:00", email="ann@example.com"):
    _, service_id, provider_id = spa
    body = {
        "service_id": service_id,
        "provider_id": provider_id,
        "start": start,
        "client": {"name": "Ann", "email": email},
    }
    return book(client, SPA, body)


def data_of(app, tenant_id, now, **fields):
    with app.app_context():
        return make_context(db.session().get(Tenant, tenant_id), now, **fields).data


def outbox_rows(app) -> list[OutboxMessage]:
    with db.fresh_session(app) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def plugin_rows(app) -> list[OutboxMessage]:
    return [row for row in outbox_rows(app) if row.kind == "test.note"]


def send(data, **fields) -> bool:
    message = {"to": "ann@example.com", "subject": "A note", "text": "Hello.", "kind": "test.note"}
    return data.send_mail(**(message | fields))


# --- reading -----------------------------------------------------------------------------------


def test_bookings_are_the_tenants_own_in_the_window_earliest_first(app, client, business, spa):
    late = book(client, SALON, booking_body(business, "2027-03-02T15:00:00+01:00"))
    early = book(client, SALON, booking_body(business, TUESDAY_10, name="Bea"))
    book(client, SALON, booking_body(business, "2027-03-09T10:00:00+01:00"))  # after the window
    spa_booking(client, spa)  # same time, same client, other tenant
    data = data_of(app, business.tenant_id, datetime(2027, 3, 1, tzinfo=UTC))
    found = data.bookings(
        starts_from=datetime(2027, 3, 2, tzinfo=UTC), starts_before=datetime(2027, 3, 3, tzinfo=UTC)
    )
    assert [info.reference for info in found] == [early["reference"], late["reference"]]
    assert found[0].service.name == "Cut" and found[0].provider.name == "Ana"
    assert found[0].start == datetime(2027, 3, 2, 9, tzinfo=UTC)


def test_the_window_is_half_open_and_statuses_filter(app, client, business):
    kept = book(client, SALON, booking_body(business, TUESDAY_10))
    gone = book(client, SALON, booking_body(business, "2027-03-02T11:00:00+01:00", name="Bea"))
    cancelled = client.post(
        f"{SALON}/{gone['reference']}/cancel", json={"token": gone["manage_token"]}
    )
    assert cancelled.status_code == 200
    data = data_of(app, business.tenant_id, datetime(2027, 3, 1, tzinfo=UTC))
    at_nine = datetime(2027, 3, 2, 9, tzinfo=UTC)
    assert data.bookings(starts_from=at_nine - timedelta(hours=1), starts_before=at_nine) == []
    window = {"starts_from": at_nine, "starts_before": at_nine + timedelta(hours=3)}
    assert [info.reference for info in data.bookings(**window)] == [kept["reference"]]
    assert data.bookings(**window, statuses="cancelled")[0].reference == gone["reference"]
    both = data.bookings(**window, statuses=("confirmed", "cancelled"))
    assert [(info.reference, info.status) for info in both] == [
        (kept["reference"], "confirmed"),
        (gone["reference"], "cancelled"),
    ]


def test_client_bookings_ignore_case_and_other_tenants(app, client, business, spa):
    first = book(client, SALON, booking_body(business, TUESDAY_10))
    second = book(client, SALON, booking_body(business, "2027-03-04T10:00:00+01:00"))
    book(client, SALON, booking_body(business, "2027-03-03T10:00:00+01:00", name="Bea"))
    spa_booking(client, spa, email="ANN@example.com")
    data = data_of(app, business.tenant_id, datetime(2027, 3, 1, tzinfo=UTC))
    found = data.client_bookings(" Ann@Example.COM ")
    assert [info.reference for info in found] == [first["reference"], second["reference"]]
    assert data.client_bookings("nobody@example.com") == []


def test_staff_are_the_tenants_active_staff_by_role(app, business, spa, clock):
    def add(tenant_id, email, role, active=True):
        with app.app_context():
            user = create_user(
                app, tenant_id=tenant_id, email=email, role=role, password=None, now=clock()
            )
        if not active:
            with db.write_transaction(app) as session:
                session.get(User, user.id).active = False
        return user.id

    first = add(business.tenant_id, "boss@example.com", "owner")
    second = add(business.tenant_id, "desk@example.com", "receptionist")
    add(business.tenant_id, "gone@example.com", "owner", active=False)
    add(business.tenant_id, "carla@example.com", "client")
    add(spa[0], "spa-boss@example.com", "owner")
    data = data_of(app, business.tenant_id, clock())
    assert [(user.id, user.role) for user in data.staff()] == [
        (first, "owner"),
        (second, "receptionist"),
    ]
    (owner,) = data.staff(roles=("owner",))
    assert (owner.email, owner.tenant_id) == ("boss@example.com", business.tenant_id)
    with pytest.raises(ValueError):
        data.staff(roles=("client",))


def test_a_booking_shows_its_discount(app, client, business):
    booked = book(client, SALON, booking_body(business, TUESDAY_10))
    with db.write_transaction(app) as session:
        row = session.scalar(select(Booking).where(Booking.reference == booked["reference"]))
        row.discount_cents, row.discount_label = 500, "Tenth visit"
    data = data_of(app, business.tenant_id, datetime(2027, 3, 1, tzinfo=UTC))
    (info,) = data.client_bookings("ann@example.com")
    assert (info.discount_cents, info.discount_label) == (500, "Tenth visit")


def test_a_context_reads_nothing_until_asked(app, business, clock):
    statements = []
    engine = db.engine_of(app)

    def count(*args):
        statements.append(args)

    with app.app_context():
        tenant = db.session().get(Tenant, business.tenant_id)
        event.listen(engine, "before_cursor_execute", count)
        try:
            ctx = make_context(tenant, clock())
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert ctx.data is not None and statements == []


# --- sending ------------------------------------------------------------------------------------


def test_send_mail_writes_the_tenants_message_and_delivers_it_in_its_name(
    app, client, business, clock
):
    booked = book(client, SALON, booking_body(business, TUESDAY_10))
    data = data_of(app, business.tenant_id, clock())
    assert send(
        data, text="Line one\nline two.\n\n<b>Second</b> paragraph.", booking=booked["reference"]
    )
    (row,) = plugin_rows(app)
    assert row.tenant_id == business.tenant_id and row.booking_id is not None
    assert row.text_body.startswith("Line one\nline two.") and "--\nSalon" in row.text_body
    assert "<p>Line one<br>line two.</p>" in row.html_body
    assert "&lt;b&gt;Second&lt;/b&gt;" in row.html_body
    deliver_due(app, clock())
    files = (Path(app.instance_path) / "outbox").glob("*.eml")
    notes = [text for text in (path.read_text() for path in files) if "Subject: A note" in text]
    assert len(notes) == 1 and "From: Salon <" in notes[0]


def test_a_once_key_sends_once(app, business, clock):
    data = data_of(app, business.tenant_id, clock())
    assert send(data, once="note:1") is True
    assert send(data, once="note:1", text="Again") is False
    assert send(data, once="note:2") is True
    assert [row.dedupe_key for row in plugin_rows(app)] == ["note:1", "note:2"]


def test_once_keys_are_per_tenant(app, business, spa, clock):
    assert send(data_of(app, business.tenant_id, clock()), once="note:1")
    assert send(data_of(app, spa[0], clock()), once="note:1")
    assert len(plugin_rows(app)) == 2


def test_another_tenants_booking_is_refused(app, client, business, spa, clock):
    theirs = spa_booking(client, spa)
    data = data_of(app, business.tenant_id, clock())
    with pytest.raises(ValueError, match="no booking"):
        send(data, booking=theirs["reference"])
    assert plugin_rows(app) == []


@pytest.mark.parametrize(
    "fields",
    [{"to": "a@example.com\nBcc: b@example.com"}, {"to": "nobody"}, {"subject": "Two\nlines"}],
)
def test_a_message_that_could_not_be_sent_is_refused(app, business, clock, fields):
    with pytest.raises(ValueError):
        send(data_of(app, business.tenant_id, clock()), **fields)
    assert plugin_rows(app) == []


def test_a_dry_run_writes_nothing(app, business, clock):
    data = data_of(app, business.tenant_id, clock(), dry_run=True)
    assert send(data, once="note:1") is True
    assert send(data, once="note:1") is True
    assert plugin_rows(app) == []


def test_a_dry_run_answers_as_the_real_run_would(app, business, clock):
    assert send(data_of(app, business.tenant_id, clock()), once="note:1") is True
    data = data_of(app, business.tenant_id, clock(), dry_run=True)
    assert send(data, once="note:1") is False  # already sent: a preview must not list it
    assert send(data, once="note:2") is True
    assert len(plugin_rows(app)) == 1


def test_the_tenants_filters_apply_and_a_failing_one_holds(app, business, spa, clock):
    plugin_changes.enable(app, business.tenant_id, "tagging", {}, clock())
    send(data_of(app, business.tenant_id, clock()))
    send(data_of(app, spa[0], clock()))
    assert [row.subject for row in plugin_rows(app)] == ["[salon] A note", "A note"]
    plugin_changes.enable(app, business.tenant_id, "broken-filter", {}, clock())
    send(data_of(app, business.tenant_id, clock()), once="held")
    (held,) = [row for row in plugin_rows(app) if row.dedupe_key == "held"]
    assert held.next_attempt_at == outbox.HELD_UNTIL
    assert held.last_error.startswith("held: filter_message of broken-filter")


@pytest.mark.parametrize("early_check", [True, False])
def test_racing_senders_of_one_key_write_one_message(
    make_app, app, business, clock, monkeypatch, early_check
):
    if not early_check:  # every caller reaches the insert: the constraint alone decides
        monkeypatch.setattr(PluginData, "_seen", lambda self, session, once: False)
    # Two apps are two engines, as two worker processes would have.
    apps = [app, make_app(MAIL_DELIVERY="manual", DATABASE_POOL_SIZE=20)]
    callers = 12
    start = threading.Barrier(callers)
    answers, errors = [], []

    def race(index):
        data = data_of(apps[index % 2], business.tenant_id, clock())
        start.wait()
        try:
            answers.append(send(data, once="race"))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=race, args=(index,)) for index in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(answers) == [False] * (callers - 1) + [True]
    assert len(plugin_rows(app)) == 1


def test_a_hook_reaches_the_data_through_its_context(make_app, business, clock):
    seen = []

    class Counting:
        MANIFEST = Manifest("counting", "Counting", "Counts.", "1.0", "test", "tests")

        @hookimpl
        def on_schedule(ctx):
            seen.append(len(ctx.data.client_bookings("ann@example.com")))

    app = make_app(MAIL_DELIVERY="manual", EXTRA_PLUGINS=[Counting])
    plugin_changes.enable(app, business.tenant_id, "counting", {}, clock())
    client = app.test_client()
    book(client, SALON, booking_body(business, TUESDAY_10))
    with app.app_context():
        schedule.tick(app, clock())
    assert seen == [1]
