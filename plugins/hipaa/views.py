"""The plugin's staff pages:

* ``/admin/<slug>/hipaa/support-access`` (the owner): grant platform support read access for
  1 to 72 hours with a reason, see the live and past grants, revoke one; and every emergency
  access taken, with its client and reason.
* ``/admin/<slug>/hipaa/emergency`` (any staff role): take emergency access to one client's
  record for one hour, with a reason."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import Blueprint, abort, redirect, url_for
from flask_babel import get_locale, gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    StopValidation,
    ValidationError,
)

from bookwell.hooks.pages import plugin_context, render_staff_page, require_staff

from . import access

pages = Blueprint("hipaa", __name__, template_folder="templates")

# Control characters (NUL, escape, ...) never belong in typed text; a reason may span lines.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
LINE_BREAK = re.compile(r"[\r\n]")
REASON_LENGTH = (10, 1000)


def _plain_text(multiline: bool):
    def check(form, field) -> None:
        value = field.data or ""
        if CONTROL.search(value) or (not multiline and LINE_BREAK.search(value)):
            raise ValidationError(gettext("Use plain text, without control characters."))

    return check


def _trimmed(value: str | None) -> str | None:
    # Spaces around a pasted address are no mistake worth refusing; inside it they are.
    return value.strip(" \t") if isinstance(value, str) else value


def _a_few_digits(form, field) -> None:
    """Refuse a number of hundreds of digits before NumberRange, which fails on it (a float)."""
    if len((field.raw_data or [""])[0].strip()) > 6:
        raise StopValidation(gettext("Between 1 and 72 hours."))


class SupportAccessForm(FlaskForm):
    hours = IntegerField(
        lazy_gettext("For how many hours"),
        validators=[
            _a_few_digits,
            InputRequired(lazy_gettext("Say for how many hours (1 to 72).")),
            NumberRange(*access.SUPPORT_HOURS, message=lazy_gettext("Between 1 and 72 hours.")),
        ],
    )
    reason = TextAreaField(
        lazy_gettext("Why"),
        validators=[
            _plain_text(multiline=True),
            DataRequired(lazy_gettext("Give a reason: it is kept with the grant.")),
            Length(*REASON_LENGTH, message=lazy_gettext("A reason of 10 to 1000 characters.")),
        ],
    )


class EmergencyForm(FlaskForm):
    email = StringField(
        lazy_gettext("The client's e-mail address"),
        filters=[_trimmed],
        validators=[
            _plain_text(multiline=False),
            DataRequired(lazy_gettext("Give the client's e-mail address.")),
            Length(max=254, message=lazy_gettext("At most 254 characters.")),
            Email(lazy_gettext("That is not an e-mail address.")),
        ],
    )
    reason = TextAreaField(
        lazy_gettext("Why you need it now"),
        validators=[
            _plain_text(multiline=True),
            DataRequired(lazy_gettext("Give a reason: the owners are told, and it is kept.")),
            Length(*REASON_LENGTH, message=lazy_gettext("A reason of 10 to 1000 characters.")),
        ],
    )


@pages.get("/admin/<slug>/hipaa/support-access")
def support_access(slug: str):
    page = require_staff(slug, "plugins.manage")
    return _support_page(page, slug, SupportAccessForm(formdata=None))


@pages.post("/admin/<slug>/hipaa/support-access")
def grant_support_access(slug: str):
    page = require_staff(slug, "plugins.manage")
    form = SupportAccessForm()
    if not form.validate_on_submit():
        return _support_page(page, slug, form, status=422)
    ctx = plugin_context(slug)
    access.grant_support(
        ctx, hours=form.hours.data, reason=form.reason.data.strip(), owner_id=page.user.id
    )
    return redirect(url_for(".support_access", slug=slug, done="granted"), 303)


@pages.post("/admin/<slug>/hipaa/support-access/<int:grant_id>/revoke")
def revoke_support_access(slug: str, grant_id: int):
    page = require_staff(slug, "plugins.manage")
    if not FlaskForm().validate_on_submit():
        abort(400)
    if not access.revoke_support(plugin_context(slug), grant_id, page.user.id):
        abort(404)
    return redirect(url_for(".support_access", slug=slug, done="revoked"), 303)


@pages.get("/admin/<slug>/hipaa/emergency")
def emergency(slug: str):
    page = require_staff(slug, "bookings.read_own")
    return _emergency_page(page, slug, EmergencyForm(formdata=None))


@pages.post("/admin/<slug>/hipaa/emergency")
def take_emergency_access(slug: str):
    page = require_staff(slug, "bookings.read_own")
    form = EmergencyForm()
    if not form.validate_on_submit():
        return _emergency_page(page, slug, form, status=422)
    ctx = plugin_context(slug)
    email = form.email.data.strip()
    bookings = ctx.data.client_bookings(email)
    if not bookings:
        form.email.errors = [gettext("This business has no bookings for that address: check it.")]
        return _emergency_page(page, slug, form, status=422)
    grant = access.break_glass(ctx, email=email, reason=form.reason.data.strip())
    zone = page.tenant.timezone
    return _emergency_page(
        page,
        slug,
        EmergencyForm(formdata=None),
        taken={
            "until": _local(grant.expires_at, zone),
            "bookings": [
                {
                    "reference": booking.reference,
                    "when": _local(booking.start, zone),
                    "path": f"/admin/{slug}/bookings/{booking.reference}",
                }
                for booking in bookings
            ],
        },
    )


def _support_page(page, slug: str, form, status: int = 200):
    ctx = plugin_context(slug)
    live, ended = access.support_grants(ctx)
    zone = page.tenant.timezone
    # Former staff (deactivated) are no longer listed: their grants show the account's number.
    people = {user.id: f"{user.name} ({user.email})" for user in ctx.data.staff()}
    return render_staff_page(
        page,
        "hipaa/support_access.html",
        status=status,
        slug=slug,
        form=form,
        revoke_form=FlaskForm(formdata=None),
        live=[_row(grant, zone) for grant in live],
        ended=[_row(grant, zone) for grant in ended],
        emergencies=[
            {
                **_row(grant, zone),
                "who": people.get(
                    grant.user_id, gettext("account #%(number)s", number=grant.user_id)
                ),
            }
            for grant in access.emergency_grants(ctx)
        ],
        now=ctx.now,
    )


def _emergency_page(page, slug: str, form, status: int = 200, taken=None):
    return render_staff_page(
        page, "hipaa/emergency.html", status=status, slug=slug, form=form, taken=taken
    )


def _row(grant, zone: str) -> dict:
    return {
        "id": grant.id,
        "reason": grant.reason,
        "subject": (grant.subject or "").removeprefix("client:"),
        "user_id": grant.user_id,
        "granted_by": grant.granted_by,
        "from": _local(grant.created_at, zone),
        "until": _local(grant.expires_at, zone),
        "revoked": _local(grant.revoked_at, zone) if grant.revoked_at else None,
        "revoked_by": grant.revoked_by,
    }


def _local(moment, zone: str) -> str:
    """``30 November 2026, 14:05`` (``30 novembre 2026, 14:05``), in the page's language."""
    return format_datetime(moment, "d MMMM y, HH:mm", tzinfo=ZoneInfo(zone), locale=get_locale())
