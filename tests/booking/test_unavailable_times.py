"""Availability that plugins shape: ``unavailable_times`` leaves ranges out of the API's
availability and the booking pages, asked once per provider per request; a failing plugin is
logged, counted and ignored, and booking itself is still decided by the guards alone."""

from __future__ import annotations

import re
import threading
import types
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from booking_pages import BOOK, details_url, links
from conftest import booking_body

from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost import health as plugin_health
from bookwell.core.pluginhost.settings import InvalidSettings
from bookwell.core.storage import db
from bookwell.core.testing import open_business
from bookwell.hooks import Manifest, Setting, hookimpl

PARIS = ZoneInfo("Europe/Paris")
released = threading.Event()


def manifest(name: str, *settings: Setting) -> Manifest:
    return Manifest(
        name, name.title(), f"Test plugin {name}.", "1.0", "scheduling", "tests", settings
    )


class Lunch:
    """Every provider's lunch hour, each day of the window, in the business's time."""

    MANIFEST = manifest("u-lunch", Setting("hour", "int", 12, "Lunch at", min=0, max=23))
    calls: list[tuple] = []

    @hookimpl
    def unavailable_times(ctx, settings, start, end, service, provider):
        Lunch.calls.append((ctx.tenant.slug, provider.id, provider.name, service.name, start, end))
        zone = ZoneInfo(ctx.tenant.timezone)
        day, ranges = start.astimezone(zone).date(), []
        while datetime.combine(day, time(), zone) < end:
            lunch = datetime.combine(day, time(settings["hour"]), zone)
            ranges.append((lunch, lunch + timedelta(hours=1)))
            day += timedelta(days=1)
        return ranges


class Holiday:
    """Ana is away all of Thursday 4 March 2027."""

    MANIFEST = manifest("u-holiday")

    @hookimpl
    def unavailable_times(ctx, provider):
        if provider.name != "Ana":
            return None
        day = datetime(2027, 3, 4, tzinfo=PARIS)
        return [(day, day + timedelta(days=1))]


class Crash:
    MANIFEST = manifest("u-crash")
    calls = 0

    @hookimpl
    def unavailable_times(ctx):
        Crash.calls += 1
        raise RuntimeError("bug in unavailable_times")


class Hang:
    MANIFEST = manifest("u-hang")

    @hookimpl
    def unavailable_times(ctx):
        released.wait(10)


class Sloppy:
    """Some good ranges among nonsense: only the good ones count."""

    MANIFEST = manifest("u-sloppy")

    @hookimpl
    def unavailable_times(ctx, start):
        ten = datetime(2027, 3, 2, 10, tzinfo=PARIS)
        return [
            (ten, ten + timedelta(minutes=30)),  # the one good range
            (datetime(2027, 3, 2, 14), datetime(2027, 3, 2, 15)),  # naive
            (ten + timedelta(hours=6), ten + timedelta(hours=5)),  # ends before it starts
            ("14:00", "15:00"),
            (ten,),
        ]


class Lazy:
    """A generator: its code would run outside its time limit, so it is refused."""

    MANIFEST = manifest("u-lazy")

    @hookimpl
    def unavailable_times(ctx, start):
        yield (start, start + timedelta(days=1))


PLUGINS = [Lunch, Holiday, Crash, Hang, Sloppy, Lazy]


@pytest.fixture
def app(make_app):
    released.clear()
    Lunch.calls.clear()
    Crash.calls = 0
    app = make_app(EXTRA_PLUGINS=PLUGINS, GUARD_TIMEOUT_SECONDS=0.3)
    yield app
    released.set()


@pytest.fixture
def enable(app, business, clock):
    def switch_on(name, tenant_id=None, **settings):
        with app.app_context():
            plugin_changes.enable(app, tenant_id or business.tenant_id, name, settings, clock())

    return switch_on


def starts(client, business, day_from, day_to=None, provider_id=None) -> list[tuple[str, int]]:
    url = (
        f"/api/v1/tenants/{business.slug}/availability?service_id={business.service_id}"
        f"&from={day_from}&to={day_to or day_from}"
    )
    if provider_id:
        url += f"&provider_id={provider_id}"
    response = client.get(url)
    assert response.status_code == 200, response.json
    return [(slot["start"], slot["provider_id"]) for slot in response.json["slots"]]


def times(found, provider_id) -> list[str]:
    return [start[11:16] for start, provider in found if provider == provider_id]


def recent_failures(app, business, clock) -> dict:
    with db.fresh_session(app) as session:
        return plugin_health.recent_failures(
            session, business.tenant_id, clock() - timedelta(days=1)
        )


ALL_DAY = [f"{hour:02}:{minute}" for hour in range(9, 17) for minute in ("00", "30")]


# --- the API --------------------------------------------------------------------------------------


def test_a_plugin_leaves_its_ranges_out_of_the_availability_answer(client, business, enable):
    enable("u-lunch", hour=12)
    found = starts(client, business, "2027-03-02")
    lunchless = [t for t in ALL_DAY if t not in ("12:00", "12:30")]
    assert times(found, business.provider_id) == lunchless
    assert times(found, business.second_provider_id) == lunchless


def test_it_is_asked_once_per_provider_for_the_whole_window(client, business, enable):
    enable("u-lunch")
    found = starts(client, business, "2027-03-02", "2027-03-08")
    assert len(Lunch.calls) == 2  # one per provider, whatever the days and slots
    asked = {call[1]: call for call in Lunch.calls}
    assert set(asked) == {business.provider_id, business.second_provider_id}
    slug, _, name, service, start, end = asked[business.provider_id]
    assert (slug, name, service) == ("salon", "Ana", "Cut")
    assert start == datetime(2027, 3, 2, tzinfo=PARIS) and end == datetime(2027, 3, 9, tzinfo=PARIS)
    assert {start[:10] for start, _ in found} == {f"2027-03-0{day}" for day in range(2, 9)}
    assert not any(start[11:13] == "12" for start, _ in found)
    Lunch.calls.clear()
    starts(client, business, "2027-03-02", "2027-03-08", provider_id=business.provider_id)
    assert [call[1] for call in Lunch.calls] == [business.provider_id]


def test_a_range_for_one_provider_leaves_the_other_free(client, business, enable):
    enable("u-holiday")
    found = starts(client, business, "2027-03-04")
    assert times(found, business.provider_id) == []
    assert times(found, business.second_provider_id) == ALL_DAY


def test_a_plugin_that_is_not_enabled_has_no_effect(app, client, business, enable, clock):
    found = starts(client, business, "2027-03-02")
    assert times(found, business.provider_id) == ALL_DAY
    assert Lunch.calls == []
    spa = open_business(app, clock(), slug="spa", name="Spa")
    enable("u-lunch", tenant_id=spa.tenant_id)  # another business's choice
    assert times(starts(client, business, "2027-03-02"), business.provider_id) == ALL_DAY
    assert Lunch.calls == []


@pytest.mark.parametrize("plugin", ["u-crash", "u-hang"])
def test_a_failing_plugin_is_ignored_logged_and_counted(
    app, client, business, enable, clock, caplog, plugin
):
    enable("u-lunch")
    enable(plugin)
    found = starts(client, business, "2027-03-02")
    lunchless = [t for t in ALL_DAY if t not in ("12:00", "12:30")]
    assert times(found, business.provider_id) == lunchless  # the others still count
    assert times(found, business.second_provider_id) == lunchless
    assert f"plugin {plugin}: unavailable_times" in caplog.text
    failure = recent_failures(app, business, clock)[plugin]
    assert failure.count == 1 and failure.last_hook == "unavailable_times"
    if plugin == "u-crash":
        assert Crash.calls == 2  # both providers asked at once; counted once above
        assert "bug in unavailable_times" not in client.get(
            f"/api/v1/tenants/salon/availability?service_id={business.service_id}"
            "&from=2027-03-02&to=2027-03-02"
        ).get_data(as_text=True)


def test_nonsense_ranges_are_left_aside_and_counted(app, client, business, enable, clock):
    enable("u-sloppy")
    found = starts(client, business, "2027-03-02", provider_id=business.provider_id)
    assert times(found, business.provider_id) == [t for t in ALL_DAY if t != "10:00"]
    failure = recent_failures(app, business, clock)["u-sloppy"]
    assert "answered 4 ranges that are not (start, end)" in failure.last_message


def test_a_generator_is_refused_rather_than_run_outside_its_time_limit(
    app, client, business, enable, clock
):
    enable("u-lazy")
    found = starts(client, business, "2027-03-02", provider_id=business.provider_id)
    assert times(found, business.provider_id) == ALL_DAY
    assert "not a list" in recent_failures(app, business, clock)["u-lazy"].last_message


def test_booking_a_time_left_out_is_still_decided_by_the_guards_alone(app, business, enable):
    enable("u-lunch")
    answer = app.test_client().post(
        "/api/v1/tenants/salon/bookings",
        json=booking_body(business, "2027-03-02T12:00:00+01:00"),
    )
    assert answer.status_code == 201, answer.json


# --- the booking pages ----------------------------------------------------------------------------


def test_the_calendar_and_the_days_times_leave_out_the_same(app, business, enable):
    enable("u-holiday")
    enable("u-lunch")
    client = app.test_client()
    calendar = client.get(
        f"{BOOK}/day?service={business.service_id}&provider={business.provider_id}"
    )
    assert calendar.status_code == 200
    assert len(Lunch.calls) == 1  # the month at once
    assert ">Thursday 4 March, no free times<" in calendar.text
    assert 'aria-label="Wednesday 3 March"' in calendar.text
    anyone = client.get(f"{BOOK}/day?service={business.service_id}&provider=any")
    assert 'aria-label="Thursday 4 March"' in anyone.text  # Ben is in
    day = client.get(f"{BOOK}/slots?service={business.service_id}&provider=any&date=2027-03-02")
    shown = {href.split("T")[1][:5] for href in links(day) if "/details" in href}
    assert shown == {t for t in ALL_DAY if t not in ("12:00", "12:30")}
    # A link to a time left out leads back to the day's times, as a time taken meanwhile does.
    stale = client.get(details_url(business, "2027-03-02T12:00:00+01:00"))
    assert stale.status_code == 302 and "/slots" in stale.headers["Location"]


def test_the_pages_stand_when_a_plugin_fails(app, business, enable):
    enable("u-crash")
    calendar = app.test_client().get(f"{BOOK}/day?service={business.service_id}&provider=any")
    assert calendar.status_code == 200
    assert 'aria-label="Tuesday 2 March"' in calendar.text


# --- the guide's example --------------------------------------------------------------------------

GUIDE = Path(__file__).parents[2] / "docs" / "plugins.md"


def guides_quiet_hours() -> types.ModuleType:
    """The guide's example, as written under "The manifest and settings", as one module."""
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(), re.M | re.S)
    wanted = [block for block in blocks if 'name="quiet_hours"' in block]
    assert len(wanted) == 1, "the guide's quiet-hours example has moved"
    module = types.ModuleType("quiet_hours")
    for block in wanted:
        exec(compile(block, str(GUIDE), "exec"), module.__dict__)
    return module


def test_the_guides_quiet_hours_example_works_as_the_guide_says(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[guides_quiet_hours()])
    with app.app_context():
        with pytest.raises(InvalidSettings) as refused:
            plugin_changes.enable(
                app, business.tenant_id, "quiet_hours", {"from_hour": 14}, clock()
            )
        assert refused.value.fields == {"until_hour": "Until must be later than From."}
        plugin_changes.enable(
            app,
            business.tenant_id,
            "quiet_hours",
            {"days": ["tuesday"], "from_hour": 12, "until_hour": 14},
            clock(),
        )
    found = starts(app.test_client(), business, "2027-03-02", "2027-03-03", business.provider_id)

    def on(day):
        return times([slot for slot in found if slot[0].startswith(day)], business.provider_id)

    assert on("2027-03-02") == [t for t in ALL_DAY if not "12:00" <= t < "14:00"]  # Tuesday
    assert on("2027-03-03") == ALL_DAY
