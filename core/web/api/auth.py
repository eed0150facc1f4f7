"""Logging in and out through the API, and who is calling: ``Authorization: Bearer`` only.

A bearer is a session token (from ``/auth/login``; scoped to its tenant, expiring, revoked by
``/auth/logout``) or an API key (made with ``bookwell tokens create``), found by the request
loader behind Flask-Login's ``current_user`` (:mod:`bookwell.core.web.identity`). Cookies are
never read here, so the API needs no CSRF token.

A login that every ``before_login`` refusal let through with a ``grant_scope``, or whose
password the current rules refuse (``password_change``), answers 200 with a token restricted to
that scope, and says why (``code``, ``message``). Such a token may log out,
and a ``password_change`` one may change the password here, which asks the guards again: the
same token then becomes full (or takes the next restriction, or ends when a guard now asks for
more, such as a one-time code).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from bookwell.core import audit
from bookwell.core.access import login, sessions, users
from bookwell.core.access.permissions import Subject, may
from bookwell.core.context import make_context
from bookwell.core.foundation import clock
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Role, Tenant
from bookwell.core.web import identity
from bookwell.core.web.api import bodies
from bookwell.core.web.api.errors import ApiError, json_safe, refusal_body, retry_later
from bookwell.core.web.api.schemas import Body, Email, Password, PasswordChangeIn, Token
from bookwell.core.web.ratelimits import rate_limited
from bookwell.core.web.request_tenant import current_tenant

tenant_auth = Blueprint("tenant_auth_api", __name__, url_prefix="/api/v1/tenants/<slug>/auth")
platform_auth = Blueprint("auth_api", __name__, url_prefix="/api/v1/auth")


class LoginIn(Body):
    email: Email
    password: Password
    otp: Token | None = None


def caller() -> identity.SignedInRows | None:
    """The authenticated caller of this request (Flask-Login's ``current_user``, found by its
    bearer), with its rows; ``None`` for nobody. A bad bearer is a 401."""
    return identity.signed_in_rows()


def require(
    tenant: Tenant, permission: str | tuple[str, ...], scope: str, *, subject: Subject = None
) -> identity.SignedInRows:
    """The caller, if they may use ``permission`` on ``tenant``'s data: the one check for the API.

    No bearer -> 401. A user of another tenant -> 404 (their token must not even confirm that
    the booking exists). Neither their role nor an active grant (on everything, or on
    ``subject``: ``client:<e-mail>``, or a callable finding it) gives the permission (one of
    them, for several) -> 403. Then the tenant's
    ``before_data_access`` guards; platform support's every attempt is audited.
    """
    who = caller()
    if who is None:
        raise ApiError(401, "unauthorized", "Log in first: Authorization: Bearer <token>.")
    user = who.user
    support = user.role == Role.SUPPORT
    if not support and user.tenant_id != tenant.id:
        raise ApiError(404, "not_found", "Not found.")
    app, now, reader = current_app._get_current_object(), clock.now(), db.session()
    ctx = make_context(tenant, now, actor=user)
    if not may(reader, user, tenant.id, permission, now=now, subject=subject):
        if support:
            audit_support(app, ctx, "support.access_refused", scope, "role")
        raise ApiError(403, "forbidden", "Your role does not allow this.")
    host = host_of(app)
    try:
        host.guard(
            "before_data_access",
            ctx,
            host.enabled_for(reader, tenant.id),
            host.broken_enabled_for(reader, tenant.id),
            scope=scope,
        )
    except Exception:
        if support:
            audit_support(app, ctx, "support.access_refused", scope, "before_data_access")
        raise
    if support:
        audit_support(app, ctx, "support.access", scope, None)
    return who


def audit_support(app, ctx, action: str, scope: str, refused_by: str | None) -> None:
    """Platform support's use of a tenant's data, or its refusal, in the tenant's trail (the
    API's and the staff pages' alike)."""
    details = {"path": request.path, "method": request.method}
    if refused_by:
        details["refused_by"] = refused_by
    audit.audit_separately(app, ctx, action, f"scope:{scope}", details)


def tenant_or_404(slug: str) -> Tenant:
    tenant = current_tenant(slug)
    if tenant is None:
        raise ApiError(404, "not_found", "No such business.")
    return tenant


@tenant_auth.post("/login")
@rate_limited("login")
def log_in(slug: str):
    tenant = tenant_or_404(slug)
    payload = bodies.read(LoginIn)
    answers = {"otp": payload.otp} if payload.otp else {}
    try:
        done = login.log_in(
            current_app._get_current_object(),
            tenant=tenant,
            email=payload.email,
            password=payload.password,
            answers=answers,
            kind="api",
            now=clock.now(),
        )
    except login.LoginRefused as refused:
        return refused_login(refused)
    body: dict[str, Any] = {
        "token": done.secret,
        "expires_at": done.session.expires_at.isoformat(),
        "scope": f"tenant:{tenant.slug}",
        "role": done.user.role,
    }
    if done.grant is not None:
        body.update(grant_body(done.grant))
    return jsonify(body)


def refused_login(refused: login.LoginRefused):
    """A refused login's answer: 401 with the code (503 ``plugin_failed`` with Retry-After),
    the first refusal's ``details``, ``fields``, the ``challenge`` and every refusal."""
    body: dict[str, Any] = {"code": refused.code, "message": refused.message}
    if refused.refusals:
        body.update(refusal_body(refused.refusals))
    if refused.challenge:
        body["challenge"] = dict(refused.challenge)
    response = jsonify(error=body)
    response.status_code = refused.status
    return retry_later(response, refused.code)


def grant_body(grant: login.Grant) -> dict[str, Any]:
    """What a restricted login says beside its token: the scope it may use, and why."""
    body: dict[str, Any] = {"scope": grant.scope, "code": grant.code, "message": grant.message}
    if grant.details:
        body["details"] = json_safe(grant.details)
    body["refusals"] = refusal_body(grant.refusals)["refusals"]
    return body


def _session_caller(restricted: bool = False) -> identity.SignedInRows:
    """The caller; with ``restricted``, a restricted session too (only the routes that
    :mod:`bookwell.core.web.identity` opens to it ask for one)."""
    who = caller() or (identity.restricted_rows() if restricted else None)
    if who is None:
        raise ApiError(401, "unauthorized", "Log in first: Authorization: Bearer <token>.")
    return who


@platform_auth.post("/logout")
def log_out():
    who = _session_caller(restricted=True)
    if who.session is None:
        raise ApiError(400, "not_a_session", "API keys are revoked with `bookwell tokens revoke`.")
    login.log_out(current_app._get_current_object(), who.session.id, who.user, clock.now())
    return jsonify(status="logged_out")


@platform_auth.get("/sessions")
def my_sessions():
    who = _session_caller()
    rows = sessions.active_sessions(db.session(), who.user.id, clock.now())
    return jsonify(
        [
            {
                "id": row.id,
                "kind": row.kind,
                "created_at": row.created_at.isoformat(),
                "last_seen_at": row.last_seen_at.isoformat(),
                "expires_at": row.expires_at.isoformat(),
                "ip": row.ip,
                "user_agent": row.user_agent,
                "current": who.session is not None and row.id == who.session.id,
            }
            for row in rows
        ]
    )


@platform_auth.post("/sessions/<int:session_id>/revoke")
def end_session(session_id: int):
    who = _session_caller()
    owned = {row.id for row in sessions.active_sessions(db.session(), who.user.id, clock.now())}
    if session_id not in owned:
        raise ApiError(404, "not_found", "No such session of yours.")
    with db.write_transaction() as writer:
        sessions.revoke(writer, session_id, clock.now())
        audit.record(
            writer,
            tenant_id=who.user.tenant_id,
            actor=who.user.audit_label,
            ip=request.remote_addr,
            action="session.revoked",
            subject=f"session:{session_id}",
            now=clock.now(),
        )
    return jsonify(status="revoked")


@platform_auth.post("/password")
@rate_limited("login")
def change_password():
    who = _session_caller(restricted=True)
    payload = bodies.read(PasswordChangeIn)
    app, now = current_app._get_current_object(), clock.now()
    tenant = db.session().get(Tenant, who.user.tenant_id) if who.user.tenant_id else None
    try:
        login.check_current_password(
            app, tenant=tenant, user=who.user, password=payload.current_password, now=now
        )
    except login.LoginRefused as refused:
        if refused.code != login.INVALID_CREDENTIALS:
            return refused_login(refused)  # e.g. 401 locked, whatever the password
        raise ApiError(
            403,
            "invalid_credentials",
            refused.message,
            {"current_password": "Not right."},
        ) from None
    try:
        changed = users.change_password(
            app,
            who.user,
            payload.new_password,
            now,
            keep_session_id=who.session.id if who.session else None,
        )
    except users.UserError as error:
        raise ApiError(422, "invalid", error.message, error.fields) from error
    body: dict[str, Any] = {
        "status": "changed",
        "other_sessions_ended": changed.sessions_ended,
        "api_keys_revoked": changed.api_keys_revoked,
    }
    if who.session is not None and who.session.scope:
        body.update(_reassessed(app, who, now))
    return jsonify(body)


def _reassessed(app, who: identity.SignedInRows, now) -> dict[str, Any]:
    """A restricted session changed the password: the guards say what the token is now."""
    tenant = db.session().get(Tenant, who.user.tenant_id) if who.user.tenant_id else None
    try:
        grant = login.reassess(
            app, tenant=tenant, user=who.user, session_id=who.session.id, now=now
        )
    except login.LoginRefused as refused:
        # The password is changed all the same; the token has ended: log in again.
        return {"session": "ended", "code": refused.code, "message": refused.message}
    if grant is not None:
        return {"session": "restricted", **grant_body(grant)}
    return {"session": "full", "scope": f"tenant:{tenant.slug}" if tenant else "platform"}
