"""Passwords on the pages: changing one's own (staff, platform support, clients), a forgotten
password for staff and support (clients have theirs in :mod:`.accounts`), and the invitation a
new staff member chooses their password with.

Every page that sets a password shows its rules before anyone types (core's, then the
plugins' ``password_rules``, listed under the field and tied to it by ``aria-describedby``), and
a refusal lists every rule broken, beside the field. Changing a password asks for the current
one, ends the person's other sessions and revokes their API keys (the same core function as
``POST /api/v1/auth/password``), and each POST counts against the per-IP "login" limit, as the
other doors that check a password do. Asking for a reset answers alike whether or not the
address has an account.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from bookwell.core.access import account_links, login, users
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import STAFF_ROLES, Role, Tenant, User
from bookwell.core.web import identity, session_cookies
from bookwell.core.web.forms import SingleLine
from bookwell.core.web.identity import SignedInRows, login_manager, signed_in_rows
from bookwell.core.web.pages import accounts
from bookwell.core.web.pages.admin import page
from bookwell.core.web.pages.auth import (
    LoginForm,
    _staff_screens,
    password_changed,
    start_session,
)
from bookwell.core.web.pages.booking import _page, strip_text
from bookwell.core.web.ratelimits import rate_limited
from bookwell.core.web.request_tenant import current_tenant
from bookwell.hooks import UserInfo

admin_passwords = Blueprint("admin_passwords", __name__, url_prefix="/admin/<slug>")
support_passwords = Blueprint("support_passwords", __name__, url_prefix="/support")
client_passwords = Blueprint("client_passwords", __name__, url_prefix="/book/<slug>/account")

NOT_RIGHT = lazy_gettext("The current password is not right.")
SENT = lazy_gettext(
    "If the address has an account here, we have sent it a link to choose a new password. "
    "The link works once, within one hour."
)
LINK_NOT_VALID = lazy_gettext("This link has expired or has already been used.")


class ChoosePasswordForm(FlaskForm):
    new_password = PasswordField(
        lazy_gettext("New password"),
        validators=[DataRequired(lazy_gettext("Please choose a new password.")), Length(max=4096)],
    )
    confirm = PasswordField(
        lazy_gettext("Repeat the new password"),
        validators=[
            DataRequired(lazy_gettext("Please repeat the new password.")),
            EqualTo("new_password", lazy_gettext("The two passwords differ.")),
        ],
    )


class ChangePasswordForm(ChoosePasswordForm):
    current_password = PasswordField(
        lazy_gettext("Current password"),
        validators=[
            DataRequired(lazy_gettext("Please enter your current password.")),
            Length(max=4096),
        ],
    )


class ForgotForm(FlaskForm):
    email = EmailField(
        lazy_gettext("E-mail"),
        validators=[
            SingleLine(),
            DataRequired(lazy_gettext("Please enter your e-mail address.")),
            Email(lazy_gettext("Please enter a valid e-mail address.")),
            Length(max=254),
        ],
        filters=[strip_text],
    )


def _app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]


def rules_for(tenant: Tenant | None, account: User | UserInfo | None = None) -> list[str]:
    """What to show beside a new-password field (a template global, ``password_rules``)."""
    return users.password_rules(_app(), db.session(), tenant, clock.now(), account)


def _changed_lines(done: users.PasswordChanged) -> list[str]:
    lines = [gettext("Your password is changed.")]
    if done.sessions_ended:
        ended = done.sessions_ended
        if ended == 1:
            lines.append(gettext("1 other session ended."))
        else:
            lines.append(gettext("%(count)s other sessions ended.", count=ended))
    if done.api_keys_revoked:
        lines.append(accounts.revoked_keys_line(done.api_keys_revoked))
    return lines


def change_own_password(
    rows: SignedInRows, form: ChangePasswordForm
) -> tuple[users.PasswordChanged | None, dict[str, list[str]]]:
    """Check the current password, then change it (this session kept, every other one and
    every API key ended); the change, or the errors per field."""
    app = _app()
    user = rows.user
    tenant = db.session().get(Tenant, user.tenant_id) if user.tenant_id else None
    try:
        login.check_current_password(
            app, tenant=tenant, user=user, password=form.current_password.data, now=clock.now()
        )
    except login.LoginRefused as refused:
        wrong = refused.code == login.INVALID_CREDENTIALS
        return None, {"current_password": [str(NOT_RIGHT) if wrong else refused.message]}
    try:
        done = users.change_password(
            app,
            rows.user,
            form.new_password.data,
            clock.now(),
            keep_session_id=rows.session.id if rows.session is not None else None,
        )
    except users.UserError as error:
        return None, {"new_password": error.fields.get("new_password", [error.message])}
    return done, {}


def _status(form: FlaskForm, field_errors: dict[str, list[str]]) -> int:
    if field_errors.get("current_password"):
        return 403
    return 422 if form.is_submitted() else 200


def _tenant(slug: str) -> Tenant:
    tenant = current_tenant(slug)
    if tenant is None:
        abort(404)
    return tenant


def _staff_here(tenant: Tenant) -> SignedInRows:
    """The signed-in staff member of this tenant; else their login page (nobody, or support),
    404 (another tenant's account) or 403 (a client of this one)."""
    if not current_user.is_authenticated or current_user.tenant_id is None:
        abort(login_manager.unauthorized())
    if current_user.tenant_id != tenant.id:
        abort(404)
    if current_user.role not in {str(role) for role in STAFF_ROLES}:
        abort(403)
    return signed_in_rows()


def _support_here() -> SignedInRows:
    if not current_user.is_authenticated or current_user.role != Role.SUPPORT:
        abort(login_manager.unauthorized())
    return signed_in_rows()


def _plain(template: str, tenant: Tenant | None, status: int = 200, **values):
    """A page outside the staff menu (nobody is signed in yet, or platform support)."""
    return make_response(render_template(template, tenant=tenant, **values), status)


def _notice(tenant: Tenant | None, title: str, messages: list[str], status: int = 200, **extra):
    return _plain("passwords/notice.html", tenant, status, title=title, messages=messages, **extra)


# --- changing one's own password -------------------------------------------------------------


def _restricted(rows: SignedInRows) -> bool:
    """Whether the browser holds a session restricted to changing the password (a login the
    current rules refused): the change then lifts it, as the API's does."""
    return rows.session is not None and bool(rows.session.scope)


# The landing page of a login restricted to ``password_change`` (login.CHANGE_PASSWORD_PAGES).
@admin_passwords.route("/password", methods=["GET", "POST"], endpoint="change")
@identity.accepts_login_scope(login.PASSWORD_CHANGE)
@rate_limited("login")
def staff_change(slug: str):
    tenant = _tenant(slug)
    identity.accept_login_scope(login.PASSWORD_CHANGE)
    rows = _staff_here(tenant)
    form = ChangePasswordForm()
    field_errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        restricted = _restricted(rows)
        done, field_errors = change_own_password(rows, form)
        if done is not None:
            flash(" ".join(_changed_lines(done)))
            if restricted:
                home = url_for("admin.day", slug=slug)
                return password_changed(tenant, rows, home, url_for("admin_auth.login", slug=slug))
            return redirect(url_for(".change", slug=slug))
    return page(
        "passwords/change.html",
        tenant,
        rows.user,
        _status(form, field_errors),
        form=form,
        field_errors=field_errors,
        rules=rules_for(tenant, rows.user),
    )


@support_passwords.route("/password", methods=["GET", "POST"], endpoint="change")
@identity.accepts_login_scope(login.PASSWORD_CHANGE)
@rate_limited("login")
def support_change():
    identity.accept_login_scope(login.PASSWORD_CHANGE)
    rows = _support_here()
    form = ChangePasswordForm()
    field_errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        restricted = _restricted(rows)
        done, field_errors = change_own_password(rows, form)
        if done is not None:
            flash(" ".join(_changed_lines(done)))
            if restricted:
                home = url_for("support_auth.home")
                return password_changed(None, rows, home, url_for("support_auth.login"))
            return redirect(url_for(".change"))
    return _plain(
        "passwords/change.html",
        None,
        _status(form, field_errors),
        form=form,
        field_errors=field_errors,
        rules=rules_for(None, rows.user),
    )


@client_passwords.route("/password", methods=["GET", "POST"], endpoint="change")
@identity.accepts_login_scope(login.PASSWORD_CHANGE)
@rate_limited("login")
def client_change(slug: str):
    tenant = accounts._tenant(slug)
    identity.accept_login_scope(login.PASSWORD_CHANGE)
    rows = accounts._signed_in_client(tenant)
    if rows is None:
        return login_manager.unauthorized()
    form = ChangePasswordForm()
    field_errors: dict[str, list[str]] = {}
    changed: list[str] = []
    if form.validate_on_submit():
        restricted = _restricted(rows)
        done, field_errors = change_own_password(rows, form)
        if done is not None and restricted:
            flash(" ".join(_changed_lines(done)))
            home = url_for("client_accounts.bookings", slug=slug)
            return password_changed(
                tenant, rows, home, url_for("client_accounts.login_page", slug=slug)
            )
        if done is not None:
            changed = _changed_lines(done)
            form = ChangePasswordForm(formdata=None)
    return _page(
        tenant,
        "book/account_password.html",
        _status(form, field_errors) if not changed else 200,
        form=form,
        field_errors=field_errors,
        changed=changed,
        rules=rules_for(tenant, rows.user),
    )


# --- a forgotten password (staff and support) --------------------------------------------------


def _forgot(tenant: Tenant | None, sent_url: str):
    form = ForgotForm()
    if form.validate_on_submit():
        account_links.request_reset(_app(), tenant, form.email.data, clock.now())
        return redirect(sent_url)
    return _plain("passwords/forgot.html", tenant, 422 if form.is_submitted() else 200, form=form)


def _reset(tenant: Tenant | None, token: str):
    user = account_links.peek(db.session(), tenant, account_links.RESET, token, clock.now())
    if user is None:
        return _notice(tenant, gettext("Link not valid"), [str(LINK_NOT_VALID)], 410, again=True)
    form = ChoosePasswordForm()
    field_errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        try:
            done = account_links.reset_password(
                _app(), tenant, token, form.new_password.data, clock.now()
            )
        except users.UserError as error:
            field_errors = {"new_password": error.fields.get("new_password", [error.message])}
        else:
            if done is None:
                return _notice(
                    tenant, gettext("Link not valid"), [str(LINK_NOT_VALID)], 410, again=True
                )
            lines = [
                *_changed_lines(done),
                gettext("Every session was ended: please log in again."),
            ]
            response = _notice(tenant, gettext("Password changed"), lines)
            session_cookies.clear_cookie(response, session_cookies.COOKIE)
            return response
    return _plain(
        "passwords/choose.html",
        tenant,
        422 if form.is_submitted() else 200,
        form=form,
        field_errors=field_errors,
        rules=rules_for(tenant, user),
        title=gettext("Choose a new password"),
        intro=None,
        button=gettext("Save the new password"),
    )


@admin_passwords.route("/forgot", methods=["GET", "POST"], endpoint="forgot")
@rate_limited("write")
def staff_forgot(slug: str):
    return _forgot(_tenant(slug), url_for(".sent", slug=slug))


@admin_passwords.get("/forgot/sent", endpoint="sent")
def staff_sent(slug: str):
    return _notice(_tenant(slug), gettext("Check your e-mail"), [str(SENT)])


@admin_passwords.route("/reset/<token>", methods=["GET", "POST"], endpoint="reset")
@rate_limited("write")
def staff_reset(slug: str, token: str):
    return _reset(_tenant(slug), token)


@support_passwords.route("/forgot", methods=["GET", "POST"], endpoint="forgot")
@rate_limited("write")
def support_forgot():
    return _forgot(None, url_for(".sent"))


@support_passwords.get("/forgot/sent", endpoint="sent")
def support_sent():
    return _notice(None, gettext("Check your e-mail"), [str(SENT)])


@support_passwords.route("/reset/<token>", methods=["GET", "POST"], endpoint="reset")
@rate_limited("write")
def support_reset(token: str):
    return _reset(None, token)


# --- an invitation -----------------------------------------------------------------------------


@admin_passwords.route("/invite/<token>", methods=["GET", "POST"], endpoint="invite")
@rate_limited("login")
def accept_invite(slug: str, token: str):
    """The invited person chooses their password (nothing happens on GET: mail scanners open
    links), then is signed in through the one login path, its guards and further steps
    included."""
    tenant = _tenant(slug)
    invited = account_links.peek(db.session(), tenant, account_links.INVITE, token, clock.now())
    if invited is None:
        lines = [
            str(LINK_NOT_VALID),
            gettext("Ask whoever invited you to send the invitation again."),
        ]
        return _notice(tenant, gettext("Link not valid"), lines, 410)
    form = ChoosePasswordForm()
    field_errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        password = form.new_password.data
        try:
            accepted = account_links.accept_invitation(_app(), tenant, token, password, clock.now())
        except users.UserError as error:
            field_errors = {"new_password": error.fields.get("new_password", [error.message])}
        else:
            if accepted is None:
                return _notice(tenant, gettext("Link not valid"), [str(LINK_NOT_VALID)], 410)
            return _sign_in_invited(tenant, accepted, password)
    return _plain(
        "passwords/choose.html",
        tenant,
        422 if form.is_submitted() else 200,
        form=form,
        field_errors=field_errors,
        rules=rules_for(tenant, invited),
        title=gettext("Welcome to %(business)s", business=tenant.name),
        intro=gettext(
            "Choose the password you will log in with as %(email)s.", email=invited.email
        ),
        button=gettext("Save my password and log in"),
    )


def _sign_in_invited(tenant: Tenant, user: User, password: str):
    app = _app()
    home = url_for("admin.day", slug=tenant.slug)
    form = LoginForm(formdata=None, email=user.email)
    try:
        checked = login.check_password(
            app, tenant=tenant, email=user.email, password=password, now=clock.now()
        )
    except login.LoginRefused:
        return _notice(
            tenant, gettext("Password saved"), [gettext("Your password is saved. Please log in.")]
        )
    return start_session(tenant, checked, {}, _staff_screens(tenant, form, home), password=password)


def init_app(app: Flask) -> None:
    app.add_template_global(rules_for, "password_rules")
    for blueprint in (admin_passwords, support_passwords, client_passwords):
        app.register_blueprint(blueprint)
