"""The front desk's settings: typed one by one by Bookwell, checked across fields by the plugin,
through every door a business uses (the API, the operator's command line, the test kit)."""

import pytest
from conftest import RULES

from bookwell.core.testing import InvalidSettings, host_of


def front_desk_entry(member):
    answer = member.api.get("plugins")
    assert answer.status_code == 200
    return next(entry for entry in answer.json if entry["name"] == "front_desk")


def test_it_is_installed_from_its_own_package(app):
    plugin = host_of(app).installed["front_desk"]
    assert (plugin.status, plugin.source) == ("ok", "bookwell-front-desk")


def test_the_defaults_pass_their_own_check(enable_plugin):
    settings = enable_plugin("front_desk")
    assert settings["lunch_days"] == ["monday", "tuesday", "wednesday", "thursday", "friday"]
    assert (settings["lunch_start"], settings["lunch_end"]) == ("12:30", "13:30")
    assert settings["rules_roles"] == [] and settings["house_rules_url"] == ""


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"lunch_start": "14:00", "lunch_end": "13:00"}, {"lunch_end"}),
        ({"lunch_start": "13:30", "lunch_end": "13:30"}, {"lunch_end"}),
        ({"lunch_start": "12h30"}, {"lunch_start"}),
        ({"lunch_start": "7:30", "lunch_end": "25:00"}, {"lunch_start", "lunch_end"}),
        ({"rules_roles": ["staff"]}, {"house_rules_url"}),
    ],
)
def test_the_check_across_fields_refuses_through_the_api(owner, change, fields):
    answer = owner.api.put("plugins/front_desk", json={"enabled": True, "settings": change})
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "invalid_settings"
    assert set(answer.json["error"]["fields"]) == fields
    entry = front_desk_entry(owner)
    assert entry["enabled"] is False  # nothing changed
    assert entry["settings"]["lunch_start"] == "12:30"


def test_a_change_that_breaks_the_rule_leaves_the_saved_settings(owner, enable_plugin):
    enable_plugin("front_desk", lunch_start="12:00", lunch_end="13:00")
    change = {"enabled": True, "settings": {"lunch_start": "13:00"}}
    answer = owner.api.put("plugins/front_desk", json=change)
    assert answer.status_code == 422
    assert answer.json["error"]["fields"] == {
        "lunch_end": "The lunch break must end after it starts."
    }
    assert front_desk_entry(owner)["settings"]["lunch_start"] == "12:00"
    # The check sees what is stored merged with the change: moving both together is fine.
    change = {"enabled": True, "settings": {"lunch_start": "13:00", "lunch_end": "14:00"}}
    answer = owner.api.put("plugins/front_desk", json=change)
    assert answer.status_code == 200, answer.json
    assert front_desk_entry(owner)["settings"]["lunch_end"] == "14:00"


def test_the_house_rules_need_their_address_once_a_role_must_accept_them(enable_plugin):
    with pytest.raises(InvalidSettings) as refused:
        enable_plugin("front_desk", rules_roles=["staff", "receptionist"])
    assert set(refused.value.fields) == {"house_rules_url"}
    settings = enable_plugin("front_desk", rules_roles=["staff"], house_rules_url=RULES)
    assert settings["rules_roles"] == ["staff"]


def test_typed_settings_are_checked_by_bookwell_one_by_one(owner):
    for change, field in (
        ({"lunch_days": ["monday", "funday"]}, "lunch_days"),
        ({"rules_roles": ["client"]}, "rules_roles"),
        ({"house_rules_url": "ftp://salon.example/rules"}, "house_rules_url"),
        ({"alert_email": "front desk"}, "alert_email"),
        ({"alert_after": 1}, "alert_after"),
    ):
        answer = owner.api.put("plugins/front_desk", json={"enabled": True, "settings": change})
        assert answer.status_code == 422, change
        assert field in answer.json["error"]["fields"]
    answer = owner.api.put(
        "plugins/front_desk",
        json={"enabled": True, "settings": {"alert_email": "Desk@Salon.EXAMPLE"}},
    )
    assert answer.status_code == 200, answer.json
    assert front_desk_entry(owner)["settings"]["alert_email"] == "Desk@salon.example"


def test_only_the_owner_changes_them(manager):
    answer = manager.api.put("plugins/front_desk", json={"enabled": True})
    assert answer.status_code == 403
    assert front_desk_entry(manager)["enabled"] is False


def test_the_command_line_prints_the_check_and_changes_nothing(tenant, owner, bookwell_command):
    done = bookwell_command(
        "plugins", "enable", "front_desk", "--tenant", tenant.slug, "--set", "lunch_end=11:00"
    )
    assert done.returncode != 0
    assert "lunch_end: The lunch break must end after it starts." in done.stderr
    assert front_desk_entry(owner)["enabled"] is False

    done = bookwell_command(
        "plugins", "enable", "front_desk", "--tenant", tenant.slug,
        "--set", "lunch_start=11:00", "--set", "lunch_end=12:00", "--set", "lunch_days=saturday",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    entry = front_desk_entry(owner)
    assert entry["enabled"] is True
    assert entry["settings"]["lunch_days"] == ["saturday"]
    assert (entry["settings"]["lunch_start"], entry["settings"]["lunch_end"]) == ("11:00", "12:00")
