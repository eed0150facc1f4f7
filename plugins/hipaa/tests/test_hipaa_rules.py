"""HIPAA mode and the plugins it stands on: switching it on switches on ``two_factor`` (for
every staff role) and ``ssl``; while it is on, neither can be switched off or loosened; its own
settings only ever tighten."""

from __future__ import annotations

import hipaa_kit
import pytest
from hipaa_kit import enrol

from bookwell.core.testing import InvalidSettings, PluginRequired

# The kit's fixtures: the app on HTTPS.
app = hipaa_kit.app

ALL_STAFF = ["owner", "manager", "staff", "receptionist"]


def enabled(owner) -> dict[str, dict]:
    return {entry["name"]: entry for entry in owner.api.get("plugins").json if entry["enabled"]}


def test_switching_it_on_switches_on_two_factor_for_every_staff_role_and_ssl(
    owner, tenant, audit_trail, clock
):
    answer = owner.api.put("plugins/hipaa", json={"enabled": True})
    assert answer.status_code == 200, answer.json
    assert sorted(answer.json["also_enabled"]) == ["ssl", "two_factor"]
    assert answer.json["settings"] == {"idle_timeout_minutes": 15, "absolute_timeout_hours": 12}
    # From now on the owner too must use an authenticator app before anything else.
    assert owner.api.get("plugins").json["error"]["code"] == "otp_enrollment_required"
    enrol(owner, clock)
    on = enabled(owner)
    assert set(on) == {"hipaa", "ssl", "two_factor"}
    assert sorted(on["two_factor"]["settings"]["required_roles"]) == sorted(ALL_STAFF)
    # Each change is in the trail, saying which plugin caused it.
    entries = {entry.subject: entry for entry in audit_trail(action="plugin.enabled")}
    assert entries["plugin:two_factor"].details["required_by"] == "hipaa"
    assert entries["plugin:ssl"].details["required_by"] == "hipaa"


def test_two_factor_already_on_for_owners_is_raised_to_every_staff_role(enable_plugin):
    enable_plugin("two_factor", required_roles=["owner"])
    enable_plugin("hipaa")
    two_factor = enable_plugin("two_factor")
    assert sorted(two_factor["required_roles"]) == sorted(ALL_STAFF)


@pytest.mark.parametrize("required", ["two_factor", "ssl"])
def test_neither_can_be_switched_off_while_hipaa_is_on(enable_plugin, disable_plugin, required):
    enable_plugin("hipaa")
    with pytest.raises(PluginRequired):
        disable_plugin(required)
    # Once HIPAA mode is off, they may go.
    assert disable_plugin("hipaa")
    assert disable_plugin(required)


def test_two_factor_cannot_be_loosened_while_hipaa_is_on(enable_plugin, disable_plugin):
    enable_plugin("hipaa")
    with pytest.raises(InvalidSettings) as refused:
        enable_plugin("two_factor", required_roles=["owner", "manager"])
    assert "HIPAA" in refused.value.fields["required_roles"]
    # More is fine: clients too.
    assert (
        "client"
        in enable_plugin("two_factor", required_roles=[*ALL_STAFF, "client"])["required_roles"]
    )


def test_ssl_off_over_the_api_is_refused_with_plugin_required(owner, enable_plugin, clock):
    enable_plugin("hipaa")
    enrol(owner, clock)
    answer = owner.api.put("plugins/ssl", json={"enabled": False})
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "plugin_required"
    assert "ssl" in enabled(owner)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"idle_timeout_minutes": 16}, "idle_timeout_minutes"),
        ({"idle_timeout_minutes": 0}, "idle_timeout_minutes"),
        ({"absolute_timeout_hours": 13}, "absolute_timeout_hours"),
        ({"absolute_timeout_hours": 0}, "absolute_timeout_hours"),
    ],
)
def test_its_timeouts_only_ever_tighten(enable_plugin, settings, field):
    with pytest.raises(InvalidSettings) as refused:
        enable_plugin("hipaa", **settings)
    assert set(refused.value.fields) == {field}


def test_tighter_timeouts_are_kept(enable_plugin):
    settings = enable_plugin("hipaa", idle_timeout_minutes=5, absolute_timeout_hours=8)
    assert settings == {"idle_timeout_minutes": 5, "absolute_timeout_hours": 8}
