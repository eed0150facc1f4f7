"""What the business offers and who works there: services, providers, their weekly hours and time
off, the business's contact details, and staff accounts' roles.

Every change is validated here (the pages' forms check shapes; these check meaning and the
tenant's walls), runs in one write transaction and is audited in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, time

from babel import Locale, UnknownLocaleError
from flask import Flask
from flask_babel import gettext
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bookwell.core import audit
from bookwell.core.access import sessions
from bookwell.core.booking.tenants import TenantError, check_timezone
from bookwell.core.context import request_info
from bookwell.core.foundation import text
from bookwell.core.foundation.money import check_currency
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    STAFF_ROLES,
    AuthSession,
    Provider,
    ProviderService,
    Role,
    Service,
    Tenant,
    TimeOff,
    User,
    WorkingHours,
)

MINUTES_A_DAY = 24 * 60
MAX_PRICE_CENTS = 100_000_000
MAX_SPANS_A_DAY = 4
# A language tag as businesses need one: a language, then maybe a script and a region
# (en, fr, de-CH, zh-Hant-TW, es-419). tenants.language holds 16 characters.
LANGUAGE_TAG = re.compile(r"^([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|[0-9]{3}))?$", re.I)


class CatalogueError(ValueError):
    """A refusal naming what is wrong with which input: ``fields`` maps input -> messages."""

    def __init__(self, message: str, fields: Mapping[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})


@dataclass(frozen=True)
class ServiceFields:
    name: str
    description: str = ""
    duration_minutes: int = 30
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    price_cents: int = 0
    min_notice_minutes: int = 0
    horizon_days: int = 90
    slot_step_minutes: int = 15
    active: bool = True


def _refuse(problems: dict[str, list[str]]) -> None:
    if problems:
        raise CatalogueError(gettext("Please correct the marked fields."), problems)


def _between(problems, name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        problems.setdefault(name, []).append(
            gettext("Must be a whole number from %(low)s to %(high)s.", low=low, high=high)
        )


def _text(
    problems,
    name: str,
    value: str | None,
    limit: int,
    *,
    required: bool = False,
    lines: bool = False,
) -> None:
    """One line of text (``lines``: several), ``required`` or not, at most ``limit`` long. The
    forms check the same; this is the last guard for any other caller (a plugin, a command)."""
    if value is not None and not (text.is_multi_line if lines else text.is_single_line)(value):
        message = text.MULTI_LINE_MESSAGE if lines else text.SINGLE_LINE_MESSAGE
        problems.setdefault(name, []).append(message)
    elif required and not (value or "").strip():
        problems.setdefault(name, []).append(gettext("This field is required."))
    elif value is not None and len(value) > limit:
        problems.setdefault(name, []).append(gettext("At most %(limit)s characters.", limit=limit))


def _email(problems, name: str, value: str | None) -> None:
    if value and (
        "@" not in value
        or len(value) > 254
        or any(c.isspace() for c in value)
        or not text.is_single_line(value)
    ):
        problems.setdefault(name, []).append(gettext("Enter a valid e-mail address."))


def _record(
    session: Session, tenant_id: int, actor: object, action: str, subject: str, details, now
):
    info = request_info()
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=audit.actor_label(actor),
        ip=info.ip if info else None,
        action=action,
        subject=subject,
        details=details,
        now=now,
    )


# --- services ------------------------------------------------------------------------------------


def check_service(fields: ServiceFields) -> None:
    problems: dict[str, list[str]] = {}
    _text(problems, "name", fields.name, 200, required=True)
    _text(problems, "description", fields.description, 5000, lines=True)
    _between(problems, "duration_minutes", fields.duration_minutes, 1, MINUTES_A_DAY)
    _between(problems, "buffer_before_minutes", fields.buffer_before_minutes, 0, MINUTES_A_DAY)
    _between(problems, "buffer_after_minutes", fields.buffer_after_minutes, 0, MINUTES_A_DAY)
    _between(problems, "price_cents", fields.price_cents, 0, MAX_PRICE_CENTS)
    _between(problems, "min_notice_minutes", fields.min_notice_minutes, 0, 366 * MINUTES_A_DAY)
    _between(problems, "horizon_days", fields.horizon_days, 1, 730)
    _between(problems, "slot_step_minutes", fields.slot_step_minutes, 1, MINUTES_A_DAY)
    _refuse(problems)


def save_service(
    app: Flask,
    *,
    tenant_id: int,
    fields: ServiceFields,
    actor: object,
    now: datetime,
    service_id: int | None = None,
) -> Service:
    """Create a service (``service_id`` None) or update one of ``tenant_id``'s."""
    fields = ServiceFields(**{**asdict(fields), "name": fields.name.strip()})
    check_service(fields)
    with db.write_transaction(app) as session:
        if service_id is None:
            service = Service(tenant_id=tenant_id)
            session.add(service)
        else:
            service = _owned(session, Service, tenant_id, service_id)
        before = {key: getattr(service, key) for key in asdict(fields)} if service_id else None
        for key, value in asdict(fields).items():
            setattr(service, key, value)
        session.flush()
        _record(
            session,
            tenant_id,
            actor,
            "service.created" if service_id is None else "service.updated",
            f"service:{service.id}",
            {"before": before, "after": asdict(fields)} if before else {"after": asdict(fields)},
            now,
        )
        return service


def _owned(session: Session, model, tenant_id: int, row_id: int):
    row = session.scalar(select(model).where(model.id == row_id, model.tenant_id == tenant_id))
    if row is None:
        raise CatalogueError(gettext("Not found."))
    return row


# --- providers -----------------------------------------------------------------------------------


def save_provider(
    app: Flask,
    *,
    tenant_id: int,
    name: str,
    email: str | None,
    service_ids: Iterable[int],
    active: bool,
    actor: object,
    now: datetime,
    provider_id: int | None = None,
) -> Provider:
    """Create or update a provider: name, e-mail, which of the tenant's services they offer."""
    name, email = name.strip(), (email or "").strip() or None
    wanted = sorted(set(service_ids))
    problems: dict[str, list[str]] = {}
    _text(problems, "name", name, 200, required=True)
    _email(problems, "email", email)
    _refuse(problems)
    with db.write_transaction(app) as session:
        services = list(
            session.scalars(
                select(Service).where(Service.tenant_id == tenant_id, Service.id.in_(wanted or [0]))
            )
        )
        if len(services) != len(wanted):
            raise CatalogueError(
                gettext("Please correct the marked fields."), {"services": [gettext("Unknown.")]}
            )
        if provider_id is None:
            provider = Provider(tenant_id=tenant_id)
            session.add(provider)
        else:
            provider = _owned(session, Provider, tenant_id, provider_id)
        provider.name, provider.email, provider.active = name, email, active
        provider.services = services
        session.flush()
        _record(
            session,
            tenant_id,
            actor,
            "provider.created" if provider_id is None else "provider.updated",
            f"provider:{provider.id}",
            {"name": name, "email": email, "services": wanted, "active": active},
            now,
        )
        return provider


def check_hours(hours: Mapping[int, list[tuple[time, time]]]) -> None:
    """Weekdays 0-6; each span starts before it ends; a day's spans do not overlap."""
    problems: dict[str, list[str]] = {}
    for weekday, spans in hours.items():
        key = f"day{weekday}"
        if not (isinstance(weekday, int) and 0 <= weekday <= 6):
            problems.setdefault("hours", []).append(gettext("Unknown weekday."))
            continue
        if len(spans) > MAX_SPANS_A_DAY:
            problems.setdefault(key, []).append(
                gettext("At most %(count)s openings a day.", count=MAX_SPANS_A_DAY)
            )
        ordered = sorted(spans)
        for starts, ends in ordered:
            if starts >= ends:
                problems.setdefault(key, []).append(
                    gettext("An opening must start before it ends.")
                )
        for (_, first_end), (second_start, _) in zip(ordered, ordered[1:], strict=False):
            if second_start < first_end:
                problems.setdefault(key, []).append(gettext("Openings must not overlap."))
    _refuse(problems)


def set_working_hours(
    app: Flask,
    *,
    tenant_id: int,
    provider_id: int,
    hours: Mapping[int, list[tuple[time, time]]],
    actor: object,
    now: datetime,
) -> Provider:
    """Replace a provider's weekly hours (wall-clock, the tenant's zone; 0 = Monday)."""
    check_hours(hours)
    with db.write_transaction(app) as session:
        provider = _owned(session, Provider, tenant_id, provider_id)
        provider.working_hours = [
            WorkingHours(weekday=weekday, starts=starts, ends=ends)
            for weekday, spans in sorted(hours.items())
            for starts, ends in sorted(spans)
        ]
        session.flush()
        _record(
            session,
            tenant_id,
            actor,
            "provider.hours_set",
            f"provider:{provider.id}",
            {
                "hours": {
                    str(day): [[s, e] for s, e in sorted(spans)] for day, spans in hours.items()
                }
            },
            now,
        )
        return provider


def add_time_off(
    app: Flask,
    *,
    tenant_id: int,
    provider_id: int,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    actor: object,
    now: datetime,
) -> TimeOff:
    """Record an absence (aware instants). Existing bookings in it stay: staff move them."""
    problems: dict[str, list[str]] = {}
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("time off needs aware instants")
    if starts_at >= ends_at:
        problems["ends_at"] = [gettext("Must be after the start.")]
    _text(problems, "reason", reason, 200)
    _refuse(problems)
    with db.write_transaction(app) as session:
        provider = _owned(session, Provider, tenant_id, provider_id)
        row = TimeOff(
            provider_id=provider.id, starts_at=starts_at, ends_at=ends_at, reason=reason.strip()
        )
        session.add(row)
        session.flush()
        _record(
            session,
            tenant_id,
            actor,
            "provider.time_off_added",
            f"provider:{provider.id}",
            {"time_off_id": row.id, "starts_at": starts_at, "ends_at": ends_at},
            now,
        )
        return row


def remove_time_off(
    app: Flask, *, tenant_id: int, provider_id: int, time_off_id: int, actor: object, now: datetime
) -> None:
    with db.write_transaction(app) as session:
        provider = _owned(session, Provider, tenant_id, provider_id)
        row = session.scalar(
            select(TimeOff).where(TimeOff.id == time_off_id, TimeOff.provider_id == provider.id)
        )
        if row is None:
            raise CatalogueError(gettext("Not found."))
        details = {"time_off_id": row.id, "starts_at": row.starts_at, "ends_at": row.ends_at}
        session.delete(row)
        session.flush()
        _record(
            session,
            tenant_id,
            actor,
            "provider.time_off_removed",
            f"provider:{provider.id}",
            details,
            now,
        )


# --- the business --------------------------------------------------------------------------------


def update_business(
    app: Flask,
    *,
    tenant_id: int,
    name: str,
    contact_email: str | None,
    phone: str | None,
    address: str | None,
    actor: object,
    now: datetime,
    currency: str | None = None,
    language: str | None = None,
    timezone: str | None = None,
    theme: str | None = None,
) -> Tenant:
    """The business's name, how clients reach it, and (when given) the currency of its prices,
    its language (a tag such as ``en``, ``fr`` or ``de-CH``), its time zone (an IANA name: its
    working hours are read in it from then on) and the theme of its booking pages (the caller
    checks that it is installed)."""
    values = {
        "name": name.strip(),
        "contact_email": (contact_email or "").strip() or None,
        "phone": (phone or "").strip() or None,
        "address": (address or "").strip() or None,
    }
    problems: dict[str, list[str]] = {}
    _text(problems, "name", values["name"], 200, required=True)
    _email(problems, "contact_email", values["contact_email"])
    _text(problems, "phone", values["phone"], 40)
    _text(problems, "address", values["address"], 500, lines=True)
    if currency is not None:
        try:
            values["currency"] = check_currency(currency)
        except ValueError as error:
            problems.setdefault("currency", []).append(str(error))
    if language is not None:
        try:
            values["language"] = check_language(language)
        except ValueError as error:
            problems.setdefault("language", []).append(str(error))
    if timezone is not None:
        try:
            values["timezone"] = check_timezone(timezone.strip())
        except TenantError as error:
            problems.setdefault("timezone", []).append(str(error))
    if theme is not None:
        values["theme"] = theme.strip()
        _text(problems, "theme", values["theme"], 50, required=True)
    _refuse(problems)
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, tenant_id)
        for key, value in values.items():
            setattr(tenant, key, value)
        session.flush()
        _record(session, tenant_id, actor, "business.updated", f"tenant:{tenant_id}", values, now)
        return tenant


# The business's switches, each with what a person reads when it changes (the CLI prints it).
SETTINGS = {"client_accounts": "client accounts"}


def change_settings(
    app: Flask, *, tenant_id: int, actor: object, now: datetime, **settings: bool | None
) -> dict[str, tuple[bool, bool]]:
    """Set the business's switches given (``None``: left as it is); returns what changed, as
    ``{name: (before, after)}``, audited in one ``business.updated`` entry when anything did."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise CatalogueError(f"no such setting: {', '.join(unknown)}")
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, tenant_id)
        changed = {
            name: (getattr(tenant, name), bool(value))
            for name, value in settings.items()
            if value is not None and getattr(tenant, name) != bool(value)
        }
        for name, (_, after) in changed.items():
            setattr(tenant, name, after)
        if changed:
            details: dict[str, object] = {name: after for name, (_, after) in changed.items()}
            if changed.get("client_accounts", (False, True))[1] is False:
                # Closed means closed: clients signed in now are signed out too.
                details["client_sessions_ended"] = _end_client_sessions(session, tenant_id, now)
            _record(
                session, tenant_id, actor, "business.updated", f"tenant:{tenant_id}", details, now
            )
        return changed


def _end_client_sessions(session: Session, tenant_id: int, now: datetime) -> int:
    clients = select(User.id).where(User.tenant_id == tenant_id, User.role == Role.CLIENT)
    ended = session.execute(
        update(AuthSession)
        .where(AuthSession.user_id.in_(clients), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return ended.rowcount


def check_language(tag: str) -> str:
    """``tag`` as a language tag in its usual case (``de-CH``), or :class:`ValueError`: a
    language known to the Unicode locale data, then maybe a script and a region."""
    shape = LANGUAGE_TAG.match((tag or "").strip())
    refusal = gettext("%(tag)s is not a language tag (such as en, fr or de-CH)", tag=repr(tag))
    if shape is None:
        raise ValueError(refusal)
    language, script, region = shape.groups()
    try:
        Locale.parse(language.lower())
    except (UnknownLocaleError, ValueError) as error:
        raise ValueError(refusal) from error
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


# --- staff accounts ------------------------------------------------------------------------------


# change_staff's provider_id when it is not to change (None unlinks the account).
UNCHANGED = object()


def may_grant(acting_role: str, role: str) -> bool:
    """Owners grant any staff role; managers any but owner; nobody else grants anything."""
    if role not in {str(item) for item in STAFF_ROLES}:
        return False
    if acting_role == Role.OWNER:
        return True
    return acting_role == Role.MANAGER and role != Role.OWNER


def change_staff(
    app: Flask,
    *,
    tenant_id: int,
    user_id: int,
    actor: User,
    now: datetime,
    role: str | None = None,
    active: bool | None = None,
    provider_id: int | None | object = UNCHANGED,
) -> User:
    """Change a staff account's role, (de)activate it (deactivation ends its sessions), or link
    it to the provider it works as (``provider_id``, ``None`` to unlink; left alone when not
    given).

    A manager cannot touch an owner's account nor make anyone owner; the last active owner
    stays an active owner. A change of role is audited on its own too (``staff.role_changed``,
    old and new), as the trail's readers look for those.
    """
    with db.write_transaction(app) as session:
        user = session.scalar(
            select(User).where(
                User.id == user_id,
                User.tenant_id == tenant_id,
                User.role.in_([str(item) for item in STAFF_ROLES]),
            )
        )
        if user is None:
            raise CatalogueError(gettext("Not found."))
        if user.role == Role.OWNER and actor.role != Role.OWNER:
            raise CatalogueError(
                gettext("Only an owner can change an owner's account."),
                {"role": [gettext("Not allowed.")]},
            )
        if role is not None and not may_grant(actor.role, role):
            raise CatalogueError(
                gettext("Your role cannot grant that role."), {"role": [gettext("Not allowed.")]}
            )
        demoted = role is not None and role != Role.OWNER
        if user.role == Role.OWNER and (demoted or active is False):
            owners = session.scalar(
                select(func.count(User.id)).where(
                    User.tenant_id == tenant_id, User.role == Role.OWNER, User.active.is_(True)
                )
            )
            if owners <= 1:
                raise CatalogueError(
                    gettext("The business needs an active owner."),
                    {"role": [gettext("Keep one owner.")]},
                )
        if provider_id is not UNCHANGED and provider_id is not None:
            check_provider_of(session, tenant_id, provider_id)
        before = {"role": user.role, "active": user.active, "provider_id": user.provider_id}
        if role is not None:
            user.role = role
        if active is not None:
            user.active = active
            if not active:
                sessions.revoke_all_but(session, user.id, None, now)
        if provider_id is not UNCHANGED:
            user.provider_id = provider_id  # type: ignore[assignment]
        session.flush()
        after = {"role": user.role, "active": user.active, "provider_id": user.provider_id}
        changed = {"before": before, "after": after}
        _record(session, tenant_id, actor, "user.changed", f"user:{user.id}", changed, now)
        if before["role"] != user.role:
            roles = {"old": before["role"], "new": user.role}
            _record(session, tenant_id, actor, "staff.role_changed", f"user:{user.id}", roles, now)
        return user


def check_provider_of(session: Session, tenant_id: int, provider_id: object) -> None:
    """A staff account works as one of its own business's providers, never another's."""
    found = isinstance(provider_id, int) and session.scalar(
        select(Provider.id).where(Provider.id == provider_id, Provider.tenant_id == tenant_id)
    )
    if not found:
        raise CatalogueError(
            gettext("No such provider here."), {"provider_id": [gettext("Choose a provider.")]}
        )


def providers_offering(session: Session, tenant_id: int, service_id: int) -> list[Provider]:
    """The active providers of ``tenant_id`` who offer the service, by name: whom a client
    (or staff, moving a booking) may pick."""
    return list(
        session.scalars(
            select(Provider)
            .join(ProviderService, ProviderService.provider_id == Provider.id)
            .where(
                Provider.tenant_id == tenant_id,
                Provider.active.is_(True),
                ProviderService.service_id == service_id,
            )
            .order_by(Provider.name, Provider.id)
        )
    )
