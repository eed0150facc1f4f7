"""HIPAA mode: the technical safeguards a clinic's booking platform is chosen on (45 CFR
164.312), switched on for one business at once.

* **Authentication and transmission security**: it ``requires`` ``two_factor`` and ``ssl``
  (switched on with it, and neither can be switched off while it is on), and holds
  ``two_factor``'s ``required_roles`` to every staff role (``floors``): no staff login without
  an authenticator app, nothing over plain HTTP.
* **Automatic logoff**: staff sessions end after ``idle_timeout_minutes`` without use and
  ``absolute_timeout_hours`` after the login, whatever they were started with
  (``session_limits``; clients keep the instance's limits).
* **Audit controls and encryption**: core audits every view of a client's or a booking's
  details by staff or support before answering, and keeps clients' phone and notes encrypted
  with the business's key (``data_protection``).
* **Minimum necessary**: every e-mail about a booking, and its ``.ics``, says only
  "Appointment at <business>, <time>" and the client's manage link: no client name, notes,
  service or provider (``filter_message``; see :mod:`.minimum`).
* **No vendor access**: platform support is refused the business's data (403
  ``support_access_not_granted``, audited by core) unless the owner grants it for 1 to 72
  hours on the page "HIPAA: support access" (audited, listed, revocable).
* **Emergency access** ("break glass"): a staff member whose role does not read every booking
  takes ``bookings.read`` on one client's record for one hour by writing a reason; it is
  audited and the owners are e-mailed (see :mod:`.access`).
* **New-device alerts**: an account is e-mailed when it logs in from a device it was not seen
  on before (see :mod:`.devices`).
"""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext

from bookwell.hooks import (
    Context,
    DataProtection,
    Manifest,
    MenuItem,
    OutgoingMessage,
    Refusal,
    SessionLimits,
    Setting,
    hookimpl,
)

from . import access, devices, minimum

STAFF_ROLES = ("owner", "manager", "staff", "receptionist")
# The defaults are the strictest usual values; HIPAA mode only ever tightens them.
IDLE_MINUTES, ABSOLUTE_HOURS = 15, 12

MANIFEST = Manifest(
    name="hipaa",
    title=lazy_gettext("HIPAA mode"),
    description=lazy_gettext(
        "For clinics: two-step login for all staff over HTTPS only, automatic logoff, every "
        "view of a client's details audited, clients' phone and notes encrypted, e-mails "
        "without health details, platform support kept out unless you let it in for a while, "
        "emergency access with a reason, and an alert on each login from a new device."
    ),
    version="1.0.0",
    category="Security",
    author="Bookwell",
    settings=(
        Setting(
            key="idle_timeout_minutes",
            type="int",
            default=IDLE_MINUTES,
            label=lazy_gettext("Staff idle timeout (minutes)"),
            help=lazy_gettext(
                "A staff session ends after this long without use (1 to 15 minutes). HIPAA "
                "mode only tightens: the instance's own limit still applies when it is shorter."
            ),
            min=1,
            max=IDLE_MINUTES,
        ),
        Setting(
            key="absolute_timeout_hours",
            type="int",
            default=ABSOLUTE_HOURS,
            label=lazy_gettext("Staff session length (hours)"),
            help=lazy_gettext(
                "A staff session ends this long after its login, used or not (1 to 12 hours)."
            ),
            min=1,
            max=ABSOLUTE_HOURS,
        ),
    ),
    requires=("two_factor", "ssl"),
    floors={"two_factor": {"required_roles": list(STAFF_ROLES)}},
)


@hookimpl
def session_limits(ctx: Context, settings) -> SessionLimits | None:
    # Clients keep the instance's limits: automatic logoff guards the workforce's screens.
    if ctx.actor is None or ctx.actor.role not in STAFF_ROLES:
        return None
    return SessionLimits(
        idle_minutes=settings["idle_timeout_minutes"],
        absolute_minutes=settings["absolute_timeout_hours"] * 60,
    )


@hookimpl
def data_protection() -> DataProtection:
    return DataProtection(audit_views=True, encrypt_client_fields=True)


@hookimpl
def before_data_access(ctx: Context, settings, scope: str) -> Refusal | None:
    """Platform support sees nothing of the business unless the owner's grant is live."""
    if ctx.actor is None or ctx.actor.role != "support":
        return None
    if access.support_let_in(ctx):
        return None
    return Refusal(
        gettext(
            "This business is in HIPAA mode: platform support sees its data only while its "
            "owner grants access."
        ),
        code="support_access_not_granted",
        status=403,
    )


@hookimpl
def filter_message(ctx: Context, message: OutgoingMessage) -> OutgoingMessage | None:
    return minimum.necessary(ctx, message)


@hookimpl
def after_login(ctx: Context) -> None:
    devices.alert_if_new(ctx)


@hookimpl
def staff_menu(ctx: Context) -> list[MenuItem]:
    slug = ctx.tenant.slug
    if ctx.actor is not None and ctx.actor.role == "owner":
        return [MenuItem(gettext("HIPAA: support access"), f"/admin/{slug}/hipaa/support-access")]
    return [MenuItem(gettext("Emergency access"), f"/admin/{slug}/hipaa/emergency")]


@hookimpl
def routes():
    from .views import pages

    return pages
