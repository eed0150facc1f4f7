"""The audit trail's staff page, ``/admin/<tenant>/audit``: browse and filter the business's trail
(``audit.read``), newest entry first, with the e-mail address each pseudonym stands for where it
was not erased; export it as CSV or JSON (``audit.read`` and ``data.export``), an export that is
itself audited. Only this tenant's chain is ever read."""

from __future__ import annotations

from flask import Response, abort, current_app, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectChoice, SelectField, StringField
from wtforms.validators import AnyOf, Length, Optional, ValidationError

from bookwell.core import audit
from bookwell.core.access.permissions import allowed
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant
from bookwell.core.web.forms import SingleLine
from bookwell.core.web.pages.admin import admin_pages, page, require_page

PER_PAGE = 50
MAX_PAGES = 100_000
BOUND_HELP = lazy_gettext("A date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM).")


# What an entry's action code means, as the page says it; the code itself is stored, filtered on
# and exported as it is (English, for machines). A code core does not know (a plugin's) is
# shown alone.
ACTION_LABELS = {
    "api_key.created": lazy_gettext("API key created"),
    "api_key.revoked": lazy_gettext("API key revoked"),
    "audit.exported": lazy_gettext("Audit trail exported"),
    "audit.format_changed": lazy_gettext("Audit trail format changed"),
    "audit.person_erased": lazy_gettext("Person erased from the trail"),
    "booking.cancelled": lazy_gettext("Booking cancelled"),
    "booking.completed": lazy_gettext("Booking marked completed"),
    "booking.created": lazy_gettext("Booking made"),
    "booking.no_show": lazy_gettext("Booking marked no-show"),
    "booking.refused": lazy_gettext("Booking refused"),
    "booking.rescheduled": lazy_gettext("Booking moved"),
    "booking.viewed": lazy_gettext("Booking viewed"),
    "bookings.archived_and_deleted": lazy_gettext("Old bookings archived and deleted"),
    "business.brand_updated": lazy_gettext("Brand changed"),
    "business.logo_removed": lazy_gettext("Logo removed"),
    "business.logo_updated": lazy_gettext("Logo changed"),
    "business.updated": lazy_gettext("Business details changed"),
    "keys.rotated": lazy_gettext("Keys rotated"),
    "login.failed": lazy_gettext("Failed login"),
    "login.succeeded": lazy_gettext("Logged in"),
    "plugin.disabled": lazy_gettext("Plugin switched off"),
    "plugin.enabled": lazy_gettext("Plugin switched on"),
    "plugin.settings_changed": lazy_gettext("Plugin settings changed"),
    "provider.created": lazy_gettext("Provider added"),
    "provider.hours_set": lazy_gettext("Working hours set"),
    "provider.time_off_added": lazy_gettext("Time off added"),
    "provider.time_off_removed": lazy_gettext("Time off removed"),
    "provider.updated": lazy_gettext("Provider changed"),
    "service.created": lazy_gettext("Service added"),
    "service.updated": lazy_gettext("Service changed"),
    "session.reassessed": lazy_gettext("Session checked again"),
    "session.revoked": lazy_gettext("Session ended"),
    "staff.role_changed": lazy_gettext("Role changed"),
    "support.access": lazy_gettext("Platform support's access"),
    "support.access_refused": lazy_gettext("Platform support's access refused"),
    "user.changed": lazy_gettext("Account changed"),
    "user.created": lazy_gettext("Account created"),
    "user.email_verified": lazy_gettext("E-mail address confirmed"),
    "user.invitation_accepted": lazy_gettext("Invitation accepted"),
    "user.invited": lazy_gettext("Staff member invited"),
    "user.password_changed": lazy_gettext("Password changed"),
}


@admin_pages.app_template_filter("audit_action")
def audit_action(code: str) -> str:
    """``booking.cancelled`` -> ``Booking cancelled``; ``""`` for a code core has no words for."""
    label = ACTION_LABELS.get(code)
    return str(label) if label is not None else ""


def _bound_validator(end: bool):
    def check(form: FlaskForm, field) -> None:
        if field.data:
            try:
                audit.parse_bound(field.data, form.zone, end=end)
            except ValueError as error:
                raise ValidationError(str(BOUND_HELP)) from error

    return check


class _Filters(FlaskForm):
    """What the page and the export select: the same fields, read from the query or the form."""

    zone = None  # the tenant's, set before validating

    since = StringField(
        lazy_gettext("From"),
        name="from",
        validators=[SingleLine(), Optional(), Length(max=40), _bound_validator(False)],
    )
    until = StringField(
        lazy_gettext("To"),
        name="to",
        validators=[SingleLine(), Optional(), Length(max=40), _bound_validator(True)],
    )
    action = StringField(
        lazy_gettext("Action"), validators=[SingleLine(), Optional(), Length(max=100)]
    )
    actor = StringField(
        lazy_gettext("Actor (e-mail address or label)"),
        validators=[SingleLine(), Optional(), Length(max=320)],
    )

    def selection(self) -> audit.Filter:
        return audit.Filter(
            since=audit.parse_bound(self.since.data, self.zone, end=False)
            if self.since.data
            else None,
            until=audit.parse_bound(self.until.data, self.zone, end=True)
            if self.until.data
            else None,
            action=(self.action.data or "").strip() or None,
            actor=(self.actor.data or "").strip() or None,
        )


class FilterForm(_Filters):
    class Meta:
        csrf = False  # a GET that only reads


class ExportForm(_Filters):
    since = HiddenField(
        name="from", validators=[SingleLine(), Optional(), Length(max=40), _bound_validator(False)]
    )
    until = HiddenField(
        name="to", validators=[SingleLine(), Optional(), Length(max=40), _bound_validator(True)]
    )
    action = HiddenField(validators=[SingleLine(), Optional(), Length(max=100)])
    actor = HiddenField(validators=[SingleLine(), Optional(), Length(max=320)])
    export_format = SelectField(
        lazy_gettext("Format"),
        choices=[SelectChoice("csv", "CSV"), SelectChoice("json", "JSON")],
        validators=[AnyOf(audit.EXPORT_FORMATS)],
    )


def _page_number() -> int | None:
    raw = request.args.get("page", "1")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGES):
        return None
    return int(raw)


def _order_problem(form: _Filters) -> str | None:
    if form.since.data and form.until.data:
        wanted = form.selection()
        if wanted.until <= wanted.since:
            return gettext("'To' must be on or after 'From'.")
    return None


@admin_pages.get("/audit")
def audit_trail(slug: str):
    tenant, user = require_page(slug, "audit.read", "audit")
    form = FilterForm(formdata=request.args)
    form.zone = tenant.zone
    number = _page_number()
    errors = []
    if not form.validate():
        errors = [message for messages in form.errors.values() for message in messages]
    elif (problem := _order_problem(form)) is not None:
        errors = [problem]
    if number is None:
        errors.append(gettext("The page must be a number from 1 to %(last)d.", last=MAX_PAGES))
    if errors:
        return page(
            "admin/audit.html", tenant, user, 400, form=form, errors=errors, entries=[], pages=0
        )
    wanted = form.selection()
    reader = db.session()
    total = audit.count(reader, tenant.id, wanted)
    shown = audit.listing(
        reader,
        tenant.id,
        wanted,
        newest_first=True,
        limit=PER_PAGE,
        offset=(number - 1) * PER_PAGE,
    )
    export = ExportForm(
        formdata=None,
        since=form.since.data,
        until=form.until.data,
        action=form.action.data,
        actor=form.actor.data,
    )
    query = {key: value for key, value in request.args.items() if key != "page" and value}
    return page(
        "admin/audit.html",
        tenant,
        user,
        form=form,
        export=export if allowed(user.role, "data.export") else None,
        entries=shown,
        total=total,
        number=number,
        pages=max(1, -(-total // PER_PAGE)),
        page_url=lambda n: url_for("admin.audit_trail", slug=tenant.slug, page=n, **query),
    )


@admin_pages.post("/audit/export")
def export_audit_trail(slug: str):
    tenant, user = require_page(slug, "audit.read", "audit")
    if not allowed(user.role, "data.export"):
        abort(403)
    form = ExportForm()
    form.zone = tenant.zone
    if not form.validate_on_submit() or _order_problem(form) is not None:
        abort(400)
    return download(tenant, form.selection(), form.export_format.data, user.audit_label)


def download(tenant: Tenant, wanted: audit.Filter, export_format: str, actor: str) -> Response:
    """The export as a file to save; audited before it is handed out."""
    body, _ = audit.export(
        current_app._get_current_object(),
        tenant.id,
        wanted,
        export_format,
        actor=actor,
        ip=request.remote_addr,
        now=clock.now(),
    )
    day = clock.now().astimezone(tenant.zone).date().isoformat()
    mimetype = "application/json" if export_format == "json" else "text/csv"
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="audit-{tenant.slug}-{day}.'
            f'{export_format}"',
            "Cache-Control": "no-store",  # people's addresses and IPs
        },
    )
