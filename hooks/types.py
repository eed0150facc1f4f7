"""The values that cross the plugin boundary. All frozen: plugins read them, never mutate them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

SettingType = Literal["bool", "int", "str", "text", "choice", "list"]


@dataclass(frozen=True)
class Setting:
    """One setting a tenant can give a plugin; the marketplace builds its form field from it.

    ``type`` is one of ``bool``, ``int``, ``str`` (one line), ``text`` (several lines),
    ``choice`` (one of ``choices``) or ``list`` (of one-line strings). ``min``/``max`` bound an
    ``int``'s value and a ``str``/``text``/``list``'s length.
    """

    key: str
    type: SettingType
    default: Any
    label: str
    help: str = ""
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """Who a plugin is and what it needs. Every plugin module exposes one as ``MANIFEST``.

    ``requires`` names plugins switched on with this one; ``conflicts`` names plugins that cannot
    be on at the same time; ``needs`` and ``breaks`` name capabilities (``intact_history``): a
    plugin that needs one cannot be on beside a plugin that breaks it.

    ``floors`` holds a required plugin's settings to a minimum while this one is on, e.g.
    ``{"totp": {"required_roles": ["owner", "manager"]}}``: an ``int`` at least that value, a
    ``bool`` ``True`` stays on, a ``list`` keeps those items, any other type that exact value.
    """

    name: str
    title: str
    description: str
    version: str
    category: str
    author: str
    settings: tuple[Setting, ...] = ()
    requires: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    breaks: tuple[str, ...] = ()
    floors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    """What a guard returns to say no. ``status`` is the HTTP status the API answers with;
    ``field`` names the input at fault; ``challenge`` asks for a further login step (e.g.
    ``{"field": "otp", "label": "6-digit code"}``)."""

    message: str
    code: str
    status: int = 403
    field: str | None = None
    challenge: Mapping[str, Any] | None = None
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Redirect:
    """``before_request`` may send the browser elsewhere (e.g. from http to https)."""

    url: str
    status: int = 308


@dataclass(frozen=True)
class RequestInfo:
    ip: str | None
    user_agent: str | None
    scheme: str
    path: str
    host: str = ""


@dataclass(frozen=True)
class TenantInfo:
    """The business. ``booking_url`` is the absolute address of its booking pages
    (``<BASE_URL>/book/<slug>/``), for links in mail; empty outside the app. ``currency`` is the
    ISO 4217 code of its prices, which are integers in that currency's minor unit."""

    id: int
    slug: str
    name: str
    timezone: str
    booking_url: str = ""
    currency: str = "EUR"


@dataclass(frozen=True)
class ServiceInfo:
    id: int
    name: str
    duration_minutes: int
    price_cents: int


@dataclass(frozen=True)
class ProviderInfo:
    id: int
    name: str


@dataclass(frozen=True)
class BookingInfo:
    """A booking as plugins see it. ``reference`` is ``None`` before it is confirmed."""

    reference: str | None
    start: datetime
    end: datetime
    service: ServiceInfo
    provider: ProviderInfo
    client_name: str
    client_email: str
    client_phone: str | None
    status: str
    consents: tuple[str, ...] = ()
    prepaid_cents: int = 0
    discount_cents: int = 0
    discount_label: str | None = None


@dataclass(frozen=True)
class UserInfo:
    """A signed-in person as plugins see them (``ctx.actor``, a staff page's user): a frozen
    copy, never the account itself. ``role`` is one of ``owner``, ``manager``, ``staff``,
    ``receptionist``, ``client`` or ``support``."""

    id: int
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class LoginAttempt:
    email: str
    user_id: int | None = None
    role: str | None = None
    answers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Everything about one hook call: whose business, who acts, from where, when, on what."""

    tenant: TenantInfo | None
    now: datetime
    # Who acts: the signed-in staff member or client, or None (a client without an account,
    # scheduled work).
    actor: UserInfo | None = None
    request: RequestInfo | None = None
    booking: BookingInfo | None = None
    login: LoginAttempt | None = None
    # Set by `bookwell tick --dry-run`: say what would be done, change nothing.
    dry_run: bool = False
    # The tenant's own data, for hooks that need more than the subject (``TenantData``); it
    # can only ever reach ``tenant``'s rows.
    data: TenantData | None = None


@dataclass(frozen=True)
class Consent:
    """A consent a booking must carry. Core stores ``id``, ``version`` and the SHA-256 of
    ``text`` with the booking, so the business can prove what the client agreed to."""

    id: str
    label: str
    text: str
    version: str = "1"
    url: str | None = None


@dataclass(frozen=True)
class SessionLimits:
    """Minutes; ``None`` leaves a limit as it is. Core keeps the strictest of all plugins'."""

    idle_minutes: int | None = None
    absolute_minutes: int | None = None


@dataclass(frozen=True)
class MenuItem:
    label: str
    url: str


@dataclass(frozen=True)
class OutgoingMessage:
    """One e-mail as ``filter_message`` sees it; return ``dataclasses.replace(message, ...)``
    to change it. ``kind`` is e.g. ``booking.confirmed`` or ``provider.cancelled``; ``ics`` is
    the calendar attachment, if any."""

    to: str
    subject: str
    text: str
    html: str | None
    ics: str | None
    kind: str


@dataclass(frozen=True)
class Discount:
    """What ``booking_discount`` returns: ``percent`` off the service's price, or ``cents`` off
    (never below zero). Core keeps the largest one offered and stores it with the booking."""

    label: str
    percent: int = 0
    cents: int = 0


class TenantData(Protocol):
    """Read and write access for plugins, always limited to ``ctx.tenant``."""

    def bookings(
        self,
        *,
        starts_from: datetime,
        starts_before: datetime,
        statuses: Iterable[str] = ("confirmed",),
    ) -> list[BookingInfo]:
        """The tenant's bookings starting in ``[starts_from, starts_before)``, earliest first."""
        ...

    def client_bookings(self, email: str) -> list[BookingInfo]:
        """Every booking of one client (e-mail compared case-insensitively), oldest first."""
        ...

    def send_mail(
        self,
        *,
        to: str,
        subject: str,
        text: str,
        kind: str,
        booking: str | None = None,
        once: str | None = None,
    ) -> bool:
        """Put an e-mail in the outbox (filtered by ``filter_message`` like core's own). With
        ``once``, a key unique within the tenant, a second call with the same key sends nothing
        and returns ``False``. On a dry run nothing is written, and it answers as the
        real call would (``False`` for a key already used)."""
        ...
