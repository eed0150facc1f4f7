"""Minimum necessary (45 CFR 164.502(b)): what an e-mail about a booking may say.

Mail leaves the business's control: it sits in inboxes, on phones, in providers' logs. So a
message about a booking (core's ``booking.*`` and ``provider.*`` mail, and any plugin's mail
tied to a booking, such as reminders) is rewritten to "Appointment at <business>, <time>",
one line on what happened, and the client's manage link (``message.link``), where the client
sees the rest after opening it. Its ``.ics`` keeps the time, the place, the business and the
link, and loses the service, the provider and the client's name. Mail that is not about a
booking (account links, this plugin's alerts) carries no health details and passes as it is.

A message of a booking kind whose booking cannot be told is not sent as it is: the filter
fails and core holds it, since sending the original would fail open."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import icalendar
from babel.dates import format_datetime
from flask_babel import force_locale, gettext, lazy_gettext
from markupsafe import escape

from bookwell.hooks import Context, OutgoingMessage

BOOKING_KINDS = ("booking.", "provider.")
WHAT_HAPPENED = {
    "booking.confirmed": lazy_gettext("Your appointment is confirmed."),
    "booking.rescheduled": lazy_gettext("Your appointment was moved to this time."),
    "booking.cancelled": lazy_gettext("Your appointment was cancelled."),
    "booking.reminder": lazy_gettext("A reminder of your appointment."),
    "provider.confirmed": lazy_gettext("A new appointment was booked with you."),
    "provider.rescheduled": lazy_gettext("An appointment with you was moved to this time."),
    "provider.cancelled": lazy_gettext("An appointment with you was cancelled."),
}
# What an invitation keeps: when, where, whose, its identity and state; never a description.
ICS_KEPT = ("UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "STATUS", "ORGANIZER", "URL")


def necessary(ctx: Context, message: OutgoingMessage) -> OutgoingMessage | None:
    booking = ctx.booking
    if booking is None:
        if message.kind.startswith(BOOKING_KINDS):
            raise RuntimeError(f"hipaa: a {message.kind} message without its booking: held")
        return None
    tenant = ctx.tenant
    cancelled = message.kind.endswith(".cancelled")
    link = None if cancelled or message.kind.startswith("provider.") else message.link
    # The message does not say its language: the rewrite speaks the business's, as a plugin's
    # mail does.
    with force_locale(tenant.language):
        when = local_time(booking.start, tenant.timezone, tenant.language)
        headline = gettext("Appointment at %(business)s, %(when)s", business=tenant.name, when=when)
        paragraphs = [headline + "."]
        if message.kind in WHAT_HAPPENED:
            paragraphs.append(str(WHAT_HAPPENED[message.kind]))
        if link:
            paragraphs.append(gettext("View, move or cancel it:") + f"\n{link}")
        elif message.kind.startswith("provider."):
            paragraphs.append(gettext("Sign in to the staff pages for the details."))
        elif not cancelled:
            paragraphs.append(
                gettext("View, move or cancel it with the link in your confirmation e-mail.")
            )
        html = _html(headline, paragraphs[1:], link, tenant.name)
        ics = _invitation(message.ics, tenant.name) if message.ics else None
    text = "\n\n".join(paragraphs) + f"\n\n--\n{tenant.name}\n"
    return dataclasses.replace(
        message, subject=" ".join(headline.split()), text=text, html=html, ics=ics
    )


def local_time(moment: datetime, zone: str, language: str | None) -> str:
    """``Monday 1 March 2027, 10:00 (Europe/Paris)``, as core's own booking mail says it (in
    French ``lundi 1 mars 2027, 10:00 (Europe/Paris)``)."""
    written = format_datetime(
        moment, "EEEE d MMMM y, HH:mm", tzinfo=ZoneInfo(zone), locale=language or "en"
    )
    return f"{written} ({zone})"


def _html(headline: str, paragraphs: list[str], link: str | None, business: str) -> str:
    parts = [f"<p><strong>{escape(headline)}</strong></p>"]
    for paragraph in paragraphs:
        if link and paragraph.endswith(link):
            label = gettext("View, move or cancel it")
            parts.append(f'<p><a href="{escape(link)}">{escape(label)}</a></p>')
        else:
            parts.append(f"<p>{escape(paragraph)}</p>")
    parts.append(f"<p>{escape(business)}</p>")
    body = "\n".join(parts)
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(headline)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )


def _invitation(ics: str, business: str) -> str:
    """The invitation with only what says when and where: each event rebuilt from the
    properties it may keep (a whitelist, so that nothing core adds later slips through), the
    attendee without a display name, the summary the business's name."""
    calendar = icalendar.Calendar.from_ical(ics)
    kept = icalendar.Calendar()
    for name, value in calendar.property_items(recursive=False):
        if name not in ("BEGIN", "END"):
            kept.add(name, value, encode=False)
    for component in calendar.subcomponents:
        if component.name != "VEVENT":
            if component.name == "VTIMEZONE":
                kept.add_component(component)
            continue
        event = icalendar.Event()
        for name in ICS_KEPT:
            if name in component:
                event[name] = component[name]
        event.add("summary", gettext("Appointment at %(business)s", business=business))
        if "LOCATION" in component:  # the business's address, not the client's
            event["LOCATION"] = component["LOCATION"]
        attendees = component.get("ATTENDEE")
        for attendee in attendees if isinstance(attendees, list) else [attendees]:
            if attendee is not None:
                event.add("attendee", icalendar.vCalAddress(str(attendee)))
        kept.add_component(event)
    return kept.to_ical().decode()
