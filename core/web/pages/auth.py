"""Staff login at ``/admin/<tenant>/login`` and support login at ``/support/login``.

Both go through :mod:`bookwell.core.access.login`, the same path as the API:
``before_password_check``, the password, then every ``before_login`` guard; a guard's challenge
(say, a 6-digit code) becomes a further step. A login let through only with a restricted scope
(a guard's ``grant_scope``, or a password the current rules refuse) starts a restricted session
that goes to the page where the person does what the scope asks (``continue_at``; see
:mod:`bookwell.core.web.identity`); without such a page it starts none, and the page says the
refusal's message instead (403). Support's logins run the instance's support plugins. Each
step's POST counts against the per-IP "login" rate limit, one bucket with the API's login.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp

from bookwell.core.access import login, sessions
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import STAFF_ROLES, Role, Tenant
from bookwell.core.web import identity, session_cookies
from bookwell.core.web.api.errors import retry_later
from bookwell.core.web.forms import SingleLine
from bookwell.core.web.identity import signed_in_rows
from bookwell.core.web.ratelimits import rate_limited
from bookwell.core.web.request_tenant import current_tenant

admin_auth = Blueprint("admin_auth", __name__, url_prefix="/admin/<slug>")
support_auth = Blueprint("support_auth", __name__, url_prefix="/support")
PENDING_FOR = timedelta(minutes=10)


class LoginForm(FlaskForm):
    email = EmailField(
        lazy_gettext("E-mail"), validators=[SingleLine(), DataRequired(), Email(), Length(max=254)]
    )
    password = PasswordField(
        lazy_gettext("Password"), validators=[DataRequired(), Length(max=4096)]
    )


class ChallengeForm(FlaskForm):
    answer = StringField(
        lazy_gettext("Code"), validators=[SingleLine(), DataRequired(), Length(max=100)]
    )
    # The name the guard gave its challenge (``otp``...), carried through the step's form.
    field = HiddenField(validators=[SingleLine(), Optional(), Regexp(r"^[a-z][a-z0-9_]{0,39}$")])


def _tenant(slug: str) -> Tenant:
    tenant = current_tenant(slug)
    if tenant is None:
        abort(404)
    return tenant


def _login_page(tenant: Tenant | None, form, *, challenge=None, error=None, status=200):
    body = render_template(
        "admin/login.html", tenant=tenant, form=form, challenge=challenge, error=error
    )
    return body, status


class LoginScreens:
    """How one kind of login page shows each outcome of :func:`start_session`: the staff and
    support pages in core's layout, the client accounts' in the business's theme."""

    def __init__(self, render_step, render_refused, home: str) -> None:
        self.render_step = render_step  # (challenge, error, status) -> response
        self.render_refused = render_refused  # (message, status) -> response
        self.home = home


def start_session(
    tenant: Tenant | None,
    user,
    answers,
    screens: LoginScreens,
    password: str | None = None,
    carried: login.Grant | None = None,
):
    """The password against the current rules, every ``before_login`` guard, then the session
    and its cookie: to ``screens.home``, or a restricted one to its ``continue_at``; or, when a
    guard asks for a further step (a ``challenge``), a short pending session and the page that
    asks for it. A further step has no password: it passes the restriction the first step
    ``carried``."""
    app = current_app._get_current_object()
    try:
        done = login.finish(
            app,
            tenant=tenant,
            user=user,
            answers=answers,
            kind="browser",
            now=clock.now(),
            password=password,
            carried=carried,
        )
    except login.LoginRefused as refused:
        if refused.challenge:
            # A further step: a new pending secret for it (renewed at every step). A restriction
            # the password already earned rides on it, on the server, to the session it ends in.
            kept = refused.carried
            with db.write_transaction(app) as writer:
                row, secret = sessions.start(
                    writer,
                    user,
                    kind="pending",
                    limits=sessions.Limits(
                        int(PENDING_FOR.total_seconds() // 60),
                        int(PENDING_FOR.total_seconds() // 60),
                    ),
                    now=clock.now(),
                    ip=None,
                    user_agent=None,
                    scope=kept.stored if kept else None,
                )
            if kept is not None:
                identity.remember_restriction(row.id, kept.continue_at or "", kept.message)
            response = screens.render_step(
                dict(refused.challenge),
                refused.message if answers else None,
                401 if answers else 200,
            )
            session_cookies.set_cookie(
                response, session_cookies.PENDING_COOKIE, secret, row.expires_at
            )
            return response
        return retry_later(screens.render_refused(refused.message, refused.status), refused.code)
    _end_restricted_session(app)
    if done.grant is not None:
        # finish() started it only because continue_at is a page of this site.
        identity.remember_restriction(done.session.id, done.grant.continue_at, done.grant.message)
        response = make_response(redirect(done.grant.continue_at, 303))
    else:
        identity.forget_restriction()
        response = make_response(redirect(screens.home))
    session_cookies.set_cookie(
        response, session_cookies.COOKIE, done.secret, done.session.expires_at
    )
    session_cookies.clear_cookie(response, session_cookies.PENDING_COOKIE)
    return response


def _end_restricted_session(app) -> None:
    """A new login from a browser whose cookie held a restricted session ends that session:
    the new one replaces it (and lifts its restriction)."""
    restriction = identity.restricted_rows()
    if restriction is not None and restriction.session is not None:
        with db.write_transaction(app) as writer:
            sessions.revoke(writer, restriction.session.id, clock.now())


def carried_restriction(row, user) -> login.Grant | None:
    """The restriction a pending login's first step found (its ``scope`` column, kept on the
    server), with the message it kept in the signed cookie when that cookie still has it."""
    if not row.scope:
        return None
    kept = identity.signed_cookie.get(identity.CONTINUE_AT)
    message = None
    if isinstance(kept, dict) and kept.get("session") == row.id:
        message = kept.get("message")
    scope = login.restriction_of(row.scope)[0]
    tenant = db.session().get(Tenant, user.tenant_id) if user.tenant_id is not None else None
    # Only the password's restriction is carried, and its page is always its side's.
    page = login.change_password_page(tenant, user) if scope == login.PASSWORD_CHANGE else None
    return login.restricted_grant(row.scope, message or identity.restriction_message(scope), page)


def password_changed(tenant: Tenant | None, rows: identity.SignedInRows, home: str, login_url: str):
    """What a page answers once it changed the password of the session the browser holds
    (``users.change_password`` keeping that session). A full session goes ``home``. A session
    restricted to ``password_change`` asks every ``before_login`` guard again, as the API's
    password change does (:func:`login.reassess`): it becomes full (``home``), or takes the next
    restriction (303 to that one's ``continue_at``), or ends, when a guard now asks for more
    (a one-time code, say) or the next restriction has no page: then the login page, where the
    next login asks for what is missing."""
    app = current_app._get_current_object()
    session = rows.session
    if session is None or not session.scope:
        return redirect(home)
    try:
        grant = login.reassess(
            app, tenant=tenant, user=rows.user, session_id=session.id, now=clock.now()
        )
    except login.LoginRefused:
        grant = None  # the guards ended the session (reassess revoked it)
    else:
        if grant is None:
            identity.forget_restriction()
            return redirect(home)
        if login.opens_a_page(app, grant.continue_at):
            identity.remember_restriction(session.id, grant.continue_at, grant.message)
            return redirect(grant.continue_at, 303)
        # A restriction no page serves: as at a login, the browser gets no such session.
        with db.write_transaction(app) as writer:
            sessions.revoke(writer, session.id, clock.now())
    identity.forget_restriction()
    response = make_response(redirect(login_url))
    session_cookies.clear_cookie(response, session_cookies.COOKIE)
    return response


def answer_step(tenant: Tenant | None, screens: LoginScreens, login_url: str):
    """The further step's POST: the answer goes to the guards under the field the challenge
    named (``otp`` unless it said otherwise), with the user the pending session holds."""
    form = ChallengeForm()
    waiting = session_cookies.pending()
    if waiting is None:
        return redirect(login_url)
    row, user = waiting
    field = form.field.data or "otp"
    if not form.validate_on_submit():
        return screens.render_step(
            {"field": field}, gettext("Please give the code to continue."), 422
        )
    carried = carried_restriction(row, user)
    with db.write_transaction() as writer:
        sessions.revoke(writer, row.id, clock.now())
    answers = {field: form.answer.data.strip()}
    return start_session(tenant, user, answers, screens, carried=carried)


def _staff_screens(tenant: Tenant | None, form, home: str) -> LoginScreens:
    def step(challenge, error, status):
        step_form = ChallengeForm(formdata=None, field=challenge.get("field", "otp"))
        return make_response(
            *_login_page(tenant, step_form, challenge=challenge, error=error, status=status)
        )

    def refused(message, status):
        return make_response(*_login_page(tenant, form, error=message, status=status))

    return LoginScreens(step, refused, home)


def _first_step(tenant: Tenant | None, allowed_roles, home: str):
    form = LoginForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return make_response(*_login_page(tenant, form, status=status))
    app = current_app._get_current_object()
    try:
        user = login.check_password(
            app,
            tenant=tenant,
            email=form.email.data,
            password=form.password.data,
            now=clock.now(),
        )
    except login.LoginRefused as refused:
        page = _login_page(tenant, form, error=refused.message, status=refused.status)
        return retry_later(make_response(*page), refused.code)
    if user.role not in allowed_roles:
        # Same words as a wrong password: the page must not reveal what kind of account it is.
        return make_response(
            *_login_page(
                tenant, form, error=gettext("The e-mail or the password is not right."), status=401
            )
        )
    return start_session(
        tenant, user, {}, _staff_screens(tenant, form, home), password=form.password.data
    )


def _challenge_step(tenant: Tenant | None, home: str):
    login_url = url_for(".login", **({"slug": tenant.slug} if tenant else {}))
    return answer_step(tenant, _staff_screens(tenant, LoginForm(formdata=None), home), login_url)


@admin_auth.route("/login", methods=["GET", "POST"], endpoint="login")
@rate_limited("login")
def login_page(slug: str):
    tenant = _tenant(slug)
    return _first_step(tenant, {str(role) for role in STAFF_ROLES}, url_for("admin.day", slug=slug))


@admin_auth.post("/login/step")
@rate_limited("login")
def login_step(slug: str):
    tenant = _tenant(slug)
    return _challenge_step(tenant, url_for("admin.day", slug=slug))


@admin_auth.post("/sessions/<int:session_id>/end")
def end_session(slug: str, session_id: int):
    tenant = _tenant(slug)
    form = FlaskForm()
    signed_in_here = current_user.is_authenticated and current_user.tenant_id == tenant.id
    if not signed_in_here or not form.validate_on_submit():
        abort(403)
    owned = {row.id for row in sessions.active_sessions(db.session(), current_user.id, clock.now())}
    if session_id not in owned:
        abort(404)
    with db.write_transaction() as writer:
        sessions.revoke(writer, session_id, clock.now())
    return redirect(url_for("admin.my_sessions", slug=slug))


def logged_out(to: str):
    """A logout's answer, whatever it is asked with: the session the cookie names ends on the
    server (and a login waiting for its further step with it), and both cookies are cleared.

    No CSRF token is asked for. A forged logout can only sign someone out (a nuisance, and the
    SameSite=Lax cookie does not even travel with another site's POST), while a logout that
    cleared the cookie but left its session alive would leave a working secret behind, in a
    copied cookie or a browser that kept it, with the person believing it gone: ending the
    session is the safe direction."""
    # A restricted session is nobody to current_user, yet its cookie is cleared too: it ends.
    rows = signed_in_rows() or identity.restricted_rows()
    if rows is not None and rows.session is not None:
        login.log_out(current_app._get_current_object(), rows.session.id, rows.user, clock.now())
        logout_user()
    identity.forget_restriction()
    waiting = session_cookies.pending()
    if waiting is not None:
        with db.write_transaction() as writer:
            sessions.revoke(writer, waiting[0].id, clock.now())
    response = make_response(redirect(to))
    session_cookies.clear_cookie(response, session_cookies.COOKIE)
    session_cookies.clear_cookie(response, session_cookies.PENDING_COOKIE)
    return response


@admin_auth.post("/logout")
def logout(slug: str):
    _tenant(slug)
    return logged_out(url_for(".login", slug=slug))


@support_auth.route("/login", methods=["GET", "POST"], endpoint="login")
@rate_limited("login")
def support_login():
    return _first_step(None, {str(Role.SUPPORT)}, url_for(".home"))


@support_auth.post("/login/step", endpoint="login_step")
@rate_limited("login")
def login_step_support():
    return _challenge_step(None, url_for(".home"))


@support_auth.post("/logout")
def logout_support():
    return logged_out(url_for(".login"))


@support_auth.get("/", endpoint="home")
@login_required
def support_home():
    if current_user.role != Role.SUPPORT:
        return redirect(url_for(".login"))
    active = sessions.active_sessions(db.session(), current_user.id, clock.now())
    return render_template(
        "admin/home.html",
        tenant=None,
        sessions=active,
        form=FlaskForm(),
    )
