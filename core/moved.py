"""Where core's modules were before core was arranged by concern, so that old imports still work.

``from bookwell.core.users import create_user`` or ``bookwell.core.plugin_rules`` (as the plugin
guide and plugins' tests once wrote) gives the module at its new place, the very same module
object, with a :class:`DeprecationWarning` naming the new path. Nothing in this repository uses
the old names; this is for code written against them outside it, and for RQ jobs queued before
an upgrade under their old paths (``bookwell.core.jobs.run_scheduled``).

Not covered: the old modules whose names are packages now. ``bookwell.core.pluginhost``,
``.cli`` and ``.app`` re-export what they were imported for (``host_of``, ``main``,
``create_app``); ``bookwell.core.booking`` (now the booking domain; the lifecycle is
``bookwell.core.booking.lifecycle``) and ``bookwell.core.context`` (unchanged) do not.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    "bookwell.core.clock": "bookwell.core.foundation.clock",
    "bookwell.core.config": "bookwell.core.foundation.config",
    "bookwell.core.money": "bookwell.core.foundation.money",
    "bookwell.core.db": "bookwell.core.storage.db",
    "bookwell.core.models": "bookwell.core.storage.models",
    "bookwell.core.leases": "bookwell.core.storage.leases",
    "bookwell.core.sealing": "bookwell.core.storage.sealing",
    "bookwell.core.migrations": "bookwell.core.storage.migrations",
    "bookwell.core.plugin_rules": "bookwell.core.pluginhost.rules",
    "bookwell.core.plugin_settings": "bookwell.core.pluginhost.settings",
    "bookwell.core.plugin_changes": "bookwell.core.pluginhost.changes",
    "bookwell.core.plugin_health": "bookwell.core.pluginhost.health",
    "bookwell.core.plugin_data": "bookwell.core.context.data",
    "bookwell.core.users": "bookwell.core.access.users",
    "bookwell.core.passwords": "bookwell.core.access.passwords",
    "bookwell.core.login": "bookwell.core.access.login",
    "bookwell.core.sessions": "bookwell.core.access.sessions",
    "bookwell.core.permissions": "bookwell.core.access.permissions",
    "bookwell.core.accounts": "bookwell.core.access.client_accounts",
    "bookwell.core.booking_outcomes": "bookwell.core.booking.outcomes",
    "bookwell.core.catalogue": "bookwell.core.booking.catalogue",
    "bookwell.core.availability": "bookwell.core.booking.availability",
    "bookwell.core.idempotency": "bookwell.core.booking.idempotency",
    "bookwell.core.tenants": "bookwell.core.booking.tenants",
    "bookwell.core.schedule": "bookwell.core.scheduling.schedule",
    # Its job functions, which RQ finds by path in jobs queued before an upgrade, are here now.
    "bookwell.core.jobs": "bookwell.core.app.jobs",
    "bookwell.core.api": "bookwell.core.web.api",
    "bookwell.core.api.ratelimits": "bookwell.core.web.ratelimits",
    "bookwell.core.pages": "bookwell.core.web.pages",
    "bookwell.core.error_pages": "bookwell.core.web.error_pages",
    "bookwell.core.security_headers": "bookwell.core.web.security_headers",
    "bookwell.core.tenant_requests": "bookwell.core.web.tenant_requests",
    "bookwell.core.web_sessions": "bookwell.core.web.session_cookies",
    "bookwell.core.plugin_routes": "bookwell.core.web.plugin_routes",
    "bookwell.core.plugin_pages": "bookwell.core.web.plugin_pages",
    "bookwell.core.themes": "bookwell.core.web.themes",
    "bookwell.core.audit_cli": "bookwell.core.cli.audit",
    "bookwell.core.plugins_cli": "bookwell.core.cli.plugins",
    "bookwell.core.users_cli": "bookwell.core.cli.users",
    "bookwell.core.mail.cli": "bookwell.core.cli.mail",
    "bookwell.core.mail.lifecycle": "bookwell.core.mail.dispatch",
    "bookwell.core.demo": "bookwell.core.cli.demo",
}
# bookwell.core.pluginhost, .context, .booking, .cli and .app are packages now under their old
# names: pluginhost, cli and app re-export what the old modules were imported for.


def new_name(old: str) -> str | None:
    """The new dotted path of ``old`` (a moved module or something inside one), else None. The
    longest old path wins: a module moved out of a moved package has its own entry."""
    found = [moved for moved in MOVED if old == moved or old.startswith(moved + ".")]
    if not found:
        return None
    moved = max(found, key=len)
    return MOVED[moved] + old[len(moved) :]


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Already executed under its new name. Importlib has just given it the old name's spec:
        # give its own back, so that it stays exactly the module it was.
        module.__spec__ = self.own_spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = new_name(fullname)
        if new is None:
            return None
        warnings.warn(
            f"{fullname} moved to {new}: import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        return importlib.machinery.ModuleSpec(
            fullname, _Alias(new), is_package=hasattr(module, "__path__")
        )


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        # First: otherwise a moved package's old name would let the path finder load its
        # submodules a second time, under old names.
        sys.meta_path.insert(0, MovedModuleFinder())
