"""ctx.store: a plugin's own key -> JSON values per tenant, in the database: each call commits on
its own, expiry follows ctx.now, increments and compare-and-set stay exact however many threads
race, and neither another tenant nor another plugin can see or touch a key. Plugins reach it
from their hooks and, through ``plugin_context``, from their views."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import add_staff_and_a_rival, booking_body, log_in_staff
from flask import Blueprint, jsonify, request
from guide_examples import guide_example
from sqlalchemy import select

from bookwell.core.booking.tenants import create_tenant
from bookwell.core.context import make_context
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.scheduling import schedule
from bookwell.core.storage import db
from bookwell.core.storage.models import PluginStoreEntry, Tenant
from bookwell.core.web.plugin_pages import run_as_command_of
from bookwell.hooks import Manifest, Refusal, Setting, hookimpl
from bookwell.hooks.pages import plugin_context, plugin_settings, require_staff

SALON = "/api/v1/tenants/salon/bookings"


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


class ThreeStrikes:
    """A guard that lets each client book twice an hour: the count lives in ctx.store."""

    MANIFEST = manifest("three-strikes")

    @hookimpl
    def before_confirm(ctx):
        key = f"bookings:{ctx.booking.client_email}"
        if ctx.store.increment(key, expires_at=ctx.now + timedelta(hours=1)) > 2:
            return Refusal("Twice an hour is enough.", "too_many_bookings", status=429)
        return None


class Ticks:
    """Scheduled work that counts its runs, and a page that shows the count and bumps its own."""

    MANIFEST = manifest("ticks")

    @hookimpl
    def on_schedule(ctx):
        ctx.store.increment("runs")

    @hookimpl
    def routes():
        pages = Blueprint("ticks", __name__, url_prefix="/book/<slug>/ticks")

        @pages.get("/")
        def show(slug):
            ctx = plugin_context(slug)
            views = ctx.store.increment("views")
            return jsonify(
                plugin=ctx.plugin,
                tenant=ctx.tenant.slug,
                runs=ctx.store.get("runs", 0),
                views=views,
                actor=ctx.actor.email if ctx.actor else None,
            )

        @pages.get("/elsewhere")
        def elsewhere(slug):
            # A view may ask for another business's context: the same wall applies.
            return jsonify(views=plugin_context(request.args["other"]).store.get("views"))

        @pages.get("/staff")
        def staff(slug):
            require_staff(slug)
            return jsonify(actor=plugin_context(slug).actor.email)

        return pages


class Greeter:
    """A page that reads its plugin's settings through ``plugin_settings``."""

    MANIFEST = Manifest(
        "greeter",
        "Greeter",
        "Test plugin greeter.",
        "1.0",
        "test",
        "tests",
        settings=(Setting("greeting", "str", "Hello", "Greeting"),),
    )

    @hookimpl
    def routes():
        pages = Blueprint("greeter", __name__, url_prefix="/book/<slug>/greeter")

        @pages.get("/")
        def greet(slug):
            settings = plugin_settings(slug)
            try:
                settings["greeting"] = "changed"  # type: ignore[index]
            except TypeError:
                read_only = True
            else:
                read_only = False
            return jsonify(settings=dict(settings), read_only=read_only)

        return pages


@pytest.fixture
def app(make_app):
    return make_app(DATABASE_POOL_SIZE=24, EXTRA_PLUGINS=[ThreeStrikes, Ticks, Greeter])


@pytest.fixture
def spa_id(app, business, clock) -> int:
    with db.write_transaction(app) as session:
        return create_tenant(session, "spa", name="Spa", timezone="UTC", now=clock()).id


def store_of(app, tenant_id, now, plugin="ticks", **fields):
    """The store a hook of ``plugin`` gets: bound by the context, as the host binds it."""
    with app.app_context():
        tenant = db.session().get(Tenant, tenant_id)
        return make_context(tenant, now, **fields).for_plugin(plugin).store


def rows(app) -> list[tuple[int, str, str]]:
    with db.fresh_session(app) as session:
        found = session.execute(
            select(PluginStoreEntry.tenant_id, PluginStoreEntry.plugin, PluginStoreEntry.key)
        )
        return sorted(tuple(row) for row in found)


def enable(app, tenant_id, name, clock):
    with app.app_context():
        plugin_changes.enable(app, tenant_id, name, {}, clock())


# --- each call -----------------------------------------------------------------------------------


def test_values_come_back_as_json_and_absent_keys_as_the_default(app, business, clock):
    store = store_of(app, business.tenant_id, clock())
    assert store.get("nothing") is None
    assert store.get("nothing", 0) == 0
    for value in ({"a": [1, 2.5, "x"], "b": None}, [True, False], "text", 7, 0.25, None):
        store.set("key", value)
        assert store.get("key", "default") == value
    store.set("key", (1, 2))  # JSON has no tuples
    assert store.get("key") == [1, 2]
    # Each call committed on its own: another store (another process, say) sees it.
    assert store_of(app, business.tenant_id, clock()).get("key") == [1, 2]


def test_delete_says_whether_the_key_was_there(app, business, clock):
    store = store_of(app, business.tenant_id, clock())
    store.set("key", 1)
    assert store.delete("key") is True
    assert store.get("key") is None
    assert store.delete("key") is False
    store.set("stale", 1, expires_at=clock() + timedelta(minutes=1))
    clock.advance(minutes=1)
    assert store_of(app, business.tenant_id, clock()).delete("stale") is False
    assert rows(app) == []  # the expired row went too


def test_a_key_expires_when_ctx_now_reaches_its_expiry(app, business, clock):
    store_of(app, business.tenant_id, clock()).set(
        "session", "abc", expires_at=clock() + timedelta(minutes=10)
    )
    clock.advance(minutes=9, seconds=59)
    assert store_of(app, business.tenant_id, clock()).get("session") == "abc"
    clock.advance(seconds=1)
    assert store_of(app, business.tenant_id, clock()).get("session") is None
    # ctx.now, not the wall clock: a context made for an earlier instant still sees it.
    earlier = clock() - timedelta(minutes=5)
    assert store_of(app, business.tenant_id, earlier).get("session") == "abc"


def test_increment_counts_from_zero_and_a_live_key_keeps_its_expiry(app, business, clock):
    store = store_of(app, business.tenant_id, clock())
    hour = clock() + timedelta(hours=1)
    assert store.increment("tries", expires_at=hour) == 1
    assert store.increment("tries", expires_at=hour + timedelta(days=9)) == 2
    assert store.increment("tries", by=5) == 7
    assert store.increment("tries", by=-10) == -3
    clock.advance(hours=1)  # the first expiry stands: the later ones did not extend it
    later = store_of(app, business.tenant_id, clock())
    assert later.get("tries") is None
    assert later.increment("tries", by=2, expires_at=clock() + timedelta(minutes=5)) == 2
    clock.advance(minutes=5)
    assert store_of(app, business.tenant_id, clock()).get("tries") is None


def test_increment_refuses_what_is_not_a_whole_number(app, business, clock):
    store = store_of(app, business.tenant_id, clock())
    for value in ("3", 1.5, True, [1]):
        store.set("key", value)
        with pytest.raises(ValueError, match="not a whole number"):
            store.increment("key")
        assert store.get("key") == value  # unchanged
    for by in (1.0, True, "1"):
        with pytest.raises(ValueError, match="whole number"):
            store.increment("fresh", by=by)
    assert store.get("fresh") is None


def test_compare_and_set_sets_only_from_the_value_given(app, business, clock):
    store = store_of(app, business.tenant_id, clock())
    assert store.compare_and_set("lock", None, "ann") is True  # None: only if absent
    assert store.compare_and_set("lock", None, "bob") is False
    assert store.compare_and_set("lock", "bob", "cat") is False
    assert store.get("lock") == "ann"
    assert store.compare_and_set("lock", "ann", {"by": "bob"}) is True
    assert store.compare_and_set("lock", {"by": "bob"}, 1) is True
    assert store.compare_and_set("lock", True, 2) is False  # 1 is not True in JSON
    assert store.compare_and_set("lock", 1.0, 2) is False  # nor 1.0
    assert store.get("lock") == 1
    store.set("null", None)
    assert store.compare_and_set("null", None, 1) is False  # a stored null is not absent


def test_compare_and_set_treats_an_expired_key_as_absent_and_sets_the_expiry(app, business, clock):
    store = store_of(app, business.tenant_id, clock())
    assert store.compare_and_set("lock", None, "ann", expires_at=clock() + timedelta(minutes=1))
    assert store.compare_and_set("lock", None, "bob") is False
    clock.advance(minutes=1)
    later = store_of(app, business.tenant_id, clock())
    assert later.compare_and_set("lock", "ann", "cat") is False  # it expired
    assert later.compare_and_set("lock", None, "bob") is True
    clock.advance(days=365)
    assert store_of(app, business.tenant_id, clock()).get("lock") == "bob"  # no expiry given


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda store: store.get(""), "1 to 200"),
        (lambda store: store.set("k" * 201, 1), "1 to 200"),
        (lambda store: store.set(7, 1), "1 to 200"),
        (lambda store: store.increment("a\x00b"), "1 to 200"),
        (lambda store: store.set("key", object()), "JSON"),
        (lambda store: store.set("key", {1, 2}), "JSON"),
        (lambda store: store.set("key", float("nan")), "JSON"),
        (lambda store: store.set("key", {"a": 1, 2: "b"}), "JSON"),
        (lambda store: store.set("key", "x" * (64 * 1024)), "64 KiB"),
        (lambda store: store.compare_and_set("key", None, object()), "JSON"),
        (lambda store: store.set("key", 1, expires_at=datetime(2027, 3, 1)), "aware"),
        (lambda store: store.increment("key", expires_at="tomorrow"), "aware"),
    ],
)
def test_bad_keys_values_and_expiries_are_refused_and_change_nothing(
    app, business, clock, call, message
):
    with pytest.raises(ValueError, match=message):
        call(store_of(app, business.tenant_id, clock()))
    assert rows(app) == []


def test_a_value_just_under_the_limit_is_kept(app, business, clock):
    store = store_of(app, business.tenant_id, clock())
    store.set("big", "x" * (64 * 1024 - 2))  # with its quotes, exactly 64 KiB
    assert len(store.get("big")) == 64 * 1024 - 2


# --- walls ---------------------------------------------------------------------------------------


def test_tenants_and_plugins_each_have_their_own_keys(app, business, spa_id, clock):
    now = clock()
    salon_ticks = store_of(app, business.tenant_id, now, "ticks")
    salon_other = store_of(app, business.tenant_id, now, "three-strikes")
    spa_ticks = store_of(app, spa_id, now, "ticks")
    salon_ticks.set("key", "salon's")
    salon_other.set("key", "the other plugin's")
    spa_ticks.set("key", "spa's")
    assert salon_ticks.increment("count") == 1
    assert spa_ticks.increment("count") == 1
    assert salon_other.compare_and_set("count", None, "free") is True
    assert spa_ticks.delete("key") is True
    assert salon_ticks.get("key") == "salon's"
    assert salon_other.get("key") == "the other plugin's"
    assert spa_ticks.get("key") is None
    assert salon_ticks.get("count") == 1 and salon_other.get("count") == "free"


# --- expired rows and dry runs -------------------------------------------------------------------


def test_expired_rows_are_pruned_when_a_new_key_is_made_and_only_the_plugins_own(
    app, business, spa_id, clock
):
    soon = clock() + timedelta(minutes=1)
    for number in range(3):
        store_of(app, business.tenant_id, clock()).set(f"old{number}", number, expires_at=soon)
    store_of(app, business.tenant_id, clock(), "three-strikes").set("old", 1, expires_at=soon)
    store_of(app, spa_id, clock()).set("old", 1, expires_at=soon)
    store_of(app, business.tenant_id, clock()).set("kept", 1)
    clock.advance(minutes=1)
    store_of(app, business.tenant_id, clock()).increment("new")
    assert rows(app) == sorted(
        [
            (business.tenant_id, "ticks", "kept"),
            (business.tenant_id, "ticks", "new"),
            (business.tenant_id, "three-strikes", "old"),
            (spa_id, "ticks", "old"),
        ]
    )


def test_a_dry_run_reads_and_answers_as_the_real_run_would_but_writes_nothing(app, business, clock):
    store_of(app, business.tenant_id, clock()).set("count", 4)
    dry = store_of(app, business.tenant_id, clock(), dry_run=True)
    assert dry.get("count") == 4
    assert dry.increment("count", by=2) == 6
    assert dry.increment("fresh") == 1
    assert dry.compare_and_set("count", 4, 5) is True
    assert dry.compare_and_set("count", 3, 5) is False
    assert dry.compare_and_set("fresh", None, 1) is True
    assert dry.delete("count") is True and dry.delete("fresh") is False
    dry.set("count", 100)
    dry.set("fresh", 100)
    assert rows(app) == [(business.tenant_id, "ticks", "count")]
    assert dry.get("count") == 4


# --- concurrency ---------------------------------------------------------------------------------


def race(threads: int, work) -> list:
    """Run ``work(i)`` in ``threads`` threads started at once; their answers, in order."""
    answers: list = [None] * threads
    errors: list = []
    start = threading.Barrier(threads)

    def run(number: int) -> None:
        start.wait()
        try:
            answers[number] = work(number)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    running = [threading.Thread(target=run, args=(number,)) for number in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    assert errors == []
    return answers


def test_twenty_threads_incrementing_one_key_give_twenty(app, business, clock):
    stores = [store_of(app, business.tenant_id, clock()) for _ in range(20)]
    answers = race(20, lambda number: stores[number].increment("hits"))
    assert sorted(answers) == list(range(1, 21))
    assert stores[0].get("hits") == 20


def test_twenty_threads_incrementing_an_existing_key_give_twenty_more(app, business, clock):
    store_of(app, business.tenant_id, clock()).set("hits", 100)
    stores = [store_of(app, business.tenant_id, clock()) for _ in range(20)]
    answers = race(20, lambda number: stores[number].increment("hits", by=2))
    assert sorted(answers) == list(range(102, 141, 2))
    assert stores[0].get("hits") == 140


def test_of_racing_compare_and_sets_exactly_one_wins(app, business, clock):
    stores = [store_of(app, business.tenant_id, clock()) for _ in range(20)]
    claimed = race(20, lambda number: stores[number].compare_and_set("lock", None, number))
    assert claimed.count(True) == 1
    winner = claimed.index(True)
    assert stores[0].get("lock") == winner
    moved = race(20, lambda number: stores[number].compare_and_set("lock", winner, f"{number}"))
    assert moved.count(True) == 1
    assert stores[0].get("lock") == f"{moved.index(True)}"


def test_an_expired_key_reused_while_new_keys_prune_stays_exact(app, business, clock):
    store_of(app, business.tenant_id, clock()).set("old", 50, expires_at=clock())
    stores = [store_of(app, business.tenant_id, clock()) for _ in range(20)]

    def work(number: int) -> int:
        if number % 2:
            return stores[number].increment(f"new{number}")  # makes a key: prunes
        return stores[number].increment("old")

    answers = race(20, work)
    assert sorted(answers[0::2]) == list(range(1, 11))  # from 0: 50 had expired
    assert stores[0].get("old") == 10


# --- through a plugin's hooks and views ----------------------------------------------------------


def test_a_guard_counts_in_its_store_and_the_count_expires_with_the_clock(app, business, clock):
    enable(app, business.tenant_id, "three-strikes", clock)
    client = app.test_client()
    for hour in ("10", "11"):
        start = f"2027-03-02T{hour}:00:00+01:00"
        assert client.post(SALON, json=booking_body(business, start)).status_code == 201
    refused = client.post(SALON, json=booking_body(business, "2027-03-02T12:00:00+01:00"))
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "too_many_bookings"
    other = client.post(SALON, json=booking_body(business, "2027-03-02T12:00:00+01:00", name="Bo"))
    assert other.status_code == 201  # Bo has a count of his own
    clock.advance(hours=1)
    again = client.post(SALON, json=booking_body(business, "2027-03-02T13:00:00+01:00"))
    assert again.status_code == 201
    counts = store_of(app, business.tenant_id, clock(), "three-strikes")
    assert counts.get("bookings:ann@example.com") == 1


def test_scheduled_work_counts_in_its_store_and_a_dry_run_writes_nothing(app, business, clock):
    enable(app, business.tenant_id, "ticks", clock)
    with app.app_context():
        schedule.tick(app, clock(), dry_run=True)
    assert store_of(app, business.tenant_id, clock()).get("runs") is None
    with app.app_context():
        schedule.tick(app, clock())
    assert store_of(app, business.tenant_id, clock()).get("runs") == 1


def test_a_view_gets_the_plugins_store_through_plugin_context(app, business, spa_id, clock):
    enable(app, business.tenant_id, "ticks", clock)
    store_of(app, business.tenant_id, clock()).set("runs", 3)
    client = app.test_client()
    first = client.get("/book/salon/ticks/").json
    assert first == {"plugin": "ticks", "tenant": "salon", "runs": 3, "views": 1, "actor": None}
    assert client.get("/book/salon/ticks/").json["views"] == 2
    # The very store its hooks get.
    assert store_of(app, business.tenant_id, clock()).get("views") == 2
    assert store_of(app, business.tenant_id, clock(), "three-strikes").get("views") is None
    assert client.get("/book/spa/ticks/").status_code == 404  # spa has not enabled it
    assert client.get("/book/salon/ticks/elsewhere?other=spa").status_code == 404
    assert client.get("/book/salon/ticks/elsewhere?other=nobody").status_code == 404
    assert client.get("/book/salon/ticks/elsewhere?other=salon").json == {"views": 2}
    assert rows(app) == [
        (business.tenant_id, "ticks", "runs"),
        (business.tenant_id, "ticks", "views"),
    ]


def test_plugin_context_names_who_is_signed_in_of_that_business_only(app, business, clock):
    enable(app, business.tenant_id, "ticks", clock)
    spa_id = add_staff_and_a_rival(app, business, clock(), ("owner",))
    enable(app, spa_id, "ticks", clock)
    owner = log_in_staff(app, "owner@example.com")
    assert owner.get("/book/salon/ticks/").json["actor"] == "owner@example.com"
    assert owner.get("/book/salon/ticks/staff").json == {"actor": "owner@example.com"}
    # Signed in to the salon, on the spa's page: nobody the spa knows.
    assert owner.get("/book/spa/ticks/").json["actor"] is None


def test_a_view_reads_its_plugins_settings_for_that_business_only(app, business, spa_id, clock):
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "greeter", {"greeting": "Bonjour"}, clock())
    client = app.test_client()
    assert client.get("/book/salon/greeter/").json == {
        "settings": {"greeting": "Bonjour"},
        "read_only": True,
    }
    assert client.get("/book/spa/greeter/").status_code == 404  # spa has not enabled it


def test_a_command_reads_the_settings_a_business_keeps_even_while_the_plugin_is_off(
    app, business, spa_id, clock
):
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "greeter", {"greeting": "Hej"}, clock())
        plugin_changes.disable(app, business.tenant_id, "greeter", clock())
    with app.app_context():
        run_as_command_of("greeter")
        assert dict(plugin_settings("salon")) == {"greeting": "Hej"}
        assert dict(plugin_settings("spa")) == {"greeting": "Hello"}  # the defaults
        with pytest.raises(LookupError):
            plugin_settings("nobody")


def test_plugin_context_outside_a_plugins_views_and_commands_is_an_error(app, business):
    with app.test_request_context("/book/salon/"), pytest.raises(RuntimeError):
        plugin_context("salon")
    with app.app_context(), pytest.raises(RuntimeError):
        plugin_context("salon")
    with app.app_context(), pytest.raises(RuntimeError):
        plugin_settings("salon")


def test_the_rows_keep_when_they_were_written(app, business, clock):
    store_of(app, business.tenant_id, clock()).set("key", 1)
    clock.advance(minutes=3)
    store_of(app, business.tenant_id, clock()).increment("key")
    with db.fresh_session(app) as session:
        row = session.scalars(select(PluginStoreEntry)).one()
    assert row.updated_at == clock().astimezone(UTC)


def test_the_guides_example_counts_bookings_per_hour(make_app, business, clock):
    limit = guide_example(
        "Keeping state: `ctx.store`",
        "ctx.store.increment",
        MANIFEST=Manifest(
            "booking_limit",
            "Booking limit",
            "A few bookings an hour per address.",
            "1.0",
            "test",
            "tests",
            settings=(Setting("per_hour", "int", 5, "Bookings an hour"),),
        ),
    )
    app = make_app(EXTRA_PLUGINS=[limit])
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "booking_limit", {"per_hour": 2}, clock())
    client = app.test_client()
    for hour in ("10", "11"):
        body = booking_body(business, f"2027-03-03T{hour}:00:00+01:00")
        assert client.post(SALON, json=body).status_code == 201
    third = client.post(SALON, json=booking_body(business, "2027-03-03T12:00:00+01:00"))
    assert third.status_code == 429 and third.json["error"]["code"] == "too_many"
    clock.advance(hours=1)
    fourth = client.post(SALON, json=booking_body(business, "2027-03-03T12:00:00+01:00"))
    assert fourth.status_code == 201
