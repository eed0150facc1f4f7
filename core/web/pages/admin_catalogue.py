"""Staff pages for the catalogue: services, providers, their hours and time off (staff accounts
and the business's details are in ``admin_staff``). Routes hang on :data:`admin.admin_pages`;
each page's permission is checked by :func:`admin.require_page`."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    EmailField,
    IntegerField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional

from bookwell.core.access import users
from bookwell.core.booking import catalogue
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import Provider, Service, TimeOff
from bookwell.core.web.forms import MultiLine, SingleLine, WholeNumber
from bookwell.core.web.pages.admin import admin_pages, page, require_page, weekday_names

SPANS_SHOWN = 2


def _app():
    return current_app._get_current_object()


def apply_refusal(form: FlaskForm, error: catalogue.CatalogueError | users.UserError) -> list[str]:
    """Put a core refusal's field messages on the form's fields; the rest is page-level."""
    loose = []
    for name, messages in error.fields.items():
        field = getattr(form, name, None)
        if field is None:
            loose.extend(messages)
        else:
            field.errors = list(field.errors) + list(messages)
    return [error.message, *loose]


def line_breaks(value):
    """A form filter for multi-line text: a browser sends CR LF, the API and the CLI send LF;
    stored as LF, so that saving a form unchanged changes nothing."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


# --- services ------------------------------------------------------------------------------------


class ServiceForm(FlaskForm):
    name = StringField(
        lazy_gettext("Name"), validators=[SingleLine(), DataRequired(), Length(max=200)]
    )
    description = TextAreaField(
        lazy_gettext("Description"),
        validators=[MultiLine(), Optional(), Length(max=5000)],
        filters=[line_breaks],
    )
    duration_minutes = IntegerField(
        lazy_gettext("Duration (minutes)"),
        validators=[WholeNumber(), InputRequired(), NumberRange(1, 1440)],
    )
    buffer_before_minutes = IntegerField(
        lazy_gettext("Buffer before (minutes)"),
        default=0,
        validators=[WholeNumber(), InputRequired(), NumberRange(0, 1440)],
    )
    buffer_after_minutes = IntegerField(
        lazy_gettext("Buffer after (minutes)"),
        default=0,
        validators=[WholeNumber(), InputRequired(), NumberRange(0, 1440)],
    )
    price = DecimalField(
        lazy_gettext("Price"),
        places=2,
        default=Decimal(0),
        validators=[InputRequired(), NumberRange(0, 1000000)],
    )
    min_notice_minutes = IntegerField(
        lazy_gettext("Minimum notice (minutes)"),
        default=0,
        validators=[WholeNumber(), InputRequired(), NumberRange(0, 527040)],
    )
    horizon_days = IntegerField(
        lazy_gettext("Bookable up to (days ahead)"),
        default=90,
        validators=[WholeNumber(), InputRequired(), NumberRange(1, 730)],
    )
    slot_step_minutes = IntegerField(
        lazy_gettext("Start times every (minutes)"),
        default=15,
        validators=[WholeNumber(), InputRequired(), NumberRange(1, 1440)],
    )
    active = BooleanField(lazy_gettext("Offered"), default=True)


def _service_fields(form: ServiceForm) -> catalogue.ServiceFields:
    return catalogue.ServiceFields(
        name=form.name.data,
        description=form.description.data or "",
        duration_minutes=form.duration_minutes.data,
        buffer_before_minutes=form.buffer_before_minutes.data,
        buffer_after_minutes=form.buffer_after_minutes.data,
        price_cents=int(form.price.data * 100),
        min_notice_minutes=form.min_notice_minutes.data,
        horizon_days=form.horizon_days.data,
        slot_step_minutes=form.slot_step_minutes.data,
        active=form.active.data,
    )


@admin_pages.get("/services")
def services(slug: str):
    tenant, user = require_page(slug, "catalogue.manage", "catalogue")
    rows = db.session().scalars(
        select(Service).where(Service.tenant_id == tenant.id).order_by(Service.name, Service.id)
    )
    return page("admin/services.html", tenant, user, services=list(rows))


def _service_or_404(tenant, service_id):
    service = db.session().scalar(
        select(Service).where(Service.id == service_id, Service.tenant_id == tenant.id)
    )
    if service is None:
        abort(404)
    return service


@admin_pages.route("/services/new", methods=["GET", "POST"])
@admin_pages.route("/services/<int:service_id>", methods=["GET", "POST"])
def edit_service(slug: str, service_id: int | None = None):
    tenant, user = require_page(slug, "catalogue.manage", "catalogue")
    service = _service_or_404(tenant, service_id) if service_id is not None else None
    if request.method == "GET" and service is not None:
        form = ServiceForm(obj=service, price=Decimal(service.price_cents) / 100)
    else:
        form = ServiceForm()
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            saved = catalogue.save_service(
                _app(),
                tenant_id=tenant.id,
                service_id=service_id,
                fields=_service_fields(form),
                actor=user,
                now=clock.now(),
            )
        except catalogue.CatalogueError as error:
            errors = apply_refusal(form, error)
        else:
            flash(gettext("Saved %(name)s.", name=saved.name))
            return redirect(url_for(".services", slug=slug))
    status = 422 if form.is_submitted() else 200
    return page(
        "admin/service.html", tenant, user, status, form=form, service=service, errors=errors
    )


# --- providers -----------------------------------------------------------------------------------


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class ProviderForm(FlaskForm):
    name = StringField(
        lazy_gettext("Name"), validators=[SingleLine(), DataRequired(), Length(max=200)]
    )
    email = EmailField(
        lazy_gettext("E-mail"), validators=[SingleLine(), Optional(), Email(), Length(max=254)]
    )
    services = CheckboxesField(lazy_gettext("Services"), coerce=int)
    active = BooleanField(lazy_gettext("Takes bookings"), default=True)


class TimeOffForm(FlaskForm):
    starts_at = DateTimeLocalField(
        lazy_gettext("From"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()]
    )
    ends_at = DateTimeLocalField(
        lazy_gettext("Until"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()]
    )
    reason = StringField(
        lazy_gettext("Reason"), validators=[SingleLine(), Optional(), Length(max=200)]
    )


def _provider_or_404(tenant, provider_id):
    provider = db.session().scalar(
        select(Provider).where(Provider.id == provider_id, Provider.tenant_id == tenant.id)
    )
    if provider is None:
        abort(404)
    return provider


def _service_choices(tenant) -> list[tuple[int, str]]:
    return [
        (service.id, service.name)
        for service in db.session().scalars(
            select(Service).where(Service.tenant_id == tenant.id).order_by(Service.name)
        )
    ]


def _provider_form(tenant, provider) -> ProviderForm:
    """The form filled from the saved provider, its services ticked. Not through ``obj=`` alone:
    WTForms then takes ``provider.services`` (rows, not ids), ticks nothing, and a Save with no
    change would take every service away."""
    form = ProviderForm(formdata=None, obj=provider)
    form.services.data = [service.id for service in provider.services]
    form.services.choices = _service_choices(tenant)
    return form


@admin_pages.get("/providers")
def providers(slug: str):
    tenant, user = require_page(slug, "catalogue.manage", "catalogue")
    rows = db.session().scalars(
        select(Provider).where(Provider.tenant_id == tenant.id).order_by(Provider.name, Provider.id)
    )
    return page("admin/providers.html", tenant, user, providers=list(rows))


@admin_pages.route("/providers/new", methods=["GET", "POST"])
@admin_pages.route("/providers/<int:provider_id>", methods=["GET", "POST"])
def edit_provider(slug: str, provider_id: int | None = None):
    tenant, user = require_page(slug, "catalogue.manage", "catalogue")
    provider = _provider_or_404(tenant, provider_id) if provider_id is not None else None
    if request.method == "GET" and provider is not None:
        form = _provider_form(tenant, provider)
    else:
        form = ProviderForm()
        form.services.choices = _service_choices(tenant)
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            saved = catalogue.save_provider(
                _app(),
                tenant_id=tenant.id,
                provider_id=provider_id,
                name=form.name.data,
                email=form.email.data,
                service_ids=form.services.data or [],
                active=form.active.data,
                actor=user,
                now=clock.now(),
            )
        except catalogue.CatalogueError as error:
            errors = apply_refusal(form, error)
        else:
            flash(gettext("Saved %(name)s.", name=saved.name))
            return redirect(url_for(".edit_provider", slug=slug, provider_id=saved.id))
    status = 422 if form.is_submitted() else 200
    return _provider_page(tenant, user, provider, form=form, status=status, errors=errors)


def _hours_rows(provider, submitted=None, problems=None):
    """One row per weekday, with SPANS_SHOWN pairs of inputs, filled from ``submitted`` or the
    provider's hours."""
    rows = []
    for weekday, label in enumerate(weekday_names()):
        if submitted is not None:
            spans = submitted[weekday]
        else:
            spans = [
                (hours.starts.strftime("%H:%M"), hours.ends.strftime("%H:%M"))
                for hours in (provider.working_hours if provider else [])
                if hours.weekday == weekday
            ]
        spans = [span for span in spans if any(span)]
        spans += [("", "")] * (SPANS_SHOWN - len(spans))
        rows.append(
            {
                "weekday": weekday,
                "label": label,
                "spans": spans,
                "errors": (problems or {}).get(f"day{weekday}", []),
            }
        )
    return rows


def _provider_page(
    tenant, user, provider, *, form=None, hours=None, off=None, status=200, errors=()
):
    if form is None:
        form = _provider_form(tenant, provider)
    time_off = []
    if provider is not None:
        time_off = list(
            db.session().scalars(
                select(TimeOff)
                .where(TimeOff.provider_id == provider.id, TimeOff.ends_at > clock.now())
                .order_by(TimeOff.starts_at)
            )
        )
    return page(
        "admin/provider.html",
        tenant,
        user,
        status,
        provider=provider,
        form=form,
        hours=hours or _hours_rows(provider),
        hours_form=FlaskForm(formdata=None),
        off_form=off or TimeOffForm(formdata=None),
        time_off=time_off,
        errors=list(errors),
    )


@admin_pages.post("/providers/<int:provider_id>/hours")
def provider_hours(slug: str, provider_id: int):
    tenant, user = require_page(slug, "catalogue.manage", "catalogue")
    provider = _provider_or_404(tenant, provider_id)
    form = FlaskForm()
    submitted = {
        weekday: [
            (
                request.form.get(f"d{weekday}s{index}", "").strip()[:5],
                request.form.get(f"d{weekday}e{index}", "").strip()[:5],
            )
            for index in range(catalogue.MAX_SPANS_A_DAY)
        ]
        for weekday in range(7)
    }
    problems: dict[str, list[str]] = {}
    hours: dict[int, list[tuple[time, time]]] = {}
    for weekday, spans in submitted.items():
        for starts, ends in spans:
            if not starts and not ends:
                continue
            try:
                hours.setdefault(weekday, []).append(
                    (time.fromisoformat(starts), time.fromisoformat(ends))
                )
            except ValueError:
                problems.setdefault(f"day{weekday}", []).append(
                    gettext("Use times like 09:00 and 17:30.")
                )
    errors: list[str] = []
    if not form.validate_on_submit():
        errors = [gettext("The form expired; please try again.")]
    elif not problems:
        try:
            catalogue.set_working_hours(
                _app(),
                tenant_id=tenant.id,
                provider_id=provider.id,
                hours=hours,
                actor=user,
                now=clock.now(),
            )
        except catalogue.CatalogueError as error:
            problems = error.fields
        else:
            flash(gettext("Working hours saved."))
            return redirect(url_for(".edit_provider", slug=slug, provider_id=provider.id))
    return _provider_page(
        tenant,
        user,
        provider,
        hours=_hours_rows(provider, submitted, problems),
        status=422,
        errors=errors,
    )


@admin_pages.post("/providers/<int:provider_id>/time-off")
def add_time_off(slug: str, provider_id: int):
    tenant, user = require_page(slug, "catalogue.manage", "catalogue")
    provider = _provider_or_404(tenant, provider_id)
    form = TimeOffForm()
    errors: list[str] = []
    if form.validate_on_submit():
        zone = tenant.zone
        try:
            catalogue.add_time_off(
                _app(),
                tenant_id=tenant.id,
                provider_id=provider.id,
                starts_at=form.starts_at.data.replace(tzinfo=zone),
                ends_at=form.ends_at.data.replace(tzinfo=zone),
                reason=form.reason.data or "",
                actor=user,
                now=clock.now(),
            )
        except catalogue.CatalogueError as error:
            errors = apply_refusal(form, error)
        else:
            flash(gettext("Time off added."))
            return redirect(url_for(".edit_provider", slug=slug, provider_id=provider.id))
    return _provider_page(tenant, user, provider, off=form, status=422, errors=errors)


@admin_pages.post("/providers/<int:provider_id>/time-off/<int:time_off_id>/remove")
def remove_time_off(slug: str, provider_id: int, time_off_id: int):
    tenant, user = require_page(slug, "catalogue.manage", "catalogue")
    provider = _provider_or_404(tenant, provider_id)
    if not FlaskForm().validate_on_submit():
        return _provider_page(
            tenant,
            user,
            provider,
            status=422,
            errors=[gettext("The form expired; please try again.")],
        )
    try:
        catalogue.remove_time_off(
            _app(),
            tenant_id=tenant.id,
            provider_id=provider.id,
            time_off_id=time_off_id,
            actor=user,
            now=clock.now(),
        )
    except catalogue.CatalogueError:
        abort(404)
    flash(gettext("Time off removed."))
    return redirect(url_for(".edit_provider", slug=slug, provider_id=provider.id))
