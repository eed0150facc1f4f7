"""Creating and describing tenants (the businesses that take bookings)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from bookwell.core.foundation import text
from bookwell.core.foundation.money import DEFAULT_CURRENCY, check_currency
from bookwell.core.storage.models import Provider, Service, Tenant, WorkingHours

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
RESERVED_SLUGS = frozenset({"api", "admin", "support", "static", "healthz", "book", "www"})


class TenantError(ValueError):
    pass


def check_slug(slug: str) -> str:
    if not SLUG.match(slug or ""):
        raise TenantError(
            f"bad slug {slug!r}: use 1-63 lower-case letters, digits and inner hyphens"
        )
    if slug in RESERVED_SLUGS:
        raise TenantError(f"the slug {slug!r} is reserved")
    return slug


def check_timezone(name: str) -> str:
    if name not in zoneinfo.available_timezones():
        raise TenantError(f"unknown time zone {name!r}: use an IANA name such as Europe/Paris")
    return name


def check_texts(*, lines: tuple[str, ...] = (), **values: str | None) -> None:
    """:class:`TenantError` naming the first value that breaks the standard for typed text:
    each of ``values`` is one line, except those named in ``lines``."""
    for label, value in values.items():
        if value is None:
            continue
        try:
            text.multi_line(value) if label in lines else text.single_line(value)
        except text.TextError as error:
            raise TenantError(f"the {label.replace('_', ' ')}: {error}") from None


def create_tenant(
    session: Session,
    slug: str,
    *,
    name: str,
    timezone: str,
    now: datetime,
    contact_email: str | None = None,
    phone: str | None = None,
    address: str | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> Tenant:
    check_slug(slug)
    check_timezone(timezone)
    try:
        currency = check_currency(currency)
    except ValueError as error:
        raise TenantError(str(error)) from error
    check_texts(
        name=name, contact_email=contact_email, phone=phone, address=address, lines=("address",)
    )
    if not name.strip():
        raise TenantError("the name must not be empty")
    if session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise TenantError(f"a tenant with the slug {slug!r} already exists")
    tenant = Tenant(
        slug=slug,
        name=name.strip(),
        timezone=timezone,
        contact_email=contact_email,
        phone=phone,
        address=address,
        currency=currency,
        created_at=now,
    )
    session.add(tenant)
    session.flush()
    return tenant


def add_service(session: Session, tenant: Tenant, name: str, **fields: object) -> Service:
    description = fields.get("description")
    check_texts(
        name=name,
        description=description if isinstance(description, str) else None,
        lines=("description",),
    )
    service = Service(tenant_id=tenant.id, name=name, **fields)
    session.add(service)
    session.flush()
    return service


def add_provider(
    session: Session,
    tenant: Tenant,
    name: str,
    services: list[Service],
    weekly_hours: dict[int, list[tuple[time, time]]],
    email: str | None = None,
) -> Provider:
    check_texts(name=name, email=email)
    provider = Provider(tenant_id=tenant.id, name=name, email=email, services=list(services))
    provider.working_hours = [
        WorkingHours(weekday=weekday, starts=starts, ends=ends)
        for weekday, spans in sorted(weekly_hours.items())
        for starts, ends in spans
    ]
    session.add(provider)
    session.flush()
    return provider
