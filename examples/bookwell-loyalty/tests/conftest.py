# Bookwell's fixtures for plugin authors (app, tenant, client, clock, enable_plugin, owner,
# second_business, ...) load by themselves wherever Bookwell is installed; this line loads the
# same plugin when pytest's plugin autoloading is off (PYTEST_DISABLE_PLUGIN_AUTOLOAD).
pytest_plugins = ["bookwell.core.testing"]
