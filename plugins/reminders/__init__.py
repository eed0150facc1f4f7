"""Appointment reminders: each client gets one e-mail a set number of hours before their
appointment.

On every scheduled run the plugin looks at the confirmed bookings starting in the next
``hours_before`` hours, ``(now, now + hours_before]``, and sends each client a reminder. The
outbox's once-only key is the booking's reference with its start time, so:

* however often the schedule runs, and on however many workers, a booking gets one reminder;
* a rescheduled booking gets a fresh reminder for its new time (a new key);
* a cancelled booking gets none (only confirmed bookings are read);
* a booking made inside the window (3 hours ahead with ``hours_before`` 24) gets its reminder at
  the next run, provided the appointment has not started by then: one that has started is no
  longer in the window and is skipped.

On a dry run (``bookwell tick --dry-run``) it logs what it would send and sends nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask_babel import force_locale, gettext, lazy_gettext

from bookwell.hooks import BookingInfo, Context, Manifest, Setting, TenantInfo, hookimpl

log = logging.getLogger(__name__)

# The window is (now, now + hours]; TenantData reads [from, before), so both ends move on by
# the smallest step a stored instant has.
JUST_AFTER = timedelta(microseconds=1)

MANIFEST = Manifest(
    name="reminders",
    title=lazy_gettext("Appointment reminders"),
    description=lazy_gettext(
        "E-mails each client a reminder a set number of hours before their appointment, once "
        "per appointment time: a moved booking is reminded of its new time, a cancelled one "
        "not at all."
    ),
    version="1.0.0",
    category="Notifications",
    author="Bookwell",
    settings=(
        Setting(
            key="hours_before",
            type="int",
            default=24,
            label=lazy_gettext("Hours before the appointment"),
            help=lazy_gettext(
                "How long before the appointment the reminder goes out (1 to 336 hours, two "
                "weeks). A booking made later than that is reminded at once."
            ),
            min=1,
            max=336,
        ),
    ),
)


@hookimpl
def on_schedule(ctx: Context, settings) -> None:
    """Send each client whose appointment starts within ``hours_before`` their reminder."""
    due = ctx.data.bookings(
        starts_from=ctx.now + JUST_AFTER,
        starts_before=ctx.now + timedelta(hours=settings["hours_before"]) + JUST_AFTER,
    )
    sent = []
    for booking in due:
        # A plugin's mail speaks the business's language, as core's notices do.
        with force_locale(ctx.tenant.language):
            subject = gettext(
                "Reminder: %(service)s on %(when)s",
                service=booking.service.name,
                when=when(booking.start, ctx.tenant),
            )
            text = reminder_text(booking, ctx.tenant)
        if ctx.data.send_mail(
            to=booking.client_email,
            subject=subject,
            text=text,
            kind="booking.reminder",
            booking=booking.reference,
            once=f"reminder:{booking.reference}:{booking.start.isoformat()}",
        ):
            sent.append(booking.reference)
    if ctx.dry_run and sent:
        log.info("reminders for %s: would remind %s", ctx.tenant.slug, ", ".join(sent))
    elif sent:
        log.info("reminders for %s: %d sent", ctx.tenant.slug, len(sent))


def when(moment: datetime, tenant: TenantInfo) -> str:
    """``Tuesday 2 March 2027 at 10:00``, on the business's wall clock, in its language."""
    zone, language = ZoneInfo(tenant.timezone), tenant.language or "en"
    return gettext(
        "%(day)s at %(time)s",
        day=format_datetime(moment, "EEEE d MMMM y", tzinfo=zone, locale=language),
        time=format_datetime(moment, "HH:mm", tzinfo=zone, locale=language),
    )


def reminder_text(booking: BookingInfo, tenant: TenantInfo) -> str:
    # The manage link cannot be rebuilt (only its token's hash is stored): point at the booking
    # pages and the confirmation e-mail, which carries it.
    values = {
        "client": booking.client_name,
        "business": tenant.name,
        "service": booking.service.name,
        "provider": booking.provider.name,
        "when": when(booking.start, tenant),
        "zone": tenant.timezone,
        "reference": booking.reference,
        "url": tenant.booking_url,
    }
    if tenant.booking_url:
        return gettext(
            "Hello %(client)s,\n\n"
            "A reminder of your appointment at %(business)s:\n\n"
            "%(service)s with %(provider)s\n"
            "%(when)s (%(zone)s)\n"
            "Reference: %(reference)s\n\n"
            "Cannot make it? Please cancel or reschedule with the link in your confirmation "
            "e-mail or on our booking page, %(url)s, so that someone else can have the time.\n\n"
            "See you soon!",
            **values,
        )
    return gettext(
        "Hello %(client)s,\n\n"
        "A reminder of your appointment at %(business)s:\n\n"
        "%(service)s with %(provider)s\n"
        "%(when)s (%(zone)s)\n"
        "Reference: %(reference)s\n\n"
        "Cannot make it? Please cancel or reschedule with the link in your confirmation "
        "e-mail, so that someone else can have the time.\n\n"
        "See you soon!",
        **values,
    )
