"""The one login path, for the pages and the API alike.

Password first (an unknown e-mail costs and answers exactly as a wrong password), then every
enabled plugin's ``before_login`` guard, which may ask for a further step (a ``challenge``); the
caller repeats the login with the answers. Then a fresh session, ``after_login``, and the audit.
A refusal runs ``after_login_failed`` (where a plugin counts failures, in its own transaction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import update

from bookwell.core import audit
from bookwell.core.access import passwords, sessions
from bookwell.core.access.users import canonical_email, find_user
from bookwell.core.context import make_context, request_info
from bookwell.core.pluginhost.host import Refused, host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import PLATFORM_REALM, Tenant, User
from bookwell.hooks import LoginAttempt

INVALID_CREDENTIALS = "invalid_credentials"


class LoginRefused(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        challenge: Mapping[str, Any] | None = None,
        refusals: list[dict[str, Any]] | None = None,
        status: int = 401,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.challenge = code, message, challenge
        self.refusals, self.status = refusals or [], status


@dataclass(frozen=True)
class LoggedIn:
    user: User
    session: Any
    secret: str


def log_in(
    app: Flask,
    *,
    tenant: Tenant | None,
    email: str,
    password: str,
    answers: Mapping[str, str],
    kind: str,
    now: datetime,
) -> LoggedIn:
    """Password, then the guards, then a fresh session: the whole login in one call (API)."""
    user = check_password(app, tenant=tenant, email=email, password=password, now=now)
    return finish(
        app, tenant=tenant, user=user, answers=answers, kind=kind, now=now, password=password
    )


def check_password(
    app: Flask, *, tenant: Tenant | None, email: str, password: str, now: datetime
) -> User:
    """The first step: the user whose password this is, or :class:`LoginRefused`."""
    reader = db.session()
    address = canonical_email(email)
    user = find_user(reader, tenant.id if tenant else None, address)
    usable = user is not None and user.active
    # Always one argon2 verification: against the decoy hash when there is no such user.
    password_ok = passwords.passwords(app).verify(user.password_hash if usable else None, password)
    if not (password_ok and usable):
        ctx, enabled = _context(app, tenant, user if usable else None, address, {}, now)
        _failed(app, ctx, enabled, tenant, address, INVALID_CREDENTIALS, now)
        raise LoginRefused(INVALID_CREDENTIALS, "The e-mail or the password is not right.")
    return user


def _context(app, tenant, user, address, answers, now):
    if tenant is None:
        return None, {}
    attempt = LoginAttempt(
        email=address,
        user_id=user.id if user else None,
        role=user.role if user else None,
        answers=dict(answers),
    )
    enabled = host_of(app).enabled_for(db.session(), tenant.id)
    return make_context(tenant, now, actor=user, login=attempt), enabled


def finish(
    app: Flask,
    *,
    tenant: Tenant | None,
    user: User,
    answers: Mapping[str, str],
    kind: str,
    now: datetime,
    password: str | None = None,
) -> LoggedIn:
    """The further steps: every ``before_login`` guard (with the answers to earlier
    challenges), then a fresh session. ``password``, when known, lets an outdated hash be
    upgraded to the current argon2 parameters."""
    reader = db.session()
    host = host_of(app)
    ctx, enabled = _context(app, tenant, user, user.email, answers, now)
    if tenant is not None:
        try:
            host.guard("before_login", ctx, enabled, host.broken_enabled_for(reader, tenant.id))
        except Refused as refused:
            first = refused.first
            challenge = next(
                (item.refusal.challenge for item in refused.refusals if item.refusal.challenge),
                None,
            )
            _failed(app, ctx, enabled, tenant, user.email, first.code, now)
            raise LoginRefused(
                first.code,
                first.message,
                challenge=challenge,
                refusals=[
                    {
                        "plugin": item.plugin,
                        "code": item.refusal.code,
                        "message": item.refusal.message,
                        "field": item.refusal.field,
                    }
                    for item in refused.refusals
                ],
                # A refused login is a 401 whatever the plugin chose, unless a check could not
                # run at all (plugin_failed), which is the service's fault, not the user's.
                status=503 if first.code == "plugin_failed" else 401,
            ) from None
    limits = sessions.limits_for(app, reader, tenant, now)
    info = request_info()
    hasher = passwords.passwords(app)
    rehashed = password is not None and hasher.needs_rehash(user.password_hash)
    new_hash = hasher.hash(password) if rehashed else None
    with db.write_transaction(app) as writer:
        if new_hash is not None:
            writer.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
        row, secret = sessions.start(
            writer,
            user,
            kind=kind,
            limits=limits,
            now=now,
            ip=info.ip if info else None,
            user_agent=info.user_agent if info else None,
        )
        audit.record(
            writer,
            tenant_id=user.tenant_id,
            actor=user.audit_label,
            ip=info.ip if info else None,
            action="login.succeeded",
            subject=f"user:{user.id}",
            details={"kind": kind, "rehashed": rehashed},
            now=now,
        )
    if ctx is not None:
        host.event("after_login", ctx, enabled)
    return LoggedIn(user, row, secret)


def _failed(app, ctx, enabled, tenant, address, reason, now) -> None:
    if ctx is not None:
        host_of(app).event("after_login_failed", ctx, enabled, reason=reason)
    info = request_info()
    audit.record_separately(
        app,
        tenant_id=tenant.id if tenant else None,
        actor=f"login:{address}"[:200],
        ip=info.ip if info else None,
        action="login.failed",
        subject=f"realm:{tenant.slug if tenant else PLATFORM_REALM}",
        details={"reason": reason},
        now=now,
    )


def log_out(app: Flask, session_id: int, user: User, now: datetime) -> None:
    with db.write_transaction(app) as writer:
        sessions.revoke(writer, session_id, now)
        info = request_info()
        audit.record(
            writer,
            tenant_id=user.tenant_id,
            actor=user.audit_label,
            ip=info.ip if info else None,
            action="logout",
            subject=f"user:{user.id}",
            now=now,
        )
