"""The plugin's API views and pages (staff under ``/admin/<slug>/two_factor/``, clients under
``/book/<slug>/two_factor/``, platform support under ``/support/two_factor/``, which core serves
only while the operator lists the plugin for support): set up an authenticator app (a QR code
drawn on the server as inline SVG, and the secret to type in), confirm it with a code, renew the
recovery codes, and, for owners, reset a staff member's set-up.

The set-up views accept a login restricted to ``enroll_totp`` (an account that must set up an
app before anything else) as well as a full one; renewing codes and resetting others need a
full login."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Regexp

from bookwell.hooks import Context, UserInfo
from bookwell.hooks.pages import (
    plugin_context,
    render_staff_page,
    require_account,
    require_api_user,
    require_staff,
    require_support,
)

from . import authenticator, notices

SCOPE = "enroll_totp"
# A 6-digit code or a recovery code (ABCDE-FGH23), as people type them: spaces and a dash.
CODE_PATTERN = r"^[A-Za-z0-9 -]{1,40}$"

pages = Blueprint("two_factor", __name__, template_folder="templates")


# --- the API ---------------------------------------------------------------------------------


def _error(status: int, code: str, message: str, **extra: Any):
    return jsonify({"error": {"code": code, "message": message, **extra}}), status


def _code_in_body() -> tuple[str | None, Any]:
    """The body's ``code``, or the 422 to answer when it is missing or malformed."""
    body = request.get_json(silent=True)
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code.strip() or len(code) > 40:
        message = "Give the 6-digit code from your authenticator app."
        return None, _error(422, "invalid", message, fields={"code": message})
    return code.strip(), None


def _proof(ctx: Context, user: UserInfo, code: str, *, recovery: bool) -> Any:
    """``None`` when ``code`` proves the account's current second factor, else the answer."""
    until = authenticator.reserve_attempt(ctx, user.id)
    if until is not None:
        return _error(
            403,
            "locked",
            "Too many wrong codes: try again later.",
            details={"locked_until": until},
        )
    if authenticator.check_code(ctx, user.id, code, recovery=recovery) is None:
        return _error(422, "otp_invalid", "That code is not right, or was already used.")
    return None


@pages.get("/api/v1/tenants/<slug>/me/totp")
def api_status(slug: str):
    caller = require_api_user(slug, scope=SCOPE)
    ctx = plugin_context(slug)
    return jsonify(
        enrolled=authenticator.is_enrolled(ctx, caller.user.id),
        recovery_codes_left=authenticator.recovery_codes_left(ctx, caller.user.id),
    )


@pages.post("/api/v1/tenants/<slug>/me/totp")
def api_start(slug: str):
    """Start (or start again) setting up an app: a new secret, pending until confirmed. An
    account that already has one proves it with a current code (``code``) first, so that a
    session alone cannot move the second factor elsewhere."""
    caller = require_api_user(slug, scope=SCOPE)
    ctx = plugin_context(slug)
    if authenticator.is_enrolled(ctx, caller.user.id):
        code, invalid = _code_in_body()
        if invalid is not None:
            return invalid
        refused = _proof(ctx, caller.user, code, recovery=True)
        if refused is not None:
            return refused
    enrolment = authenticator.start_enrolment(ctx, caller.user)
    ctx.audit("enrolment.started", f"user:{caller.user.id}")
    return jsonify(otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg)


@pages.post("/api/v1/tenants/<slug>/me/totp/confirm")
def api_confirm(slug: str):
    caller = require_api_user(slug, scope=SCOPE)
    code, invalid = _code_in_body()
    if invalid is not None:
        return invalid
    ctx = plugin_context(slug)
    try:
        codes = authenticator.confirm_enrolment(ctx, caller.user, code)
    except authenticator.EnrolmentMissing:
        return _error(
            409,
            "otp_enrollment_not_started",
            "Start the set-up first (POST .../me/totp): none is pending, or it lapsed.",
        )
    if codes is None:
        return _error(
            422,
            "otp_invalid",
            "That code is not right: check the app shows this account, and enter its current code.",
            fields={"code": "That code is not right."},
        )
    _enrolled(ctx, caller.user)
    return jsonify(recovery_codes=codes)


@pages.post("/api/v1/tenants/<slug>/me/totp/recovery-codes")
def api_recovery_codes(slug: str):
    """New recovery codes (the old ones stop working), for a full login with a current code."""
    caller = require_api_user(slug)
    ctx = plugin_context(slug)
    if not authenticator.is_enrolled(ctx, caller.user.id):
        return _error(409, "otp_not_enrolled", "Set up an authenticator app first.")
    code, invalid = _code_in_body()
    if invalid is not None:
        return invalid
    refused = _proof(ctx, caller.user, code, recovery=False)
    if refused is not None:
        return refused
    return jsonify(recovery_codes=_renewed(ctx, caller.user))


def _enrolled(ctx: Context, user: UserInfo) -> None:
    ctx.audit("enrolled", f"user:{user.id}")
    notices.enrolled(ctx, user.email, user.name)


def _renewed(ctx: Context, user: UserInfo) -> list[str]:
    codes = authenticator.new_recovery_codes(ctx, user.id)
    ctx.audit("recovery_codes.renewed", f"user:{user.id}")
    notices.recovery_codes_renewed(ctx, user.email, user.name)
    return codes


# --- each person's own page: staff in the staff pages, clients beside their bookings, ---------
# --- platform support beside its sessions (its context is the instance's: slug None) ----------


class CodeForm(FlaskForm):
    code = StringField(
        lazy_gettext("Code"),
        validators=[
            DataRequired(lazy_gettext("Enter the code.")),
            Length(max=40, message=lazy_gettext("A code is at most 40 characters.")),
            Regexp(CODE_PATTERN, message=lazy_gettext("A code is digits (or letters and a dash).")),
        ],
    )


@dataclass(frozen=True)
class Viewer:
    """Who looks at their own "Two-step login" page, and how that side's pages are drawn."""

    side: str  # "staff", "client" or "support"
    user: UserInfo
    render: Callable[[int, dict[str, Any]], Any]
    logout_url: str


def _viewer(slug: str | None, side: str, *, setting_up: bool = False) -> Viewer:
    """The signed-in person of ``side``, or the request ends (their login page, 403...). The
    set-up views (``setting_up``) also open to a login restricted to setting one up."""
    login_scope = SCOPE if setting_up else None
    if side == "support":
        user = require_support(login_scope=login_scope)
        return Viewer(
            side,
            user,
            lambda status, values: (
                render_template("two_factor/support_home.html", **values),
                status,
            ),
            "/support/logout",
        )
    if slug is None:  # only support's pages have no business
        abort(404)
    if side == "staff":
        # Every staff role, whatever bookings it reads: each enrols its own authenticator.
        page = require_staff(slug, "bookings.read_own", login_scope=login_scope)
        return Viewer(
            side,
            page.user,
            lambda status, values: render_staff_page(
                page, "two_factor/staff_home.html", status=status, **values
            ),
            f"/admin/{slug}/logout",
        )
    account = require_account(slug, login_scope=login_scope)
    if account.user.role != "client":  # staff set theirs up on the staff side
        abort(redirect(f"/admin/{slug}/two_factor/"))
    return Viewer(
        side,
        account.user,
        lambda status, values: (
            render_template("two_factor/client_home.html", tenant=account.tenant, **values),
            status,
        ),
        f"/book/{slug}/account/logout",
    )


def _home(
    slug: str | None, viewer: Viewer, form: CodeForm | None = None, status: int = 200, **shown
):
    ctx = plugin_context(slug)
    user = viewer.user
    values: dict[str, Any] = {
        "slug": slug,
        "side": viewer.side,
        "logout_url": viewer.logout_url,
        "form": CodeForm(formdata=None) if form is None else form,
        "enrolled": authenticator.is_enrolled(ctx, user.id),
        "codes_left": authenticator.recovery_codes_left(ctx, user.id),
        **shown,
    }
    if not values["enrolled"] and "enrolment" not in values:
        values["enrolment"] = authenticator.start_enrolment(ctx, user, fresh=False)
    return viewer.render(status, values)


def _every_side(rule: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Serve a view at ``/admin/<slug>/two_factor/<rule>`` for staff, at
    ``/book/<slug>/two_factor/<rule>`` for clients and at ``/support/two_factor/<rule>`` for
    platform support (without a ``slug``)."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        pages.add_url_rule(
            f"/admin/<slug>/two_factor/{rule}",
            view_func=view,
            defaults={"side": "staff"},
            **options,
        )
        pages.add_url_rule(
            f"/book/<slug>/two_factor/{rule}",
            view_func=view,
            defaults={"side": "client"},
            **options,
        )
        pages.add_url_rule(
            f"/support/two_factor/{rule}",
            view_func=view,
            defaults={"side": "support"},
            **options,
        )
        return view

    return register


@_every_side("", methods=["GET"])
def home(side: str, slug: str | None = None):
    return _home(slug, _viewer(slug, side, setting_up=True))


@_every_side("confirm", methods=["POST"])
def confirm(side: str, slug: str | None = None):
    viewer = _viewer(slug, side, setting_up=True)
    form = CodeForm()
    if not form.validate_on_submit():
        return _home(slug, viewer, form, 422)
    ctx = plugin_context(slug)
    try:
        codes = authenticator.confirm_enrolment(ctx, viewer.user, form.code.data)
    except authenticator.EnrolmentMissing:
        return _home(
            slug, viewer, form, 409, error=gettext("That set-up lapsed: here is a new one.")
        )
    if codes is None:
        form.code.errors = [gettext("That code is not right: enter the code the app shows now.")]
        pending = authenticator.start_enrolment(ctx, viewer.user, fresh=False)
        return _home(slug, viewer, form, 422, enrolment=pending)
    _enrolled(ctx, viewer.user)
    return _home(slug, viewer, recovery_codes=codes, just_enrolled=True)


@_every_side("recovery-codes", methods=["POST"])
def recovery_codes(side: str, slug: str | None = None):
    viewer = _viewer(slug, side)
    form = CodeForm()
    ctx = plugin_context(slug)
    if not authenticator.is_enrolled(ctx, viewer.user.id):
        return _home(slug, viewer)
    if not form.validate_on_submit() or _page_proof(ctx, viewer.user, form, recovery=False):
        return _home(slug, viewer, form, 422)
    return _home(slug, viewer, recovery_codes=_renewed(ctx, viewer.user))


@_every_side("replace", methods=["POST"])
def replace(side: str, slug: str | None = None):
    """Move to another device: a current code (or recovery code), then a new set-up."""
    viewer = _viewer(slug, side)
    form = CodeForm()
    ctx = plugin_context(slug)
    if not authenticator.is_enrolled(ctx, viewer.user.id):
        return _home(slug, viewer)
    if not form.validate_on_submit() or _page_proof(ctx, viewer.user, form, recovery=True):
        return _home(slug, viewer, form, 422)
    enrolment = authenticator.start_enrolment(ctx, viewer.user)
    ctx.audit("enrolment.started", f"user:{viewer.user.id}")
    return _home(slug, viewer, enrolment=enrolment, replacing=True)


def _page_proof(ctx: Context, user: UserInfo, form: CodeForm, *, recovery: bool) -> bool:
    """True (refused) unless the form's code proves the current second factor; the reason is
    put under the field."""
    until = authenticator.reserve_attempt(ctx, user.id)
    if until is not None:
        form.code.errors = [
            gettext("Too many wrong codes: try again after %(time)s UTC.", time=until[:16])
        ]
        return True
    if authenticator.check_code(ctx, user.id, form.code.data, recovery=recovery) is None:
        form.code.errors = [gettext("That code is not right, or was already used.")]
        return True
    return False


# --- the owner's page: reset a staff member's set-up -----------------------------------------


@pages.get("/admin/<slug>/two_factor/staff")
def staff(slug: str):
    page = require_staff(slug, "plugins.manage")
    ctx = plugin_context(slug)
    people = sorted(authenticator.enrolled_staff(ctx).items(), key=lambda item: item[1]["email"])
    return render_staff_page(
        page, "two_factor/staff.html", slug=slug, people=people, form=FlaskForm(), **_done()
    )


def _done() -> dict[str, str]:
    done = request.args.get("reset", "")
    return {"reset_done": done} if done.isdigit() else {}


@pages.post("/admin/<slug>/two_factor/staff/<int:user_id>/reset")
def reset_staff(slug: str, user_id: int):
    page = require_staff(slug, "plugins.manage")
    if not FlaskForm().validate_on_submit():
        abort(400)
    ctx = plugin_context(slug)
    person = authenticator.enrolled_staff(ctx).get(user_id)
    if person is None:
        abort(404)
    authenticator.reset(ctx, user_id, person["email"])
    ctx.audit("reset", f"user:{user_id}", {"email": person["email"], "by": f"user:{page.user.id}"})
    notices.reset(ctx, person["email"], person["name"], page.user.name)
    return redirect(url_for(".staff", slug=slug, reset=user_id))
