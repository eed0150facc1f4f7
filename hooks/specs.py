"""The hook specifications: the whole contract between Bookwell and its plugins.

Three kinds of hook:

* **guards** (``before_*``) return ``None`` to allow or a :class:`Refusal`. Every enabled plugin
  is asked; all refusals are collected. A guard that raises or overruns its time limit refuses
  with ``plugin_failed``: security fails closed.
* **events** (``after_*``, ``on_schedule``) return nothing. A failing one is logged and the
  others still run; what was committed stays committed.
* **contributions** return values that core merges.

Every hook receives ``ctx`` (:class:`Context`) and ``settings`` (this plugin's settings for
``ctx.tenant``, validated, read-only); an implementation may declare only the arguments it uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pluggy

from .types import (
    Consent,
    Context,
    DataProtection,
    Discount,
    MenuItem,
    OutgoingMessage,
    ProviderInfo,
    Redirect,
    Refusal,
    ServiceInfo,
    SessionLimits,
)

hookspec = pluggy.HookspecMarker("bookwell")

Settings = Mapping[str, Any]

# --- guards -------------------------------------------------------------------------------------


@hookspec
def before_login(ctx: Context, settings: Settings) -> Refusal | None:
    """Guard, after the password was found right and before the session starts.

    ``ctx.login`` holds the attempt (user, role, and ``answers`` to earlier challenges). Refuse
    with a ``challenge`` to ask for one more step, such as a one-time code.
    """


@hookspec
def before_password_check(ctx: Context, settings: Settings) -> Refusal | None:
    """Guard, before the password of a login is verified: ``ctx.login`` holds the e-mail (and
    the account, if there is one). A refusal here answers whatever the password was, so it
    never tells whether a guess was right (e.g. ``locked``, with ``details.locked_until``)."""


@hookspec
def before_password_set(ctx: Context, settings: Settings, password: str) -> Refusal | None:
    """Guard, wherever a password is set (sign-up, change, reset). ``ctx.actor`` is the
    account whose password it is (e-mail, name, role, tenant). ``field`` should be
    ``"password"``. The password must never be logged or stored by the plugin."""


@hookspec
def before_confirm(ctx: Context, settings: Settings) -> Refusal | None:
    """Guard, before a booking is written. ``ctx.booking`` is the booking about to be made
    (``reference`` is ``None``) with the consents the client gave."""


@hookspec
def before_cancel(ctx: Context, settings: Settings, reason: str | None) -> Refusal | None:
    """Guard, before a booking is cancelled; ``ctx.actor`` is ``None`` for the client, and
    ``reason`` is what the cancelling staff member gave (``None`` from a client)."""


@hookspec
def before_reschedule(
    ctx: Context, settings: Settings, new_start: datetime, new_end: datetime
) -> Refusal | None:
    """Guard, before a booking moves from ``ctx.booking.start`` to ``new_start``."""


@hookspec
def before_request(ctx: Context, settings: Settings) -> Refusal | Redirect | None:
    """Guard, before any view of a tenant's pages or API runs: every route with the tenant's
    slug in its path, and the API's routes without one (``/api/v1/auth/...``) called with a
    bearer (token or API key) of one of the tenant's users. May return a :class:`Redirect`.
    ``ctx.actor`` is the tenant's account that the request's session cookie or bearer signs
    in (a full login; a restricted one is nobody), else ``None``."""


@hookspec
def before_data_access(ctx: Context, settings: Settings, scope: str) -> Refusal | None:
    """Guard, before staff or platform support read a tenant's data (``scope`` says what)."""


# --- events -------------------------------------------------------------------------------------


@hookspec
def after_login(ctx: Context, settings: Settings) -> None:
    """Event, after a login succeeded."""


@hookspec
def after_login_failed(ctx: Context, settings: Settings, reason: str) -> None:
    """Event, after a login was refused (wrong password or a guard's refusal)."""


@hookspec
def after_confirm(ctx: Context, settings: Settings) -> None:
    """Event, after a booking was committed; ``ctx.booking.reference`` is set."""


@hookspec
def after_cancel(ctx: Context, settings: Settings, reason: str | None) -> None:
    """Event, after a cancellation was committed; ``reason`` as for ``before_cancel``."""


@hookspec
def after_outcome(ctx: Context, settings: Settings, outcome: str) -> None:
    """Event, after staff marked a booking ``completed`` or ``no-show`` (``outcome``)."""


@hookspec
def after_refusal(ctx: Context, settings: Settings, hook: str, code: str, plugin: str) -> None:
    """Event, after a guard (``hook``) refused something: ``code`` is the refusal's and
    ``plugin`` the plugin that refused. Every enabled plugin hears of it."""


@hookspec
def after_reschedule(
    ctx: Context, settings: Settings, old_start: datetime, old_end: datetime
) -> None:
    """Event, after a reschedule was committed; ``ctx.booking`` is at its new time."""


@hookspec
def after_view(ctx: Context, settings: Settings, subject: str) -> None:
    """Event, after a staff member viewed a client's or a booking's details (``subject``)."""


@hookspec
def on_schedule(ctx: Context, settings: Settings) -> None:
    """Event, run periodically per tenant (``bookwell tick``, the worker, or in-process).
    Take the time from ``ctx.now``, never from the wall clock."""


# --- contributions ------------------------------------------------------------------------------


@hookspec
def booking_requirements(ctx: Context, settings: Settings) -> list[Consent] | None:
    """Contribution: consents a client must give to book. Core lists them on the API and the
    pages, refuses a booking missing one, and stores proof of each one given."""


@hookspec
def password_rules(ctx: Context, settings: Settings) -> list[str] | None:
    """Contribution: the rules a new password must meet, in words (``"At least 15
    characters."``), shown beside every password field before the user types. ``ctx.actor`` is
    the account whose password it is when known (a change, a reset, an invitation); ``None`` on a
    client's sign-up. ``before_password_set`` stays the authority."""


@hookspec
def response_headers(ctx: Context, settings: Settings) -> Mapping[str, str] | None:
    """Contribution: headers to add to every response of the tenant (e.g. HSTS)."""


@hookspec
def session_limits(ctx: Context, settings: Settings) -> SessionLimits | None:
    """Contribution: idle and absolute session timeouts; core keeps the strictest."""


@hookspec
def data_protection(ctx: Context, settings: Settings) -> DataProtection | None:
    """Contribution: what core must do to protect the tenant's client data while this plugin
    is on (view auditing, client fields encrypted at rest); core takes the union."""


@hookspec
def filter_message(
    ctx: Context, settings: Settings, message: OutgoingMessage
) -> OutgoingMessage | None:
    """Contribution: adjust an outgoing e-mail; return ``dataclasses.replace(message, ...)`` or
    ``None`` to leave it. Filters run in turn, each seeing the previous one's result; a filter
    that fails holds the message unsent (it may exist to remove personal data)."""


@hookspec
def check_settings(settings: Settings) -> Mapping[str, str] | None:
    """Contribution, before a tenant's settings for this plugin are saved (marketplace, API,
    CLI): rules across fields, and a single field's format that ``Setting`` cannot say.
    ``settings`` are the new settings, each value already valid on its own (it is not asked
    while a field has its own error); return ``{key: message}`` for each field at fault, or
    ``None``. Only this plugin's own implementation is asked."""


@hookspec
def unavailable_times(
    ctx: Context,
    settings: Settings,
    start: datetime,
    end: datetime,
    service: ServiceInfo,
    provider: ProviderInfo,
) -> Iterable[tuple[datetime, datetime]] | None:
    """Contribution: the ``(start, end)`` ranges (aware datetimes, any zone) that ``provider``
    cannot be booked for ``service`` in the window ``[start, end)``; a range may reach past
    either end of the window. Core leaves them out of the availability answer and the booking
    pages' calendar. Asked once per provider per request. A failing one is logged and ignored:
    the guards stay the authority."""


@hookspec
def commands() -> list[Any] | None:
    """Contribution: ``click`` commands for operators, run as ``bookwell <plugin> <command>``
    (e.g. ``bookwell password_policy unlock --tenant salon --email ann@example.com``). Inside a
    command, ``bookwell.hooks.pages.plugin_context(slug)`` gives the tenant's context."""


@hookspec
def routes() -> Any | None:
    """Contribution: a Flask blueprint of the plugin's own pages. Core mounts it and answers
    404 for tenants that have not enabled the plugin."""


@hookspec
def migrations() -> str | None:
    """Contribution, asked by ``bookwell init`` (and every schema upgrade) whatever the
    tenants enabled: the Alembic script location of the plugin's own tables, e.g.
    ``"bookwell_visit_notes:migrations"``. Core runs them after its own, with the version table
    ``alembic_version_<name>``; every table must be named ``<name>_...`` or the upgrade is
    rolled back. A plugin's failing migration is reported and leaves core and the other plugins
    upgraded; a hook that raises or names no folder with an ``env.py`` marks the plugin broken."""


@hookspec
def staff_menu(ctx: Context, settings: Settings) -> list[MenuItem] | None:
    """Contribution: entries for the staff pages' menu (``MenuItem(label, url)``, ``url`` a path
    of this site); ``ctx.actor`` is the signed-in staff member."""


@hookspec
def booking_discount(ctx: Context, settings: Settings) -> Discount | None:
    """Contribution, at confirmation, before the write lock: a discount on the booking being
    made (``ctx.booking``, ``reference`` ``None``). Core works out each offer's cents from the
    service's price (a percent rounds down to whole cents; never below zero nor above the
    price), keeps the largest and stores it with the booking; a reschedule keeps it. A discount
    is not a security check: one that fails is logged and the booking is made without it."""


@hookspec
def closed_client_actions(ctx: Context, settings: Settings) -> Mapping[str, str] | None:
    """Contribution, as the client's manage page for ``ctx.booking`` is shown (``ctx.actor`` as
    the guards would have it): the actions (``"cancel"``, ``"reschedule"``) this plugin's guards
    would refuse the client now, each with the message to show instead of its button. Only what
    the page offers: the guards stay the authority, and a failing one is logged and ignored."""


@hookspec
def cancellation_refund(ctx: Context, settings: Settings, reason: str | None) -> int | None:
    """Contribution, when a prepaid booking is cancelled (``ctx.booking.prepaid_cents`` > 0),
    after the ``before_cancel`` guards and before the cancellation commits: the refund due to
    the client, in cents, or ``None`` for no rule. ``reason`` and ``ctx.actor`` as for
    ``before_cancel``. Core keeps the smallest answer, within ``[0, prepaid_cents]``, and stores
    it with the booking (``refund_due_cents``); a failing one refuses the cancellation
    (``plugin_failed``): money owed is not guessed."""


GUARDS = (
    "before_password_check",
    "before_login",
    "before_password_set",
    "before_confirm",
    "before_cancel",
    "before_reschedule",
    "before_request",
    "before_data_access",
)
EVENTS = (
    "after_login",
    "after_login_failed",
    "after_confirm",
    "after_cancel",
    "after_reschedule",
    "after_view",
    "after_outcome",
    "after_refusal",
    "on_schedule",
)
CONTRIBUTIONS = (
    "booking_requirements",
    "password_rules",
    "response_headers",
    "session_limits",
    "data_protection",
    "filter_message",
    "routes",
    "migrations",
    "staff_menu",
    "booking_discount",
    "cancellation_refund",
    "closed_client_actions",
    "check_settings",
    "unavailable_times",
    "commands",
)
