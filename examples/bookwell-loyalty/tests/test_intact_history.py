"""The loyalty discount counts past visits, so it cannot be on beside a plugin that deletes them."""

import pytest

from bookwell.core.testing import PluginConflict
from bookwell.hooks import Manifest


class HistoryCleanup:
    """Stands for any plugin that deletes old bookings (it declares ``breaks``)."""

    MANIFEST = Manifest(
        "history_cleanup",
        "History cleanup",
        "Deletes bookings after a while.",
        "1.0",
        "Privacy",
        "tests",
        breaks=("intact_history",),
    )


@pytest.fixture
def bookwell_plugins():
    return [HistoryCleanup]


def test_it_cannot_be_switched_on_beside_a_plugin_that_breaks_history(enable_plugin):
    enable_plugin("history_cleanup")
    with pytest.raises(PluginConflict):
        enable_plugin("loyalty")


def test_a_history_cleanup_cannot_be_switched_on_beside_it(enable_plugin):
    enable_plugin("loyalty")
    with pytest.raises(PluginConflict):
        enable_plugin("history_cleanup")
