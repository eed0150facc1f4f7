"""Front desk: what a business's reception needs from Bookwell.

- No appointment is offered or booked while the front desk is at lunch (``unavailable_times``
  and the booking guards), on the days and hours the business chose.
- Staff of the chosen roles accept the house rules before they work: until they have accepted
  the current version, a login gets a token restricted to accepting them.
- Failed logins to a staff account are counted per hour; at the chosen count the front desk's
  address is told.
- A callback list (clients who phoned and want a call back) on a staff page of its own, the
  phone numbers kept encrypted with the business's key.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bookwell.hooks import Manifest, MenuItem, Refusal, Setting, hookimpl

from . import commands as operator_commands
from . import views
from .house_rules import PENDING_CODE, SCOPE, accept_path, has_accepted, pending_key
from .logins import FAILURE_WINDOW, failures_key

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
STAFF_ROLES = ("owner", "manager", "staff", "receptionist")

MANIFEST = Manifest(
    name="front_desk",
    title="Front desk",
    description="The front desk's lunch break kept free of appointments, house rules staff "
    "accept before they work, alerts about failed logins and a callback list.",
    version="0.1.0",
    category="Operations",
    author="Front Desk Plugins <hello@frontdesk.example>",
    settings=(
        Setting("lunch_days", "list", list(WEEKDAYS[:5]), "Lunch break on", choices=WEEKDAYS),
        Setting("lunch_start", "str", "12:30", "Lunch from", help="HH:MM, business time", max=5),
        Setting("lunch_end", "str", "13:30", "Lunch until", help="HH:MM, business time", max=5),
        Setting(
            "rules_roles",
            "list",
            [],
            "Must accept the house rules",
            help="these roles accept the house rules before they can work",
            choices=STAFF_ROLES,
        ),
        Setting("house_rules_url", "url", "", "House rules", help="the page with the rules"),
        Setting(
            "rules_version",
            "int",
            1,
            "House rules version",
            help="raise it when the rules change: everyone accepts them again",
            min=1,
            max=10000,
        ),
        Setting("alert_email", "email", "", "Tell about failed logins", help="empty: nobody"),
        Setting(
            "alert_after",
            "int",
            5,
            "Failed logins in an hour before telling",
            min=2,
            max=100,
        ),
    ),
)


def clock_time(text):
    """``"12:30"`` as a ``time``, or ``None`` when it is not a time written HH:MM."""
    hours, colon, minutes = text.partition(":")
    if not (colon and len(hours) == 2 and len(minutes) == 2):
        return None
    if not (hours.isdigit() and minutes.isdigit()):  # isdigit, not int(): no signs or spaces
        return None
    if int(hours) > 23 or int(minutes) > 59:
        return None
    return time(int(hours), int(minutes))


def lunch_breaks(settings, timezone, start, end):
    """The lunch breaks, in UTC, that overlap ``[start, end)``, cut to it."""
    zone = ZoneInfo(timezone)
    begins, ends = clock_time(settings["lunch_start"]), clock_time(settings["lunch_end"])
    breaks = []
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    while day <= last:
        if WEEKDAYS[day.weekday()] in settings["lunch_days"]:
            lunch_start = datetime.combine(day, begins, zone).astimezone(UTC)
            lunch_end = datetime.combine(day, ends, zone).astimezone(UTC)
            if lunch_start < end and lunch_end > start:
                breaks.append((max(lunch_start, start), min(lunch_end, end)))
        day += timedelta(days=1)
    return breaks


def _lunch_refusal(settings, timezone, start, end):
    if not lunch_breaks(settings, timezone, start, end):
        return None
    return Refusal(
        f"The front desk is at lunch from {settings['lunch_start']} to {settings['lunch_end']}: "
        "please choose another time.",
        code="front_desk_lunch",
        status=409,
        field="start",
    )


@hookimpl
def check_settings(settings):
    faults = {}
    start, end = clock_time(settings["lunch_start"]), clock_time(settings["lunch_end"])
    for key, value in (("lunch_start", start), ("lunch_end", end)):
        if value is None:
            faults[key] = "Write the time as HH:MM, e.g. 12:30."
    if start is not None and end is not None and end <= start:
        faults["lunch_end"] = "The lunch break must end after it starts."
    if settings["rules_roles"] and not settings["house_rules_url"]:
        faults["house_rules_url"] = "Give the address of the house rules staff must accept."
    return faults or None


@hookimpl
def unavailable_times(ctx, settings, start, end):
    return lunch_breaks(settings, ctx.tenant.timezone, start, end)


@hookimpl
def before_confirm(ctx, settings):
    # unavailable_times only hides the times; a client who asks for one anyway is refused here.
    return _lunch_refusal(settings, ctx.tenant.timezone, ctx.booking.start, ctx.booking.end)


@hookimpl
def before_reschedule(ctx, settings, new_start, new_end):
    return _lunch_refusal(settings, ctx.tenant.timezone, new_start, new_end)


@hookimpl
def before_login(ctx, settings):
    login = ctx.login
    if ctx.tenant is None or login is None or login.role not in settings["rules_roles"]:
        return None
    version = settings["rules_version"]
    if has_accepted(ctx, login.user_id, version):
        return None
    # The API view that records the acceptance gets no settings: it learns from here which
    # version this person was asked to accept.
    ctx.store.set(pending_key(login.user_id), version)
    return Refusal(
        f"Please read and accept the house rules of {ctx.tenant.name} (version {version}, "
        f"{settings['house_rules_url']}) before you continue.",
        code=PENDING_CODE,
        grant_scope=SCOPE,
        details={
            "house_rules": settings["house_rules_url"],
            "version": version,
            "accept": accept_path(ctx.tenant.slug),
        },
    )


@hookimpl
def after_login_failed(ctx, settings, reason):
    login = ctx.login
    if ctx.store is None or login is None or login.user_id is None:
        return
    if reason != "invalid_credentials" or login.role not in STAFF_ROLES:
        return
    # The hour starts with its first failure (increment keeps a live key's expiry).
    failures = ctx.store.increment(failures_key(login.user_id), expires_at=ctx.now + FAILURE_WINDOW)
    # Exactly one failure of the hour reaches the count, however many race.
    if failures == settings["alert_after"] and settings["alert_email"]:
        ctx.data.send_mail(
            to=settings["alert_email"],
            subject=f"{failures} failed logins to {login.email}",
            text=f"Someone failed to log in to {login.email}'s account {failures} times within "
            "an hour. If it was not them, their password may be under attack.",
            kind="front_desk.failed_logins",
        )
        ctx.audit("failed_logins.alerted", f"user:{login.user_id}", {"failures": failures})


@hookimpl
def routes():
    return views.blueprint()


@hookimpl
def staff_menu(ctx):
    return [MenuItem("Front desk", f"/admin/{ctx.tenant.slug}/front_desk/")]


@hookimpl
def migrations():
    return "bookwell_front_desk:migrations"


@hookimpl
def commands():
    return [operator_commands.front_desk_revoke]
