"""Staff pages for staff accounts (owners and managers) and the business's details (owners).

A new staff member is invited by e-mail: the account is made without a password, and its owner
chooses one with the invitation's link (:mod:`bookwell.core.access.account_links`), which can be
sent again from the account's page until it is used. Nobody types a password for someone else."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from bookwell.core.access import account_links, users
from bookwell.core.booking import catalogue
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import STAFF_ROLES, Provider, User
from bookwell.core.web.forms import MultiLine, SingleLine
from bookwell.core.web.pages.admin import admin_pages, page, require_page, role_name
from bookwell.core.web.pages.admin_catalogue import apply_refusal


def _role_choices(user: User) -> list[tuple[str, str]]:
    return [
        (str(role), role_name(role))
        for role in STAFF_ROLES
        if catalogue.may_grant(user.role, str(role))
    ]


NO_PROVIDER = ""
PROVIDER_HELP = lazy_gettext(
    "The provider this account works as: with the staff role it sees that provider's bookings "
    "only (none without one)."
)


def _provider_choices(tenant) -> list[tuple[str, str]]:
    rows = db.session().scalars(
        select(Provider).where(Provider.tenant_id == tenant.id).order_by(Provider.name)
    )
    return [(NO_PROVIDER, gettext("None")), *((str(row.id), row.name) for row in rows)]


def _chosen_provider(form, unchanged: object = None) -> int | None | object:
    """The provider the form names: ``None`` for none, ``unchanged`` when the field was not
    sent (a form of before the field, a script); core checks it is one of the business's."""
    value = form.provider_id.data
    if value is None:
        return unchanged
    if value == NO_PROVIDER:
        return None
    return int(value) if value.isdigit() else -1  # no provider has it: refused with the field


def _provider_change(form, account: User) -> int | None | object:
    chosen = _chosen_provider(form, catalogue.UNCHANGED)
    return catalogue.UNCHANGED if chosen == account.provider_id else chosen


class NewStaffForm(FlaskForm):
    name = StringField(lazy_gettext("Name"), validators=[SingleLine(), Optional(), Length(max=200)])
    email = EmailField(
        lazy_gettext("E-mail"),
        validators=[SingleLine(), DataRequired(), Email(), Length(max=254)],
    )
    role = SelectField(lazy_gettext("Role"))
    provider_id = SelectField(
        lazy_gettext("Works as"), description=PROVIDER_HELP, validate_choice=False
    )


class StaffForm(FlaskForm):
    role = SelectField(lazy_gettext("Role"))
    active = BooleanField(lazy_gettext("Can log in"))
    provider_id = SelectField(
        lazy_gettext("Works as"), description=PROVIDER_HELP, validate_choice=False
    )


@admin_pages.get("/staff")
def staff(slug: str):
    tenant, user = require_page(slug, "staff.manage", "staff")
    rows = db.session().scalars(
        select(User)
        .where(User.tenant_id == tenant.id, User.role.in_([str(role) for role in STAFF_ROLES]))
        .order_by(User.email)
    )
    listed = list(rows)
    invited = {account.id for account in listed if not account_links.has_password(account)}
    return page("admin/staff.html", tenant, user, accounts=listed, invited=invited)


@admin_pages.route("/staff/new", methods=["GET", "POST"])
def new_staff(slug: str):
    tenant, user = require_page(slug, "staff.manage", "staff")
    form = NewStaffForm()
    form.role.choices = _role_choices(user)
    form.provider_id.choices = _provider_choices(tenant)
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            invited = account_links.invite(
                current_app._get_current_object(),
                tenant,
                email=form.email.data,
                name=(form.name.data or "").strip(),
                role=form.role.data,
                actor=user,
                now=clock.now(),
                provider_id=_chosen_provider(form),
            )
        except users.UserError as error:
            errors = apply_refusal(form, error)
        else:
            flash(
                gettext(
                    "Invited %(email)s: they choose their password with the link we e-mailed "
                    "them, within %(days)d days.",
                    email=invited.email,
                    days=account_links.INVITATION_DAYS,
                )
            )
            return redirect(url_for(".staff", slug=slug))
    status = 422 if form.is_submitted() else 200
    return page("admin/new_staff.html", tenant, user, status, form=form, errors=errors)


def _staff_account(tenant, user_id: int) -> User:
    account = db.session().scalar(
        select(User).where(
            User.id == user_id,
            User.tenant_id == tenant.id,
            User.role.in_([str(role) for role in STAFF_ROLES]),
        )
    )
    if account is None:
        abort(404)
    return account


@admin_pages.post("/staff/<int:user_id>/invitation")
def resend_invitation(slug: str, user_id: int):
    tenant, user = require_page(slug, "staff.manage", "staff")
    account = _staff_account(tenant, user_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    if not catalogue.may_grant(user.role, account.role):
        abort(403)
    sent = account_links.send_invitation(
        current_app._get_current_object(), tenant, account, user, clock.now()
    )
    if sent:
        flash(
            gettext(
                "The invitation is sent again to %(email)s; earlier links no longer work.",
                email=account.email,
            )
        )
    elif not account.active:
        flash(
            gettext(
                "%(email)s cannot log in: allow it first, then send the invitation.",
                email=account.email,
            )
        )
    elif account_links.has_password(account):
        flash(gettext("%(email)s has chosen a password already.", email=account.email))
    else:
        flash(
            gettext(
                "%(email)s had enough e-mail this hour: please try again later.",
                email=account.email,
            )
        )
    return redirect(url_for(".edit_staff", slug=slug, user_id=account.id))


@admin_pages.route("/staff/<int:user_id>", methods=["GET", "POST"])
def edit_staff(slug: str, user_id: int):
    tenant, user = require_page(slug, "staff.manage", "staff")
    account = _staff_account(tenant, user_id)
    form = StaffForm(
        obj=account, provider_id=str(account.provider_id) if account.provider_id else NO_PROVIDER
    )
    form.role.choices = _role_choices(user)
    form.provider_id.choices = _provider_choices(tenant)
    if account.role not in dict(form.role.choices):
        form.role.choices = [(account.role, role_name(account.role)), *form.role.choices]
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
                provider_id=_provider_change(form, account),
            )
        except catalogue.CatalogueError as error:
            errors = apply_refusal(form, error)
        else:
            flash(gettext("Saved %(name)s.", name=account.email))
            return redirect(url_for(".staff", slug=slug))
    status = 422 if form.is_submitted() else 200
    return page(
        "admin/edit_staff.html",
        tenant,
        user,
        status,
        form=form,
        account=account,
        errors=errors,
        invitation_pending=not account_links.has_password(account),
        may_invite=catalogue.may_grant(user.role, account.role),
    )


class BusinessForm(FlaskForm):
    name = StringField(
        lazy_gettext("Name"), validators=[SingleLine(), DataRequired(), Length(max=200)]
    )
    contact_email = EmailField(
        lazy_gettext("Contact e-mail"),
        validators=[SingleLine(), Optional(), Email(), Length(max=254)],
    )
    phone = StringField(
        lazy_gettext("Phone"), validators=[SingleLine(), Optional(), Length(max=40)]
    )
    address = TextAreaField(
        lazy_gettext("Address"), validators=[MultiLine(), Optional(), Length(max=500)]
    )
    currency = StringField(
        lazy_gettext("Currency"),
        validators=[SingleLine(), Optional(), Length(min=3, max=3)],
        description=lazy_gettext("The ISO 4217 code your prices are in: EUR, GBP, USD, CHF..."),
    )
    language = StringField(
        lazy_gettext("Language"),
        validators=[SingleLine(), Optional(), Length(max=16)],
        description=lazy_gettext("Your clients' language, as a tag: en, fr, de-CH..."),
    )
    client_accounts = BooleanField(
        lazy_gettext("Client accounts"),
        description=lazy_gettext(
            "Clients may create an account on your booking pages (confirmed by "
            "e-mail) to see their bookings. Off: those pages and sign-up are closed, and clients "
            "cannot log in."
        ),
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
            flash(gettext("The business's details are saved."))
            return redirect(url_for(".business", slug=slug))
    status = 422 if form.is_submitted() else 200
    return page("admin/business.html", tenant, user, status, form=form, errors=errors)
