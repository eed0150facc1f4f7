"""The plugin host: loading plugins and calling their hooks, and the marketplace's rules.

Owns loading from the ``bookwell.plugins`` entry points and calling hooks per tenant (``host``),
the settings each manifest declares (``settings``), the rules between plugins (``rules``),
switching plugins on and off with their audit (``changes``) and each plugin's recent failures
(``health``). What a hook receives (its context and ``ctx.data``) is :mod:`bookwell.core.context`;
plugins' routes and staff pages are mounted by :mod:`bookwell.core.web`.

May use: :mod:`bookwell.hooks` (the contract), :mod:`bookwell.core.audit`,
:mod:`bookwell.core.storage`, :mod:`bookwell.core.foundation`. Never a plugin by name.
"""

from bookwell.core.pluginhost.host import (
    InstalledPlugin,
    PluginFailed,
    PluginHost,
    Refused,
    host_of,
)

__all__ = ["InstalledPlugin", "PluginFailed", "PluginHost", "Refused", "host_of"]
