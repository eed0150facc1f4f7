"""The values that cross the plugin boundary. All frozen: plugins read them, never mutate them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

SettingType = Literal["bool", "int", "str", "text", "choice", "list", "email", "url"]


class LazyText(Protocol):
    """A text translated when it is read, as ``flask_babel.lazy_gettext("...")`` makes one: a
    manifest is built at import time, before any request has a language, so its texts wait
    until a page reads them (``str(text)``, or a template writing it) to pick the reader's."""

    def __str__(self) -> str: ...

    def __html__(self) -> str: ...


# What a person reads in a manifest, a setting or a menu: a plain string, or a lazy one.
Text = str | LazyText


@dataclass(frozen=True)
class Setting:
    """One setting a tenant can give a plugin; the marketplace builds its form field from it.

    ``type`` is one of ``bool``, ``int``, ``str`` (one line), ``text`` (several lines),
    ``choice`` (one of ``choices``), ``list`` (of one-line strings; with ``choices``, each item one
    of them), ``email`` (one address) or ``url`` (an ``http(s)://`` address). ``min``/``max``
    bound an ``int``'s value and a ``str``/``text``/``list``'s length.
    """

    key: str
    type: SettingType
    default: Any
    label: Text
    help: Text = ""
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """Who a plugin is and what it needs. Every plugin module exposes one as ``MANIFEST``.

    ``name`` is the plugin's identity everywhere (entry point, CLI, API, settings, the prefix
    ``<name>_`` of its tables): lowercase letters, digits and underscores (``password_policy``).

    ``requires`` names plugins switched on with this one; ``conflicts`` names plugins that cannot
    be on at the same time; ``needs`` and ``breaks`` name capabilities (``intact_history``): a
    plugin that needs one cannot be on beside a plugin that breaks it.

    ``floors`` holds a required plugin's settings to a minimum while this one is on, e.g.
    ``{"two_factor": {"required_roles": ["owner", "manager"]}}``: an ``int`` at least that value, a
    ``bool`` ``True`` stays on, a ``list`` keeps those items, any other type that exact value.
    """

    name: str
    title: Text
    description: Text
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
    # A login guard may let the login through with a restricted token instead: the token opens
    # only routes marked with this scope (e.g. ``"enroll_totp"``); ``code`` says why.
    grant_scope: str | None = None
    # With ``grant_scope``: the path of this site's page where a browser does what the scope asks
    # (e.g. the plugin's enrolment page). The staff and client pages then start a restricted
    # session and send the browser there; without it they refuse the login with the message.
    continue_at: str | None = None


@dataclass(frozen=True)
class Redirect:
    """``before_request`` may send the browser elsewhere (e.g. from http to https)."""

    url: str
    status: int = 308


@dataclass(frozen=True)
class RequestInfo:
    """The request a hook runs in. ``scheme`` is ``https`` only when the request came so, or a
    trusted proxy said it did (``BOOKWELL_TRUSTED_PROXIES``). ``url`` is the whole address as
    asked for (scheme, host, path and query string), e.g. to send the browser to its ``https``
    twin; ``method`` is the HTTP method in capitals."""

    ip: str | None
    user_agent: str | None
    scheme: str
    path: str
    host: str = ""
    method: str = "GET"
    url: str = ""


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
    # How clients reach the business (for refusals that say "call us"), and its language.
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    language: str = "en"


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
    # How many times the booking was moved since it was made.
    reschedule_count: int = 0


@dataclass(frozen=True)
class UserInfo:
    """A signed-in person as plugins see them (``ctx.actor``, a staff page's user): a frozen
    copy, never the account itself. ``role`` is one of ``owner``, ``manager``, ``staff``,
    ``receptionist``, ``client`` or ``support``."""

    id: int
    email: str
    name: str
    role: str
    # The business the account belongs to; ``None`` for platform support.
    tenant_id: int | None = None


@dataclass(frozen=True)
class LoginAttempt:
    email: str
    user_id: int | None = None
    role: str | None = None
    answers: Mapping[str, str] = field(default_factory=dict)


def _unbound_audit(action: str, subject: str, details: Mapping[str, Any] | None = None) -> None:
    raise RuntimeError("ctx.audit works in the contexts Bookwell hands to a plugin")


def _no_progress(done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class Context:
    """Everything about one hook call: whose business, who acts, from where, when, on what.

    The per-plugin tools (``store``, ``secrets``, ``tables``, ``files``, ``audit``,
    ``progress``) are bound to the plugin the context is handed to, and to ``tenant``; core
    binds them just before it calls each plugin, so ``plugin`` names the caller.
    """

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
    # The plugin this context was handed to, and its tools; None until core binds them.
    plugin: str | None = None
    store: PluginStore | None = None
    secrets: Secrets | None = None
    tables: PluginTables | None = None
    files: Path | None = None
    # ctx.audit(action, subject, details=None): an entry "plugin.<name>.<action>" in the
    # tenant's audit trail; ctx.progress(done, total): how far long scheduled work has got.
    audit: Callable[..., None] = field(default=_unbound_audit, repr=False)
    # ctx.grants: time-limited permissions (``Grants``); None where there is no tenant.
    grants: Grants | None = None
    progress: Callable[[int, int], None] = field(default=_no_progress, repr=False)
    # How core binds the tools above for one plugin (see ``for_plugin``).
    binder: Callable[[Context, str], Context] | None = field(
        default=None, repr=False, compare=False
    )

    def for_plugin(self, name: str) -> Context:
        """This context with the tools of plugin ``name``; core calls it before each call."""
        if self.binder is None or self.plugin == name:
            return self
        return self.binder(self, name)

    def without_tools(self) -> Context:
        """The same facts with no per-plugin tools (for handing on to another plugin)."""
        return replace(
            self, plugin=None, store=None, secrets=None, tables=None, files=None, grants=None
        )


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
class GivenConsent:
    """The proof of one consent a client gave with a booking, as core keeps it
    (``ctx.data.consents``): which consent (``id``, asked by ``plugin``), the ``version`` and
    the SHA-256 of the exact text accepted, when (UTC), and the address and user agent of the
    request it came with (``None`` when unknown: given outside a request, or stored before
    Bookwell kept them)."""

    booking_reference: str
    client_name: str
    client_email: str
    id: str
    plugin: str
    version: str
    text_sha256: str
    given_at: datetime
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SessionLimits:
    """Minutes; ``None`` leaves a limit as it is. Core keeps the strictest of all plugins'."""

    idle_minutes: int | None = None
    absolute_minutes: int | None = None


@dataclass(frozen=True)
class DataProtection:
    """What ``data_protection`` asks of core for a tenant (core takes the union over the
    enabled plugins):

    * ``audit_views``: core writes an audit entry (``booking.viewed``, ``client.viewed``) for
      every view of a booking's or a client's details by staff or support, in the request's
      own transaction, before the page or API answer goes out; if it cannot, the view is
      refused. (``after_view`` stays best effort.)
    * ``encrypt_client_fields``: core keeps the client fields that may carry health
      information (a booking's ``client_phone`` and ``client_notes``) encrypted at rest with
      the tenant's key, including the rows written before it was asked; hooks, pages and the
      API see them decrypted."""

    audit_views: bool = False
    encrypt_client_fields: bool = False


@dataclass(frozen=True)
class Grant:
    """A permission given for a while (``ctx.grants``): to one account (``user_id``) or to a
    role (``role``, e.g. ``"support"``), on everything (``subject`` ``None``) or on one subject
    (``"client:<e-mail>"``, case-folded). Active while not revoked and ``ctx.now`` is before
    ``expires_at``; core's permission checks consult the active ones."""

    id: int
    permission: str
    reason: str
    plugin: str
    created_at: datetime
    expires_at: datetime
    user_id: int | None = None
    role: str | None = None
    subject: str | None = None
    granted_by: int | None = None
    revoked_at: datetime | None = None
    revoked_by: int | None = None


@dataclass(frozen=True)
class MenuItem:
    label: Text
    url: str


@dataclass(frozen=True)
class OutgoingMessage:
    """One e-mail as ``filter_message`` sees it; return ``dataclasses.replace(message, ...)``
    to change it. ``kind`` is e.g. ``booking.confirmed`` or ``provider.cancelled``; ``ics`` is
    the calendar attachment, if any. ``link`` is the address the message exists to give its
    reader, also written in ``text``: a booking's manage page in the client's booking mail, the
    verify, reset or invitation link of an account mail; ``None`` when it has none. A filter
    that rewrites the text keeps the message useful by keeping ``link``."""

    to: str
    subject: str
    text: str
    html: str | None
    ics: str | None
    kind: str
    link: str | None = None


@dataclass(frozen=True)
class Discount:
    """What ``booking_discount`` returns: ``percent`` off the service's price, or ``cents`` off
    (never below zero). Core keeps the largest one offered and stores it with the booking."""

    label: str
    percent: int = 0
    cents: int = 0


@dataclass(frozen=True)
class ArchiveResult:
    """What ``ctx.data.archive_and_delete_ended`` did (on a dry run: would do).

    ``deleted`` bookings went, with everything that belonged to them, after they were written
    to ``archive`` (a JSON-lines file in the plugin's ``ctx.files``; ``None`` when nothing went,
    and on a dry run) whose SHA-256 is ``checksum``, and to ``csv_archive`` beside it (the same
    bookings as CSV, for a spreadsheet) whose SHA-256 is ``csv_checksum``. ``first_end`` and
    ``last_end`` are the earliest and latest of their ends (UTC). ``remaining`` counts the
    bookings that ended before the same instant and are still there, for ``ctx.progress``:
    counted by a context's first call, then less what that context deleted (what another
    worker deleted meanwhile shows in the next context's count)."""

    deleted: int
    archive: Path | None = None
    checksum: str | None = None
    first_end: datetime | None = None
    last_end: datetime | None = None
    remaining: int = 0
    csv_archive: Path | None = None
    csv_checksum: str | None = None


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

    def staff(self, roles: Iterable[str] | None = None) -> list[UserInfo]:
        """The tenant's active staff accounts (of ``roles`` only, when given: ``owner``,
        ``manager``, ``staff``, ``receptionist``), by id: e.g. whom to tell of something."""
        ...

    def consents(
        self, *, given_from: datetime, given_before: datetime, consent_id: str | None = None
    ) -> list[GivenConsent]:
        """The proof of every consent given with the tenant's bookings in ``[given_from,
        given_before)`` (any plugin's, or only those with id ``consent_id``), earliest first."""
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

    def archive_and_delete_ended(self, before: datetime, limit: int) -> ArchiveResult:
        """Archive, then delete, up to ``limit`` (1 to 500) of the tenant's bookings that ended
        before ``before`` (which may not be later than ``ctx.now``), oldest first, with what
        belongs to them: consents, reschedules, outbox messages and their ``.eml`` files. Never
        the audit trail, which gets a ``bookings.archived_and_deleted`` entry.

        The archive (one JSON line per booking, and the same bookings as CSV beside it) is
        written to the calling plugin's ``ctx.files`` and flushed to disk before anything is
        deleted, and the deletion and its audit entry commit together: a crash in between
        leaves the bookings for the next call, which archives them again in new files.
        Concurrent calls never take the same bookings. Call it again while
        ``deleted == limit``; on a dry run it deletes and writes nothing and answers what the
        first call would take. ``ValueError`` for a ``before`` after ``ctx.now`` or a ``limit``
        out of range."""
        ...


class Grants(Protocol):
    """``ctx.grants``: time-limited permissions in ``ctx.tenant``, recorded by a plugin and
    consulted by core's permission checks (pages, API, ``require_staff``). Each ``give`` and
    ``revoke`` commits on its own with an audit entry (``access.granted``, ``access.revoked``)
    naming the plugin, the grantee, the permission, the subject, the reason and the expiry."""

    def give(
        self,
        *,
        permission: str,
        hours: float,
        reason: str,
        user_id: int | None = None,
        role: str | None = None,
        subject: str | None = None,
        granted_by: int | None = None,
    ) -> Grant:
        """Give ``permission`` (a name from core's permission table) from ``ctx.now`` for
        ``hours`` (more than 0, at most 72) to exactly one of ``user_id`` (an account of the
        tenant) or ``role``. ``reason`` may not be blank. ``ValueError`` otherwise."""
        ...

    def revoke(self, grant_id: int, *, revoked_by: int | None = None) -> bool:
        """End a grant now; ``False`` when it is not this tenant's or already ended."""
        ...

    def active(self, *, user_id: int | None = None, role: str | None = None) -> list[Grant]:
        """The tenant's active grants (of one account or role when given), newest first."""
        ...

    def history(self, *, limit: int = 100) -> list[Grant]:
        """The tenant's grants, active or not, newest first."""
        ...


class PluginStore(Protocol):
    """``ctx.store``: the plugin's own key -> JSON values for one tenant, in the database, shared
    by every process. Each call commits on its own; a key whose ``expires_at`` (UTC) is not after
    ``ctx.now`` reads as absent."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is absent or expired."""
        ...

    def set(self, key: str, value: Any, expires_at: datetime | None = None) -> None:
        """Store ``value`` (anything ``json.dumps`` takes) under ``key``."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was there (and live)."""
        ...

    def increment(self, key: str, by: int = 1, expires_at: datetime | None = None) -> int:
        """Add ``by`` to the integer under ``key`` atomically and return the new value. An absent
        or expired key starts from 0 and takes ``expires_at``; a live key keeps its expiry."""
        ...

    def compare_and_set(
        self, key: str, old: Any, new: Any, expires_at: datetime | None = None
    ) -> bool:
        """Set ``key`` to ``new`` only if its value is ``old`` (``None``: only if absent);
        atomically, so of two racing callers exactly one wins. ``True`` if it was set."""
        ...


class Secrets(Protocol):
    """``ctx.secrets``: encryption with a key of the tenant's own, itself encrypted by the
    instance's key (``BOOKWELL_ENCRYPTION_KEY``), so a database dump alone reveals nothing."""

    def encrypt(self, data: bytes) -> str:
        """Encrypted and authenticated ``data``, as text to store."""
        ...

    def decrypt(self, token: str) -> bytes:
        """What ``encrypt`` was given; ``ValueError`` if ``token`` was altered or is another
        tenant's."""
        ...

    def digest(self, text: str) -> str:
        """A keyed hash of ``text`` (the same text always gives the same digest for this
        tenant): look up what is stored encrypted without decrypting everything."""
        ...


class PluginTables(Protocol):
    """``ctx.tables``: the plugin's own tables (from its migrations), limited to ``ctx.tenant``.

    ``table`` is a SQLAlchemy ``Table`` named with the plugin's prefix and holding a
    ``tenant_id`` column; every statement is limited to ``ctx.tenant`` (and ``insert`` fills
    ``tenant_id``). Each call commits on its own."""

    def select(
        self, table: Any, *where: Any, order_by: Any = (), limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The tenant's rows of ``table`` matching every ``where`` clause, as dicts."""
        ...

    def insert(self, table: Any, **values: Any) -> Any:
        """Add one row for the tenant; returns its primary key."""
        ...

    def update(self, table: Any, *where: Any, **values: Any) -> int:
        """Change the tenant's rows matching ``where``; returns how many."""
        ...

    def delete(self, table: Any, *where: Any) -> int:
        """Remove the tenant's rows matching ``where``; returns how many."""
        ...
