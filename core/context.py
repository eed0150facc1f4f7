"""Building the :class:`~bookwell.hooks.Context` that core hands to every hook call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import has_request_context, request

from bookwell.hooks import (
    BookingInfo,
    Context,
    ProviderInfo,
    RequestInfo,
    ServiceInfo,
    TenantInfo,
)

from .models import Booking, Provider, Service, Tenant


def request_info() -> RequestInfo | None:
    if not has_request_context():
        return None
    return RequestInfo(
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
        scheme=request.scheme,
        path=request.path,
        host=request.host,
    )


def tenant_info(tenant: Tenant) -> TenantInfo:
    return TenantInfo(tenant.id, tenant.slug, tenant.name, tenant.timezone)


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
    )


def make_context(tenant: Tenant, now: datetime, actor: Any = None, **fields: Any) -> Context:
    return Context(
        tenant=tenant_info(tenant), now=now, actor=actor, request=request_info(), **fields
    )
