"""Staff pages for staff accounts (owners and managers) and the business's details (owners)."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from bookwell.core.access import users
from bookwell.core.booking import catalogue
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import STAFF_ROLES, User
from bookwell.core.web.forms import MultiLine, SingleLine
from bookwell.core.web.pages.admin import admin_pages, page, require_page
from bookwell.core.web.pages.admin_catalogue import apply_refusal


def _role_choices(user: User) -> list[tuple[str, str]]:
    return [
        (str(role), str(role).capitalize())
        for role in STAFF_ROLES
        if catalogue.may_grant(user.role, str(role))
    ]


class NewStaffForm(FlaskForm):
    name = StringField("Name", validators=[SingleLine(), Optional(), Length(max=200)])
    email = EmailField(
        "E-mail", validators=[SingleLine(), DataRequired(), Email(), Length(max=254)]
    )
    role = SelectField("Role")
    password = PasswordField("Initial password", validators=[DataRequired(), Length(max=4096)])


class StaffForm(FlaskForm):
    role = SelectField("Role")
    active = BooleanField("Can log in")


@admin_pages.get("/staff")
def staff(slug: str):
    tenant, user = require_page(slug, "staff.manage", "staff")
    rows = db.session().scalars(
        select(User)
        .where(User.tenant_id == tenant.id, User.role.in_([str(role) for role in STAFF_ROLES]))
        .order_by(User.email)
    )
    return page("admin/staff.html", tenant, user, accounts=list(rows))


@admin_pages.route("/staff/new", methods=["GET", "POST"])
def new_staff(slug: str):
    tenant, user = require_page(slug, "staff.manage", "staff")
    form = NewStaffForm()
    form.role.choices = _role_choices(user)
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            created = users.create_user(
                current_app._get_current_object(),
                tenant_id=tenant.id,
                email=form.email.data,
                name=(form.name.data or "").strip(),
                role=form.role.data,
                password=form.password.data,
                now=clock.now(),
                actor=user.audit_label,
            )
        except users.UserError as error:
            errors = apply_refusal(form, error)
        else:
            flash(f"Created {created.email}.")
            return redirect(url_for(".staff", slug=slug))
    status = 422 if form.is_submitted() else 200
    return page("admin/new_staff.html", tenant, user, status, form=form, errors=errors)


@admin_pages.route("/staff/<int:user_id>", methods=["GET", "POST"])
def edit_staff(slug: str, user_id: int):
    tenant, user = require_page(slug, "staff.manage", "staff")
    account = db.session().scalar(
        select(User).where(
            User.id == user_id,
            User.tenant_id == tenant.id,
            User.role.in_([str(role) for role in STAFF_ROLES]),
        )
    )
    if account is None:
        abort(404)
    form = StaffForm(obj=account)
    form.role.choices = _role_choices(user)
    if account.role not in dict(form.role.choices):
        form.role.choices = [(account.role, account.role.capitalize()), *form.role.choices]
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            catalogue.change_staff(
                current_app._get_current_object(),
                tenant_id=tenant.id,
                user_id=account.id,
                actor=user,
                now=clock.now(),
                role=form.role.data if form.role.data != account.role else None,
                active=form.active.data if form.active.data != account.active else None,
            )
        except catalogue.CatalogueError as error:
            errors = apply_refusal(form, error)
        else:
            flash(f"Saved {account.email}.")
            return redirect(url_for(".staff", slug=slug))
    status = 422 if form.is_submitted() else 200
    return page(
        "admin/edit_staff.html", tenant, user, status, form=form, account=account, errors=errors
    )


class BusinessForm(FlaskForm):
    name = StringField("Name", validators=[SingleLine(), DataRequired(), Length(max=200)])
    contact_email = EmailField(
        "Contact e-mail", validators=[SingleLine(), Optional(), Email(), Length(max=254)]
    )
    phone = StringField("Phone", validators=[SingleLine(), Optional(), Length(max=40)])
    address = TextAreaField("Address", validators=[MultiLine(), Optional(), Length(max=500)])
    currency = StringField(
        "Currency",
        validators=[SingleLine(), Optional(), Length(min=3, max=3)],
        description="The ISO 4217 code your prices are in: EUR, GBP, USD, CHF...",
    )
    language = StringField(
        "Language",
        validators=[SingleLine(), Optional(), Length(max=16)],
        description="Your clients' language, as a tag: en, fr, de-CH...",
    )
    client_accounts = BooleanField(
        "Client accounts",
        description="Clients may create an account on your booking pages (confirmed by "
        "e-mail) to see their bookings. Off: those pages and sign-up are closed, and clients "
        "cannot log in.",
    )


@admin_pages.route("/business", methods=["GET", "POST"])
def business(slug: str):
    tenant, user = require_page(slug, "business.manage", "business")
    form = BusinessForm(obj=tenant)
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            catalogue.update_business(
                current_app._get_current_object(),
                tenant_id=tenant.id,
                name=form.name.data,
                contact_email=form.contact_email.data,
                phone=form.phone.data,
                address=form.address.data,
                currency=form.currency.data or None,  # left empty: kept as it is
                language=form.language.data or None,  # left empty: kept as it is
                actor=user,
                now=clock.now(),
            )
            catalogue.change_settings(
                current_app._get_current_object(),
                tenant_id=tenant.id,
                actor=user,
                now=clock.now(),
                client_accounts=form.client_accounts.data,
            )
        except catalogue.CatalogueError as error:
            errors = apply_refusal(form, error)
        else:
            flash("The business's details are saved.")
            return redirect(url_for(".business", slug=slug))
    status = 422 if form.is_submitted() else 200
    return page("admin/business.html", tenant, user, status, form=form, errors=errors)
