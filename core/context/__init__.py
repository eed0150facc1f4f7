"""The context of a hook call: core's side of the contract in :mod:`bookwell.hooks`.

Owns building the :class:`~bookwell.hooks.Context` that core hands to every hook call (here:
the tenant, the booking and the request as frozen values) and what a plugin may read and write
beyond its hook's subject, ``ctx.data`` (``data``). What the web knows (the request, the actor)
reaches plugins only through this context: ``bookwell.hooks`` never imports core.

May use: :mod:`bookwell.core.mail` (``ctx.data`` sends mail), :mod:`bookwell.core.pluginhost`,
:mod:`bookwell.core.storage`, :mod:`bookwell.core.foundation`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import current_app, has_app_context, has_request_context, request

# A module import: plugin_data imports this module back to build BookingInfo.
from bookwell.core.context import data as plugin_data
from bookwell.core.context import tools
from bookwell.core.storage.models import Booking, Provider, Service, Tenant, User
from bookwell.hooks import (
    BookingInfo,
    Context,
    ProviderInfo,
    RequestInfo,
    ServiceInfo,
    TenantInfo,
    UserInfo,
)


def request_info() -> RequestInfo | None:
    if not has_request_context():
        return None
    return RequestInfo(
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
        scheme=request.scheme,
        path=request.path,
        host=request.host,
        method=request.method,
        url=request.url,
    )


def tenant_info(tenant: Tenant) -> TenantInfo:
    base = str(current_app.config["BASE_URL"]).rstrip("/") if has_app_context() else ""
    booking_url = f"{base}/book/{quote(tenant.slug)}/" if base else ""
    return TenantInfo(
        tenant.id,
        tenant.slug,
        tenant.name,
        tenant.timezone,
        booking_url,
        tenant.currency,
        email=tenant.contact_email,
        phone=tenant.phone,
        address=tenant.address,
        language=tenant.language or "en",
    )


def booking_info(
    *,
    service: Service,
    provider: Provider,
    start: datetime,
    end: datetime,
    client_name: str,
    client_email: str,
    client_phone: str | None,
    status: str,
    reference: str | None = None,
    consents: tuple[str, ...] = (),
    prepaid_cents: int = 0,
    discount_cents: int = 0,
    discount_label: str | None = None,
    reschedule_count: int = 0,
) -> BookingInfo:
    return BookingInfo(
        reference=reference,
        start=start,
        end=end,
        service=ServiceInfo(
            service.id, service.name, service.duration_minutes, service.price_cents
        ),
        provider=ProviderInfo(provider.id, provider.name),
        client_name=client_name,
        client_email=client_email,
        client_phone=client_phone,
        status=status,
        consents=consents,
        prepaid_cents=prepaid_cents,
        discount_cents=discount_cents,
        discount_label=discount_label,
        reschedule_count=reschedule_count,
    )


def info_of(booking: Booking, service: Service, provider: Provider, consents=()) -> BookingInfo:
    return booking_info(
        service=service,
        provider=provider,
        start=booking.starts_at,
        end=booking.ends_at,
        client_name=booking.client_name,
        client_email=booking.client_email,
        client_phone=booking.client_phone,
        status=str(booking.status),
        reference=booking.reference,
        consents=tuple(consents),
        prepaid_cents=booking.prepaid_cents,
        discount_cents=booking.discount_cents or 0,
        discount_label=booking.discount_label,
        reschedule_count=booking.reschedule_count or 0,
    )


def user_info(user: User) -> UserInfo:
    """What plugins may know of an account: a frozen copy, never the row (which holds the
    password's hash and can be changed)."""
    return UserInfo(
        id=user.id, email=user.email, name=user.name, role=user.role, tenant_id=user.tenant_id
    )


def make_context(
    tenant: Tenant, now: datetime, actor: User | UserInfo | None = None, **fields: Any
) -> Context:
    """The context of a hook call for ``tenant``, with ``ctx.data`` bound to it (nothing is
    read until a plugin asks). An account given as ``actor`` reaches plugins as a
    :class:`~bookwell.hooks.UserInfo`."""
    if isinstance(actor, User):
        actor = user_info(actor)
    elif actor is not None and not isinstance(actor, UserInfo):
        raise TypeError(f"a hook's actor is an account or a UserInfo, not {type(actor).__name__}")
    info = tenant_info(tenant)
    if has_app_context():
        app = current_app._get_current_object()
        if "data" not in fields:
            fields["data"] = plugin_data.PluginData(
                app, info, now, dry_run=fields.get("dry_run", False)
            )
        fields.setdefault("binder", tools.binder_of(app))
    return Context(tenant=info, now=now, actor=actor, request=request_info(), **fields)
