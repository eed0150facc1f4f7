"""The hipaa tests' fixtures: the app with its test clients on HTTPS (HIPAA mode switches
``ssl`` on), and HIPAA mode switched on with the owner enrolled (see ``hipaa_kit``)."""

from __future__ import annotations

import pytest
from hipaa_kit import HttpsClient, enrol


@pytest.fixture
def app(make_app, bookwell_plugins, bookwell_settings):
    """The test kit's app, its test clients on HTTPS (every fixture's: staff, clients)."""
    built = make_app(plugins=bookwell_plugins, **bookwell_settings)
    built.test_client_class = HttpsClient
    return built


@pytest.fixture
def hipaa(owner, enable_plugin, clock):
    """HIPAA mode on for ``tenant``, its owner (signed in before) enrolled: the settings in
    force, and the owner's authenticator secret as ``hipaa["owner_secret"]``."""
    settings = enable_plugin("hipaa")
    return {**settings, "owner_secret": enrol(owner, clock)}
