"""Client accounts at ``/book/<tenant>/account/``, in the tenant's theme (when the tenant has
turned them on; otherwise every page is a 404).

Register (an e-mail with a single-use verification link; the account opens when that link is
used with the password chosen at sign-up), log in (only a verified client; the same session
cookie and login path as staff), "my bookings" (this tenant's bookings made with the account's
verified e-mail, and nothing else), and a forgotten password (a single-use link that expires in
an hour). Signing up or asking for a link answers the same whether or not the address has an
account.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, current_app, make_response, redirect, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from bookwell.core.access import client_accounts as accounts
from bookwell.core.access import login, users
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, BookingStatus, Role, Tenant
from bookwell.core.web import session_cookies
from bookwell.core.web.api.errors import retry_later
from bookwell.core.web.forms import SingleLine
from bookwell.core.web.identity import SignedInRows, login_manager, signed_in_rows
from bookwell.core.web.pages.auth import (
    ChallengeForm,
    LoginForm,
    LoginScreens,
    answer_step,
    logged_out,
    start_session,
)
from bookwell.core.web.pages.booking import _page, strip_text
from bookwell.core.web.pages.booking import _tenant as _any_tenant
from bookwell.core.web.ratelimits import rate_limited

client_accounts = Blueprint("client_accounts", __name__, url_prefix="/book/<slug>/account")

NOT_RIGHT = lazy_gettext("The e-mail or the password is not right.")
CHECK_MAIL = "check_mail"
NOT_CHOSEN_AT_SIGN_UP = lazy_gettext(
    "This is not the password chosen when this link was requested. If you did not sign up, "
    "ignore the link. To sign up again with a password of your choice, create an account: "
    "we will send you a new link."
)


class RegisterForm(FlaskForm):
    name = StringField(
        lazy_gettext("Name"),
        validators=[
            SingleLine(),
            DataRequired(lazy_gettext("Please enter your name.")),
            Length(max=200),
        ],
        filters=[strip_text],
    )
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
    password = PasswordField(
        lazy_gettext("Password"),
        validators=[DataRequired(lazy_gettext("Please choose a password.")), Length(max=4096)],
    )


class EmailForm(FlaskForm):
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


class VerifyForm(FlaskForm):
    password = PasswordField(
        lazy_gettext("The password you chose when you signed up"),
        validators=[
            DataRequired(lazy_gettext("Please enter the password you chose.")),
            Length(max=4096),
        ],
    )


class ResetForm(FlaskForm):
    password = PasswordField(
        lazy_gettext("New password"),
        validators=[DataRequired(lazy_gettext("Please choose a new password.")), Length(max=4096)],
    )
    confirm = PasswordField(
        lazy_gettext("Repeat it"),
        validators=[
            DataRequired(lazy_gettext("Please repeat the new password.")),
            EqualTo("password", lazy_gettext("The two passwords differ.")),
        ],
    )


def _tenant(slug: str) -> Tenant:
    tenant = _any_tenant(slug)
    if not tenant.client_accounts:
        abort(404)
    return tenant


def _app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]


def _notice(tenant: Tenant, title: str, messages: list[str], status: int = 200, **extra):
    return _page(
        tenant, "book/account_notice.html", status, title=title, messages=messages, **extra
    )


def _signed_in_client(tenant: Tenant) -> SignedInRows | None:
    """The rows of ``current_user`` if they are this business's verified client."""
    if not (
        current_user.is_authenticated
        and current_user.role == Role.CLIENT
        and current_user.tenant_id == tenant.id
        and current_user.email_verified
    ):
        return None
    return signed_in_rows()


# --- register and verify -----------------------------------------------------------------------


@client_accounts.route("/register", methods=["GET", "POST"])
@rate_limited("write")
def register(slug: str):
    tenant = _tenant(slug)
    form = RegisterForm()
    field_errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        try:
            accounts.register(
                _app(),
                tenant,
                email=form.email.data,
                password=form.password.data,
                name=form.name.data,
                now=clock.now(),
            )
        except users.UserError as error:
            field_errors = error.fields or {"email": [error.message]}
        else:
            return redirect(url_for(".sent", slug=slug, what="verify"))
    status = 422 if form.is_submitted() else 200
    return _page(tenant, "book/account_register.html", status, form=form, field_errors=field_errors)


@client_accounts.get("/sent/<what>")
def sent(slug: str, what: str):
    tenant = _tenant(slug)
    if what == "verify":
        message = gettext(
            "If the address can be used for an account, we have sent it an e-mail. Open the "
            "link in it within 48 hours and enter the password you chose when you signed up: "
            "that confirms your address and opens your account."
        )
    elif what == "reset":
        message = gettext(
            "If the address has an account here, we have sent it a link to choose a new "
            "password. The link works once, within one hour."
        )
    else:
        abort(404)
    return _notice(tenant, gettext("Check your e-mail"), [message])


@client_accounts.route("/verify/<token>", methods=["GET", "POST"])
@rate_limited("login")
def verify(slug: str, token: str):
    """The link asks for the password chosen at sign-up; nothing happens on GET (mail scanners
    open links). That password, and only that one, opens the account and signs the person in."""
    tenant = _tenant(slug)
    user = accounts.peek(db.session(), accounts.VERIFY_EMAIL, token, clock.now())
    if user is None or user.tenant_id != tenant.id:
        return _expired(tenant, "verify")
    form = VerifyForm()
    error = None
    if form.validate_on_submit():
        app, password = _app(), form.password.data
        try:
            verified = accounts.verify_email(app, tenant, token, password, clock.now())
        except accounts.NotTheChosenPassword:
            error = str(NOT_CHOSEN_AT_SIGN_UP)
        else:
            if verified is None:
                return _expired(tenant, "verify")
            return _sign_in_verified(tenant, verified, password)
    status = 401 if error else 422 if form.is_submitted() else 200
    return _page(tenant, "book/account_verify.html", status, form=form, error=error, token=token)


def _sign_in_verified(tenant: Tenant, user, password: str):
    """The account just opened: signed in through the one login path (its plugins' guards and
    further steps included); when a guard refuses, the person logs in later."""
    app = _app()
    form = LoginForm(formdata=None, email=user.email)
    try:
        checked = login.check_password(
            app, tenant=tenant, email=user.email, password=password, now=clock.now()
        )
    except login.LoginRefused:
        return _notice(
            tenant,
            gettext("E-mail confirmed"),
            [gettext("Your e-mail address is confirmed. You can now log in.")],
        )
    return start_session(tenant, checked, {}, _client_screens(tenant, form), password=password)


def _expired(tenant: Tenant, what: str):
    if what == "verify":
        message = gettext(
            "This link has expired or has already been used. "
            "If your address is not confirmed yet, ask for a new link."
        )
    else:
        message = gettext(
            "This link has expired or has already been used. Please ask for a new one."
        )
    return _notice(tenant, gettext("Link not valid"), [message], status=410, resend=what)


@client_accounts.route("/resend", methods=["GET", "POST"])
@rate_limited("write")
def resend(slug: str):
    tenant = _tenant(slug)
    form = EmailForm()
    if form.validate_on_submit():
        accounts.resend_verification(_app(), tenant, form.email.data, clock.now())
        return redirect(url_for(".sent", slug=slug, what="verify"))
    status = 422 if form.is_submitted() else 200
    return _page(
        tenant, "book/account_email.html", status, form=form, field_errors={}, what="verify"
    )


# --- log in and out ----------------------------------------------------------------------------


def _login_page(tenant: Tenant, form, *, error=None, unverified=False, status=200):
    return _page(
        tenant,
        "book/account_login.html",
        status,
        form=form,
        error=error,
        unverified=unverified,
        resend_form=EmailForm(formdata=None, email=form.email.data) if unverified else None,
    )


@client_accounts.route("/login", methods=["GET", "POST"])
@rate_limited("login")
def login_page(slug: str):
    tenant = _tenant(slug)
    form = LoginForm()
    if not form.validate_on_submit():
        return _login_page(tenant, form, status=422 if form.is_submitted() else 200)
    app = _app()
    try:
        user = login.check_password(
            app, tenant=tenant, email=form.email.data, password=form.password.data, now=clock.now()
        )
    except login.LoginRefused as refused:
        page = _login_page(
            tenant,
            form,
            error=refused.message,
            unverified=refused.code == login.EMAIL_UNVERIFIED,
            status=refused.status,
        )
        return retry_later(make_response(page), refused.code)
    if user.role != Role.CLIENT:
        # Same words as a wrong password: the page must not reveal what kind of account it is.
        return _login_page(tenant, form, error=str(NOT_RIGHT), status=401)
    return start_session(
        tenant, user, {}, _client_screens(tenant, form), password=form.password.data
    )


@client_accounts.post("/login/step")
@rate_limited("login")
def login_step(slug: str):
    """The further step a ``before_login`` guard asked for (a one-time code, say)."""
    tenant = _tenant(slug)
    screens = _client_screens(tenant, LoginForm(formdata=None))
    return answer_step(tenant, screens, url_for(".login_page", slug=slug))


def _client_screens(tenant: Tenant, form) -> LoginScreens:
    def step(challenge, error, status):
        step_form = ChallengeForm(formdata=None, field=challenge.get("field", "otp"))
        return _page(
            tenant,
            "book/account_login.html",
            status,
            form=form,
            challenge=challenge,
            step_form=step_form,
            error=error,
        )

    def refused(message, status):
        return _login_page(tenant, form, error=message, status=status)

    return LoginScreens(step, refused, url_for(".bookings", slug=tenant.slug))


@client_accounts.post("/logout")
def logout(slug: str):
    _tenant(slug)
    # Whoever the cookie names, even staff or another business's client: the cookie is cleared,
    # so its session must end too (see logged_out on the missing CSRF token).
    return logged_out(url_for(".login_page", slug=slug))


# --- my bookings -------------------------------------------------------------------------------


@client_accounts.get("/")
def bookings(slug: str):
    tenant = _tenant(slug)
    signed_in = _signed_in_client(tenant)
    if signed_in is None:
        return login_manager.unauthorized()
    user = signed_in.user
    # Only through the verified e-mail: this tenant's bookings made with that address.
    candidates = db.session().scalars(
        select(Booking)
        .where(
            Booking.tenant_id == tenant.id,
            func.lower(Booking.client_email) == user.email.lower(),
        )
        .order_by(Booking.starts_at, Booking.id)
    )
    mine = [row for row in candidates if users.canonical_email(row.client_email) == user.email]
    now = clock.now()
    # A cancelled booking is not coming up, however far ahead it was.
    upcoming = [row for row in mine if row.ends_at > now and row.status == BookingStatus.CONFIRMED]
    past = [row for row in mine if row not in upcoming]
    past.reverse()
    return _page(
        tenant,
        "book/account_bookings.html",
        upcoming=upcoming,
        past=past,
        form=FlaskForm(),
    )


# --- forgotten password ------------------------------------------------------------------------


@client_accounts.route("/forgot", methods=["GET", "POST"])
@rate_limited("write")
def forgot(slug: str):
    tenant = _tenant(slug)
    form = EmailForm()
    if form.validate_on_submit():
        accounts.request_reset(_app(), tenant, form.email.data, clock.now())
        return redirect(url_for(".sent", slug=slug, what="reset"))
    status = 422 if form.is_submitted() else 200
    return _page(
        tenant, "book/account_email.html", status, form=form, field_errors={}, what="reset"
    )


@client_accounts.route("/reset/<token>", methods=["GET", "POST"])
@rate_limited("write")
def reset(slug: str, token: str):
    tenant = _tenant(slug)
    user = accounts.peek(db.session(), accounts.RESET_PASSWORD, token, clock.now())
    if user is None or user.tenant_id != tenant.id:
        return _expired(tenant, "reset")
    form = ResetForm()
    field_errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        try:
            done = accounts.reset_password(_app(), tenant, token, form.password.data, clock.now())
        except users.UserError as error:
            field_errors = {"password": error.fields.get("new_password", [error.message])}
        else:
            if done is None:
                return _expired(tenant, "reset")
            messages = [gettext("Your password is changed and every session was ended.")]
            if done.api_keys_revoked:
                messages.append(revoked_keys_line(done.api_keys_revoked))
            messages.append(gettext("Please log in again."))
            response = _notice(tenant, gettext("Password changed"), messages)
            session_cookies.clear_cookie(response, session_cookies.COOKIE)
            return response
    status = 422 if form.is_submitted() else 200
    return _page(
        tenant,
        "book/account_reset.html",
        status,
        form=form,
        field_errors=field_errors,
        token=token,
        account=user,
    )


def revoked_keys_line(count: int) -> str:
    if count == 1:
        return gettext("1 API key was revoked.")
    return gettext("%(count)s API keys were revoked.", count=count)


def init_app(app: Flask) -> None:
    app.register_blueprint(client_accounts)
