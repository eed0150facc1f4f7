"""The Bookwell plugin SDK: everything a plugin imports.

    from bookwell.hooks import hookimpl, Refusal, Manifest, Setting

    MANIFEST = Manifest(name="no-sundays", title="No Sundays", ...)

    @hookimpl
    def before_confirm(ctx, settings):
        if ctx.booking.start.astimezone(ZoneInfo(ctx.tenant.timezone)).weekday() == 6:
            return Refusal("We do not book on Sundays.", code="closed_on_sundays")

See ``docs/plugins.md`` for every hook.
"""

import pluggy

from . import specs
from .specs import CONTRIBUTIONS, EVENTS, GUARDS, hookspec
from .types import (
    ArchiveResult,
    BookingInfo,
    Consent,
    Context,
    DataProtection,
    Discount,
    GivenConsent,
    Grant,
    Grants,
    LoginAttempt,
    Manifest,
    MenuItem,
    OutgoingMessage,
    PluginStore,
    PluginTables,
    ProviderInfo,
    Redirect,
    Refusal,
    RequestInfo,
    Secrets,
    ServiceInfo,
    SessionLimits,
    Setting,
    TenantData,
    TenantInfo,
    UserInfo,
)

hookimpl = pluggy.HookimplMarker("bookwell")

__all__ = [
    "ArchiveResult",
    "BookingInfo",
    "CONTRIBUTIONS",
    "Consent",
    "Context",
    "DataProtection",
    "Discount",
    "EVENTS",
    "GUARDS",
    "GivenConsent",
    "Grant",
    "Grants",
    "LoginAttempt",
    "Manifest",
    "MenuItem",
    "OutgoingMessage",
    "PluginStore",
    "PluginTables",
    "ProviderInfo",
    "Redirect",
    "Refusal",
    "RequestInfo",
    "Secrets",
    "ServiceInfo",
    "SessionLimits",
    "Setting",
    "TenantData",
    "TenantInfo",
    "UserInfo",
    "hookimpl",
    "hookspec",
    "specs",
]
