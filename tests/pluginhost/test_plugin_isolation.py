"""A plugin that raises or hangs never takes a page down, and the marketplace can count it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from conftest import booking_body
from sqlalchemy import func, select

from bookwell.core.booking.tenants import create_tenant
from bookwell.core.context import make_context
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost import health as plugin_health
from bookwell.core.pluginhost.host import MAX_STUCK_CALLS, host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, PluginFailure, Tenant
from bookwell.hooks import Manifest, hookimpl

BOOKINGS = "/api/v1/tenants/salon/bookings"
SLOTS = [f"2027-03-02T{hour:02d}:00:00+01:00" for hour in range(9, 17)]
stuck = threading.Event()


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


class HangingEvent:
    MANIFEST = manifest("hanging-event")
    entered = threading.Event()
    left = threading.Event()

    @hookimpl
    def after_confirm(ctx):
        HangingEvent.entered.set()
        stuck.wait(30)
        HangingEvent.left.set()


class RaisingEvent:
    MANIFEST = manifest("raising-event")

    @hookimpl
    def after_confirm(ctx):
        raise RuntimeError("the loyalty server is down")


class Listener:
    MANIFEST = manifest("listener")
    heard: list[str] = []

    @hookimpl
    def after_confirm(ctx):
        Listener.heard.append(ctx.booking.reference)


class HangingGuard:
    MANIFEST = manifest("hanging-guard")
    calls = 0

    @hookimpl
    def before_confirm(ctx):
        HangingGuard.calls += 1
        stuck.wait(30)


class RaisingHeaders:
    MANIFEST = manifest("raising-headers")

    @hookimpl
    def response_headers(ctx):
        raise ValueError("no header for you")


class UsesTheApp:
    """Hooks run on worker threads, yet inside the app's context (as they did in the request)."""

    MANIFEST = manifest("uses-the-app")
    names: list[str] = []

    @hookimpl
    def after_confirm(ctx):
        from flask import current_app

        UsesTheApp.names.append(current_app.name)


PLUGINS = [HangingEvent, RaisingEvent, Listener, HangingGuard, RaisingHeaders, UsesTheApp]


@pytest.fixture
def plugin_app(make_app):
    stuck.clear()
    Listener.heard.clear()
    HangingGuard.calls = 0
    app = make_app(EXTRA_PLUGINS=PLUGINS, GUARD_TIMEOUT_SECONDS=0.3)
    yield app
    stuck.set()


@pytest.fixture
def enable(plugin_app, business, clock):
    def switch_on(name, tenant_id=None):
        with plugin_app.app_context():
            plugin_changes.enable(plugin_app, tenant_id or business.tenant_id, name, {}, clock())

    return switch_on


@pytest.fixture
def other_tenant(plugin_app, clock):
    with db.write_transaction(plugin_app) as session:
        return create_tenant(
            session, "barber", name="Barber", timezone="Europe/Paris", now=clock()
        ).id


def book(app, business, start):
    return app.test_client().post(BOOKINGS, json=booking_body(business, start))


def failures(app, tenant_id, clock):
    with app.app_context():
        return plugin_health.recent_failures(db.session(), tenant_id, clock() - timedelta(hours=24))


def test_a_hanging_event_is_left_behind_and_the_booking_answers(plugin_app, business, enable):
    enable("hanging-event")
    enable("listener")
    HangingEvent.entered.clear()
    HangingEvent.left.clear()
    response = book(plugin_app, business, SLOTS[0])
    assert response.status_code == 201
    # The booking answered while the plugin was still inside its event: nobody waited for it.
    assert HangingEvent.entered.is_set() and not HangingEvent.left.is_set()
    assert Listener.heard == [response.json["reference"]]


def test_a_raising_event_is_counted_for_its_tenant_only(
    plugin_app, business, enable, clock, other_tenant
):
    enable("raising-event")
    enable("listener")
    assert book(plugin_app, business, SLOTS[0]).status_code == 201
    assert book(plugin_app, business, SLOTS[1]).status_code == 201
    assert len(Listener.heard) == 2
    counted = failures(plugin_app, business.tenant_id, clock)
    assert set(counted) == {"raising-event"}
    assert counted["raising-event"].count == 2
    assert counted["raising-event"].last_hook == "after_confirm"
    assert "the loyalty server is down" in counted["raising-event"].last_message
    assert failures(plugin_app, other_tenant, clock) == {}


def test_a_failure_older_than_the_window_is_not_recent(plugin_app, business, enable, clock):
    enable("raising-event")
    assert book(plugin_app, business, SLOTS[0]).status_code == 201
    clock.advance(hours=25)
    assert failures(plugin_app, business.tenant_id, clock) == {}


def test_a_hung_guard_is_skipped_once_it_holds_its_share_of_threads(
    plugin_app, business, enable, clock
):
    enable("hanging-guard")
    for start in SLOTS[: MAX_STUCK_CALLS + 2]:
        response = book(plugin_app, business, start)
        assert response.status_code == 503
        assert response.json["error"]["code"] == "plugin_failed"
    # Only MAX_STUCK_CALLS calls ever reached the plugin; the rest were refused at once.
    assert HangingGuard.calls == MAX_STUCK_CALLS
    counted = failures(plugin_app, business.tenant_id, clock)["hanging-guard"]
    assert counted.count == MAX_STUCK_CALLS + 2
    assert counted.last_message == "is not responding"
    with db.engine_of(plugin_app).connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Booking)) == 0


def test_a_hung_plugin_costs_other_tenants_nothing(
    plugin_app, business, enable, clock, other_tenant
):
    enable("hanging-guard")
    for start in SLOTS[: MAX_STUCK_CALLS + 1]:
        assert book(plugin_app, business, start).status_code == 503
    # The tenant without the plugin browses while the plugin's calls are still stuck.
    page = plugin_app.test_client().get("/book/barber/")
    assert page.status_code == 200
    assert not stuck.is_set()


def test_a_raising_response_header_refuses_that_tenants_pages_only(
    plugin_app, business, enable, other_tenant, clock
):
    enable("raising-headers")
    client = plugin_app.test_client()
    refused = client.get("/book/salon/")
    assert refused.status_code == 503
    assert refused.content_type.startswith("text/html")  # a page for the browser, not JSON
    assert "no header for you" not in refused.get_data(as_text=True)
    assert client.get("/book/barber/").status_code == 200
    assert failures(plugin_app, business.tenant_id, clock)["raising-headers"].count == 1


def test_hooks_run_inside_the_app_context(plugin_app, business, enable):
    enable("uses-the-app")
    UsesTheApp.names.clear()
    assert book(plugin_app, business, SLOTS[0]).status_code == 201
    assert UsesTheApp.names == [plugin_app.name]


def test_failures_noted_inside_a_write_transaction_are_stored_after_it(plugin_app, business, clock):
    """A failure can be noted while the caller holds the write lock (SQLite allows one writer):
    it is kept in memory and written when the context ends, never inside the transaction."""
    host = host_of(plugin_app)
    with plugin_app.app_context():
        with db.write_transaction(plugin_app):
            host.note_failure(None, "listener", "filter_message", "held")
        with db.engine_of(plugin_app).connect() as connection:
            assert connection.scalar(select(func.count()).select_from(PluginFailure)) == 0
    with db.engine_of(plugin_app).connect() as connection:
        assert connection.scalar(select(func.count()).select_from(PluginFailure)) == 1


def test_scheduled_work_forgets_failures_older_than_a_month(
    plugin_app, business, enable, clock, other_tenant
):
    from bookwell.core.scheduling import schedule

    enable("raising-event")
    enable("raising-event", tenant_id=other_tenant)
    host = host_of(plugin_app)
    with plugin_app.app_context():
        for tenant_id in (business.tenant_id, other_tenant):
            tenant = db.session().get(Tenant, tenant_id)
            host.note_failure(make_context(tenant, clock()), "raising-event", "after_confirm", "x")
    clock.advance(days=31)
    with plugin_app.app_context():
        schedule.tick(plugin_app, clock(), slug="salon")
    with db.engine_of(plugin_app).connect() as connection:
        left = connection.execute(select(PluginFailure.tenant_id)).scalars().all()
    assert left == [other_tenant]  # the salon's month-old failure went; the other tenant's stays
