"""The loyalty discount, driven through Bookwell's public API with Bookwell's own fixtures."""

import pytest

from bookwell.core.testing import host_of

NEXT = "2027-04-01T15:00:00+02:00"  # well after every visit below; the cut costs 30.00


def visits(client, count, *, hour=10):
    """``count`` completed visits on consecutive days from Tuesday 2 March 2027."""
    for day in range(2, 2 + count):
        client.visit(f"2027-03-{day:02d}T{hour}:00:00+01:00")


@pytest.fixture
def loyalty(enable_plugin):
    return enable_plugin("loyalty", visits=3, percent=20)


def test_it_is_installed_from_its_own_package(app):
    plugin = host_of(app).installed["loyalty"]
    assert (plugin.status, plugin.source) == ("ok", "bookwell-loyalty")
    assert plugin.manifest.needs == ("intact_history",)
    assert {setting.key: setting.default for setting in plugin.manifest.settings} == {
        "visits": 5,
        "percent": 10,
    }


def test_the_defaults_reward_every_fifth_visit(client, enable_plugin):
    assert enable_plugin("loyalty") == {"visits": 5, "percent": 10}
    visits(client, 5)
    assert client.book(NEXT)["discount_cents"] == 300


def test_enough_completed_visits_discount_the_next_booking(client, loyalty):
    visits(client, 3)
    booking = client.book(NEXT)
    assert booking["discount_cents"] == 600
    assert booking["discount_label"] == "Loyalty reward"
    assert booking["total_cents"] == 2400
    assert client.stored(booking).discount_cents == 600


def test_one_visit_short_earns_nothing_yet(client, loyalty):
    visits(client, 2)
    assert client.book(NEXT)["discount_cents"] == 0


def test_a_reward_is_used_once(client, loyalty):
    visits(client, 3)
    assert client.book(NEXT)["discount_cents"] == 600
    assert client.book("2027-04-02T15:00:00+02:00")["discount_cents"] == 0


def test_cancelling_the_rewarded_booking_gives_the_reward_back(client, loyalty):
    visits(client, 3)
    rewarded = client.book(NEXT)
    client.cancel(rewarded)
    assert client.book("2027-04-02T15:00:00+02:00")["discount_cents"] == 600


def test_a_rewarded_visit_counts_towards_the_next_reward(client, loyalty):
    visits(client, 3)
    client.visit("2027-03-10T10:00:00+01:00")  # the reward, used
    assert client.get(client.book("2027-03-11T10:00:00+01:00"))["discount_cents"] == 0
    for start in ("2027-03-12T10:00:00+01:00", "2027-03-13T10:00:00+01:00"):
        client.visit(start)
    # 3 + 1 + 2 = 6 completed visits (the booking of the 11th is still open): a second reward.
    assert client.book(NEXT)["discount_cents"] == 600


def test_no_shows_and_open_bookings_do_not_count(client, loyalty):
    for day in (2, 3):
        client.visit(f"2027-03-{day:02d}T10:00:00+01:00")
    missed = client.book("2027-03-04T10:00:00+01:00")
    client.clock.advance(days=1)
    client.complete(missed, outcome="no-show")
    client.book("2027-03-06T10:00:00+01:00")
    assert client.book(NEXT)["discount_cents"] == 0


def test_another_clients_visits_do_not_count(client, make_client, loyalty):
    visits(make_client("Bob"), 3, hour=11)
    assert client.book(NEXT)["discount_cents"] == 0
    assert make_client("Bob").book("2027-04-01T16:00:00+02:00")["discount_cents"] == 600


def test_the_address_is_compared_without_regard_to_case(client, make_client, loyalty):
    visits(make_client("Ann", email="Ann@Example.com"), 3)
    assert client.book(NEXT)["discount_cents"] == 600


def test_another_businesss_history_never_counts(
    client, loyalty, enable_plugin, second_business, second_client
):
    enable_plugin("loyalty", business=second_business, visits=3, percent=20)
    visits(second_client, 3)  # Ann again, at the spa
    assert client.book(NEXT)["discount_cents"] == 0
    assert second_client.book(NEXT)["discount_cents"] == 600


def test_a_business_that_has_not_enabled_it_gives_nothing(client):
    visits(client, 5)
    assert client.book(NEXT)["discount_cents"] == 0


def test_switched_off_it_gives_nothing(client, loyalty, disable_plugin):
    visits(client, 3)
    disable_plugin("loyalty")
    assert client.book(NEXT)["discount_cents"] == 0


def test_the_owner_finds_it_in_the_marketplace_and_switches_it_on(owner, client):
    market = owner.pages.get("/admin/salon/marketplace")
    assert market.status_code == 200
    assert (
        "Loyalty discount" in market.text and "completed visits that earn a reward" in market.text
    )
    switched = owner.submit(
        "/admin/salon/marketplace/switch",
        {"plugin": "loyalty", "enabled": "on"},
        form_on="/admin/salon/marketplace",
    )
    assert switched.status_code == 302
    visits(client, 5)
    assert client.book(NEXT)["discount_cents"] == 300


def test_the_owner_sees_it_in_the_plugins_api_with_its_author(owner):
    listed = owner.api.get("plugins")
    assert listed.status_code == 200
    loyalty = next(entry for entry in listed.json if entry["name"] == "loyalty")
    assert (loyalty["author"], loyalty["enabled"]) == ("Bookwell examples", False)
