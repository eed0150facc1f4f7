"""``hsts_max_age``: one year by default, and never less, whichever door the change comes
through (the marketplace's page, the API, the command line), with a message that says why."""

from __future__ import annotations

import pytest

from bookwell.core.testing import InvalidSettings

FLOOR_MESSAGE = "HSTS max-age must be at least 31536000 seconds (one year)"


def ssl_entry(owner):
    listed = owner.api.get("plugins", base_url="https://localhost").json
    return next(entry for entry in listed if entry["name"] == "ssl")


def test_the_manifest_says_what_hsts_binds():
    import bookwell.plugins.ssl as ssl_plugin

    (setting,) = ssl_plugin.MANIFEST.settings
    assert (setting.key, setting.type, setting.default) == ("hsts_max_age", "int", 31536000)
    assert "whole host" in setting.help and "every business" in setting.help
    assert "does not undo it quickly" in setting.help


@pytest.mark.parametrize("seconds", [31535999, 86400, 0, -1])
def test_below_one_year_is_refused_when_switching_on(enable_plugin, seconds):
    with pytest.raises(InvalidSettings) as refused:
        enable_plugin("ssl", hsts_max_age=seconds)
    assert FLOOR_MESSAGE in refused.value.fields["hsts_max_age"]


def test_one_year_and_more_are_taken(enable_plugin):
    assert enable_plugin("ssl", hsts_max_age=31536000)["hsts_max_age"] == 31536000
    assert enable_plugin("ssl", hsts_max_age=63072000)["hsts_max_age"] == 63072000


def test_the_api_refuses_below_one_year_and_changes_nothing(owner):
    answer = owner.api.put("plugins/ssl", json={"enabled": True, "settings": {"hsts_max_age": 600}})
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "invalid_settings"
    assert FLOOR_MESSAGE in answer.json["error"]["fields"]["hsts_max_age"]
    assert ssl_entry(owner)["enabled"] is False


def test_the_command_line_refuses_below_one_year(bookwell_cli, owner):
    result = bookwell_cli(
        "plugins", "enable", "ssl", "--tenant", "salon", "--set", "hsts_max_age=86400"
    )
    assert result.exit_code != 0
    assert FLOOR_MESSAGE in result.output
    assert "Traceback" not in result.output
    assert ssl_entry(owner)["enabled"] is False
    taken = bookwell_cli(
        "plugins", "enable", "ssl", "--tenant", "salon", "--set", "hsts_max_age=63072000"
    )
    assert taken.exit_code == 0, taken.output
    assert ssl_entry(owner)["settings"]["hsts_max_age"] == 63072000


def test_the_marketplace_refuses_below_one_year_beside_the_field(owner):
    answer = owner.submit(
        "/admin/salon/marketplace/settings",
        {"plugin": "ssl", "setting-hsts_max_age": "3600"},
        form_on="/admin/salon/marketplace",
    )
    assert answer.status_code == 422
    assert FLOOR_MESSAGE in answer.text
    page = owner.pages.get("/admin/salon/marketplace").text
    assert "HSTS binds the whole host" in page  # the help, before anyone types
    assert ssl_entry(owner)["enabled"] is False
