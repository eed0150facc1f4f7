"""Building messages: those a booking change sends (text, HTML and an ``.ics`` invitation),
client accounts' links, and plugins' own. Their templates are in ``core/web/templates/mail/``
(rendered with the app's Jinja environment, as the pages are).

Each message is written in one language (:func:`mail_language`): a client's booking mail in the
language of the request that made the booking when it is known, else the business's default; a
provider's notice always in the business's default. The templates' ``_()`` and the dates and
prices all follow it (``flask_babel.force_locale``)."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import icalendar
from flask import Flask
from flask_babel import force_locale, gettext

from bookwell.core.foundation import locales
from bookwell.core.foundation.money import format_money
from bookwell.core.foundation.text import folded
from bookwell.core.storage.models import Booking, Provider, Service, Tenant
from bookwell.hooks import OutgoingMessage

CONFIRMED, RESCHEDULED, CANCELLED = "confirmed", "rescheduled", "cancelled"
EVENTS = (CONFIRMED, RESCHEDULED, CANCELLED)


def N_(message: str) -> str:  # noqa: N802 - the name gettext's extractors know
    """Marks ``message`` for the catalogue; it is translated where it is used (``gettext``)."""
    return message


SUBJECTS = {
    CONFIRMED: N_("Booking confirmed: %(service)s on %(when)s"),
    RESCHEDULED: N_("Booking moved: %(service)s now on %(when)s"),
    CANCELLED: N_("Booking cancelled: %(service)s on %(when)s"),
}
PROVIDER_SUBJECTS = {
    CONFIRMED: N_("New booking: %(service)s with %(client)s on %(when)s"),
    RESCHEDULED: N_("Booking moved: %(service)s with %(client)s, now on %(when)s"),
    CANCELLED: N_("Booking cancelled: %(service)s with %(client)s on %(when)s"),
}


@dataclass(frozen=True)
class BookedAs:
    """A booking as it stood when a change was made: what its mail says, however the row has
    moved on by the time the mail is composed (after the commit, maybe by another process)."""

    reference: str
    client_name: str
    client_email: str
    client_phone: str | None
    client_notes: str | None
    starts_at: datetime
    ends_at: datetime
    price_cents: int
    discount_cents: int
    discount_label: str | None
    prepaid_cents: int
    refund_due_cents: int | None
    reschedule_count: int

    @classmethod
    def of(cls, booking: Booking, **as_then: Any) -> BookedAs:
        """``booking`` as read now, with ``as_then`` (start, end, refund...) as the change left
        them."""
        values = {
            "reference": booking.reference,
            "client_name": booking.client_name,
            "client_email": booking.client_email,
            "client_phone": booking.client_phone,
            "client_notes": booking.client_notes,
            "starts_at": booking.starts_at,
            "ends_at": booking.ends_at,
            "price_cents": booking.price_cents,
            "discount_cents": booking.discount_cents or 0,
            "discount_label": booking.discount_label,
            "prepaid_cents": booking.prepaid_cents or 0,
            "refund_due_cents": booking.refund_due_cents,
            "reschedule_count": booking.reschedule_count or 0,
        }
        values.update(as_then)
        return cls(**values)


@dataclass(frozen=True)
class BookingFacts:
    """What a message says about a booking: as the change left it (see :class:`BookedAs`)."""

    tenant: Tenant
    booking: BookedAs
    service: Service
    provider: Provider
    now: datetime
    manage_token: str | None = None
    previous_start: datetime | None = None
    previous_provider: Provider | None = None
    # The language the client booked in (the request's), when the change came from one.
    language: str | None = None


def mail_language(tenant: Tenant | None, chosen: str | None = None) -> str:
    """``chosen`` if Bookwell speaks it, else the business's default, else English."""
    return locales.supported(chosen) or locales.language_or_default(
        tenant.language if tenant is not None else None
    )


def local_time(moment: datetime, tenant: Tenant, language: str | None = None) -> str:
    """``Monday 1 March 2027, 10:00 (Europe/Paris)``, ``lundi 1 mars 2027, 10:00
    (Europe/Paris)``: the tenant's wall clock, zone named; ``language`` defaults to the one the
    message is being written in."""
    written_in = language or locales.current_language()
    return f"{locales.long_moment(moment, written_in, tenant.zone)} ({tenant.timezone})"


def signature(tenant: Tenant) -> dict[str, str | None]:
    """What every message signs with: the business's name and how to reach it."""
    return {
        "business": tenant.name,
        "address": tenant.address,
        "phone": tenant.phone,
        "contact_email": tenant.contact_email,
    }


def manage_url(app: Flask, facts: BookingFacts) -> str | None:
    if not facts.manage_token:
        return None
    base = str(app.config["BASE_URL"]).rstrip("/")
    return (
        f"{base}/book/{quote(facts.tenant.slug)}/manage/{quote(facts.booking.reference)}"
        f"?token={quote(facts.manage_token, safe='')}"
    )


def _render(app: Flask, name: str, **values: Any) -> str:
    return app.jinja_env.get_template(name).render(**values)


def _written_in(language: str) -> contextlib.AbstractContextManager[None]:
    """The block where ``gettext``, the templates and the formats speak ``language``."""
    return force_locale(language)


def _values(app: Flask, facts: BookingFacts, event: str) -> dict[str, Any]:
    tenant, booking = facts.tenant, facts.booking
    return {
        "event": event,
        **signature(tenant),
        "reference": booking.reference,
        "client_name": booking.client_name,
        "client_email": booking.client_email,
        "client_phone": booking.client_phone,
        "client_notes": booking.client_notes,
        "service": facts.service.name,
        "provider": facts.provider.name,
        "start": local_time(booking.starts_at, tenant),
        "end": local_time(booking.ends_at, tenant),
        "previous_start": (
            local_time(facts.previous_start, tenant) if facts.previous_start else None
        ),
        "manage_url": manage_url(app, facts),
        "price": format_money(booking.price_cents, tenant.currency),
        "discount": (
            format_money(booking.discount_cents, tenant.currency)
            if booking.discount_cents
            else None
        ),
        "discount_label": booking.discount_label,
        "total": format_money(booking.price_cents - booking.discount_cents, tenant.currency),
        # Set on a prepaid booking cancelled under a refund rule: what the client gets back.
        "refund_due": (
            format_money(booking.refund_due_cents, tenant.currency)
            if booking.refund_due_cents is not None
            else None
        ),
        "prepaid": (
            format_money(booking.prepaid_cents, tenant.currency) if booking.prepaid_cents else None
        ),
    }


def client_message(app: Flask, facts: BookingFacts, event: str) -> OutgoingMessage:
    with _written_in(mail_language(facts.tenant, facts.language)):
        values = _values(app, facts, event)
        subject = folded(gettext(SUBJECTS[event], service=facts.service.name, when=values["start"]))
        return OutgoingMessage(
            to=facts.booking.client_email,
            subject=subject,
            text=_render(app, "mail/client.txt", subject=subject, **values),
            html=_render(app, "mail/client.html", subject=subject, **values),
            ics=invitation(app, facts, event),
            kind=f"booking.{event}",
            link=values["manage_url"],
        )


def provider_messages(app: Flask, facts: BookingFacts, event: str) -> list[OutgoingMessage]:
    """A notice to the provider (and, when a reschedule moved it away, to the former one);
    none to a provider without an e-mail address. In the business's default language."""
    if not any(someone.email for someone in (facts.provider, facts.previous_provider) if someone):
        return []  # what the notices are written from costs a tenth of a booking's mail
    with _written_in(mail_language(facts.tenant)):
        return _provider_messages(app, facts, event)


def _provider_messages(app: Flask, facts: BookingFacts, event: str) -> list[OutgoingMessage]:
    values = _values(app, facts, event)
    recipients = [(facts.provider, event)]
    previous = facts.previous_provider
    if previous is not None and previous.id != facts.provider.id:
        recipients.append((previous, CANCELLED))
    messages = []
    for provider, what in recipients:
        if not provider.email:
            continue
        # Folded: a name stored before the input standard held must not stop the notice.
        subject = folded(
            gettext(
                PROVIDER_SUBJECTS[what],
                service=facts.service.name,
                client=facts.booking.client_name,
                when=values["start"],
            )
        )
        fields = {**values, "event": what, "recipient": provider.name, "subject": subject}
        messages.append(
            OutgoingMessage(
                to=provider.email,
                subject=subject,
                text=_render(app, "mail/provider.txt", **fields),
                html=_render(app, "mail/provider.html", **fields),
                ics=None,
                kind=f"provider.{what}",
            )
        )
    return messages


def invitation(app: Flask, facts: BookingFacts, event: str) -> str:
    """An iCalendar invitation: REQUEST for a new or moved booking, CANCEL for a cancelled
    one; times in the tenant's zone (with its VTIMEZONE), SEQUENCE counting the moves. Its
    description is in the language of the message it goes with (the caller's ``force_locale``)."""
    tenant, booking = facts.tenant, facts.booking
    zone = tenant.zone
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Bookwell//Bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if event == CANCELLED else "REQUEST")
    vevent = icalendar.Event()
    vevent.add("uid", f"{booking.reference}@bookwell")
    vevent.add("dtstamp", facts.now)
    vevent.add("dtstart", booking.starts_at.astimezone(zone))
    vevent.add("dtend", booking.ends_at.astimezone(zone))
    vevent.add("summary", f"{facts.service.name} – {tenant.name}")
    if tenant.address:
        vevent.add("location", tenant.address)
    moves = booking.reschedule_count
    # A cancellation must outrank the last invitation the client's calendar holds.
    vevent.add("sequence", moves + 1 if event == CANCELLED else moves)
    vevent.add("status", "CANCELLED" if event == CANCELLED else "CONFIRMED")
    organizer = tenant.contact_email or _address_of(str(app.config["MAIL_FROM"]))
    if organizer:
        vevent.add("organizer", f"mailto:{organizer}", parameters={"cn": tenant.name})
    vevent.add(
        "attendee",
        f"mailto:{booking.client_email}",
        parameters={"cn": booking.client_name, "role": "REQ-PARTICIPANT"},
    )
    url = manage_url(app, facts)
    if url and event != CANCELLED:
        vevent.add("url", url)
    vevent.add("description", _invitation_description(facts, event, url))
    calendar.add_component(vevent)
    # The zone's rules go before the event, as calendars expect them; the event's lines are
    # escaped, so none of them can read as the event's first line.
    event_begins = "BEGIN:VEVENT\r\n"
    month = booking.starts_at.astimezone(zone).date().replace(day=1)
    return (
        calendar.to_ical()
        .decode()
        .replace(event_begins, _vtimezone(tenant.timezone, month) + event_begins, 1)
    )


@functools.lru_cache(maxsize=256)
def _vtimezone(zone_name: str, month: date) -> str:
    """The VTIMEZONE of appointments in ``month``: only the rules from the day before the month
    to 400 days after it (the zone's full history would bloat every invitation), cached as text
    because building and folding it was most of an invitation's time."""
    rules = icalendar.Timezone.from_tzinfo(
        ZoneInfo(zone_name),
        first_date=month - timedelta(days=1),
        last_date=month + timedelta(days=431),
    )
    return rules.to_ical().decode()


def _invitation_description(facts: BookingFacts, event: str, url: str | None) -> str:
    values = {
        "service": facts.service.name,
        "provider": facts.provider.name,
        "business": facts.tenant.name,
        "reference": facts.booking.reference,
    }
    if event == CANCELLED:
        return gettext(
            "Cancelled: %(service)s with %(provider)s at %(business)s (reference %(reference)s).",
            **values,
        )
    described = gettext(
        "%(service)s with %(provider)s at %(business)s (reference %(reference)s).", **values
    )
    if url:
        described += "\n" + gettext("To view, move or cancel this booking: %(url)s", url=url)
    return described


def _address_of(header: str) -> str:
    from email.utils import parseaddr

    return parseaddr(header)[1]


ACCOUNT_VERIFY, ACCOUNT_RESET = "account.verify", "account.reset"
# To a sign-up for an address that already has an account: log in, or reset (the link).
ACCOUNT_EXISTS = "account.exists"
# To a staff member the owner added: the link where they choose their password.
ACCOUNT_INVITE = "account.invite"
# To every account whose password changed; its link is the "forgot password" page, not a secret.
PASSWORD_CHANGED = "account.password_changed"  # noqa: S105 - a mail's kind, not a password
ACCOUNT_SUBJECTS = {
    ACCOUNT_VERIFY: N_("Confirm your e-mail address for %(business)s"),
    ACCOUNT_RESET: N_("Reset your password for %(business)s"),
    ACCOUNT_EXISTS: N_("You already have an account with %(business)s"),
    ACCOUNT_INVITE: N_("You are invited to %(business)s"),
    PASSWORD_CHANGED: N_("Your password for %(business)s was changed"),
}
# Who signs platform support's account mail: no business does.
PLATFORM_NAME = N_("Bookwell support")


def account_signature(tenant: Tenant | None) -> dict[str, str | None]:
    if tenant is None:
        return {
            "business": gettext(PLATFORM_NAME),
            "address": None,
            "phone": None,
            "contact_email": None,
        }
    return signature(tenant)


def account_message(
    app: Flask,
    tenant: Tenant | None,
    kind: str,
    *,
    to: str,
    name: str,
    url: str,
    **extra: Any,
) -> OutgoingMessage:
    """An account e-mail (``account.verify``, ``account.reset``, ``account.exists``, whose
    link is a reset link, ``account.invite``, or ``account.password_changed``) carrying its
    link, ``url`` (absolute). Platform support's (``tenant`` ``None``) are signed by the
    platform. ``extra`` reaches the templates (an invitation's ``role``, a change's ``when``, a
    moment written in the mail's language). In the language of the request that asked for it,
    else the business's default."""
    with _written_in(mail_language(tenant, locales.reader_language())):
        values = account_signature(tenant)
        subject = folded(gettext(ACCOUNT_SUBJECTS[kind], business=values["business"]))
        for key, value in extra.items():
            if isinstance(value, datetime):
                extra[key] = (
                    local_time(value, tenant)
                    if tenant is not None
                    else f"{locales.long_moment(value, locales.current_language(), UTC)} (UTC)"
                )
        values = {
            "subject": subject,
            "kind": kind,
            "recipient": name,
            "url": url,
            **values,
            **extra,
        }
        return OutgoingMessage(
            to=to,
            subject=subject,
            text=_render(app, "mail/account.txt", **values),
            html=_render(app, "mail/account.html", **values),
            ics=None,
            kind=kind,
            link=url,
        )


def plugin_message(
    app: Flask, tenant: Tenant, *, to: str, subject: str, text: str, kind: str
) -> OutgoingMessage:
    """A plugin's plain-text e-mail (``TenantData.send_mail``) in the tenant's dress: the
    business's signature under the text, and an HTML part in the shared layout (in the
    business's default language, which the plugin's text is expected to be in)."""
    with _written_in(mail_language(tenant)):
        return _plugin_message(app, tenant, to=to, subject=subject, text=text, kind=kind)


def _plugin_message(
    app: Flask, tenant: Tenant, *, to: str, subject: str, text: str, kind: str
) -> OutgoingMessage:
    values = {
        "subject": subject,
        "text": text,
        # Blank lines split paragraphs; the HTML keeps the plugin's line breaks within them.
        "paragraphs": [part.splitlines() for part in text.strip().split("\n\n") if part.strip()],
        **signature(tenant),
    }
    return OutgoingMessage(
        to=to,
        subject=subject,
        text=_render(app, "mail/plugin.txt", **values),
        html=_render(app, "mail/plugin.html", **values),
        ics=None,
        kind=kind,
    )
