"""A plugin module given to the app (``EXTRA_PLUGINS``, the test kit's ``bookwell_plugins``)
stands in for an installed plugin of the same name, instead of breaking both."""

from bookwell.core.pluginhost.host import host_of
from bookwell.hooks import Consent, Manifest, hookimpl


class StandInTerms:
    MANIFEST = Manifest("terms", "Terms", "A test's own terms.", "9.9", "test", "tests")

    @hookimpl
    def booking_requirements(ctx, settings):
        return [Consent("terms", "I accept", "Stand-in terms.", "1")]


def test_a_module_given_to_the_app_replaces_the_installed_plugin_of_its_name(make_app):
    installed = host_of(make_app()).installed["terms"]
    assert installed.status == "ok" and installed.source == "built-in"

    app = make_app(EXTRA_PLUGINS=[StandInTerms])
    host = host_of(app)
    assert host.installed["terms"].status == "ok"
    assert host.installed["terms"].manifest is StandInTerms.MANIFEST
    assert host.pm.get_plugin("terms") is StandInTerms
