"""Client accounts: single-use links (e-mail verification, password reset) and their e-mails.

A link's secret is random; only its SHA-256 is stored (:class:`UserToken`). Consuming a link is
one conditional UPDATE (``used_at IS NULL AND expires_at > now``) in a write transaction, so a
link works once even when two requests race for it. Every e-mail is enqueued in the transaction
that creates its link, and delivery is nudged after the commit.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bookwell.core import audit
from bookwell.core.access import users
from bookwell.core.context import make_context, request_info
from bookwell.core.mail import compose, dispatch, outbox
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Role, Tenant, User, UserToken

log = logging.getLogger("bookwell.accounts")

VERIFY_EMAIL, RESET_PASSWORD = "verify_email", "reset_password"
LIFETIMES = {VERIFY_EMAIL: timedelta(hours=48), RESET_PASSWORD: timedelta(hours=1)}
MAIL_KINDS = {VERIFY_EMAIL: compose.ACCOUNT_VERIFY, RESET_PASSWORD: compose.ACCOUNT_RESET}


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(writer: Session, user: User, purpose: str, now: datetime) -> str:
    """A new link for ``user`` in the caller's transaction; returns its secret (never stored)."""
    if purpose not in LIFETIMES:
        raise ValueError(f"unknown purpose {purpose!r}")
    secret = secrets.token_urlsafe(32)
    writer.add(
        UserToken(
            user_id=user.id,
            purpose=purpose,
            secret_hash=digest(secret),
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    return secret


def _well_formed(secret: str) -> bool:
    return 0 < len(secret) <= 200 and secret.isascii()


def peek(session: Session, purpose: str, secret: str, now: datetime) -> User | None:
    """The user of a link that is still usable (not used, not expired), without using it."""
    if not _well_formed(secret):
        return None
    token = session.scalar(
        select(UserToken).where(
            UserToken.secret_hash == digest(secret),
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
    )
    return session.get(User, token.user_id) if token is not None else None


def _consume(
    writer: Session, tenant: Tenant, purpose: str, secret: str, now: datetime
) -> int | None:
    """Use the link in the caller's write transaction; the user's id, or ``None`` when the
    link is unknown (here), used or expired. Exactly one of two racing callers gets the id."""
    if not _well_formed(secret):
        return None
    hashed = digest(secret)
    user_id = writer.scalar(
        select(UserToken.user_id)
        .join(User, User.id == UserToken.user_id)
        .where(
            UserToken.secret_hash == hashed,
            UserToken.purpose == purpose,
            User.tenant_id == tenant.id,
        )
    )
    if user_id is None:
        return None
    result = writer.execute(
        update(UserToken)
        .where(
            UserToken.secret_hash == hashed,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return user_id if result.rowcount == 1 else None


def verify_email(app: Flask, tenant: Tenant, secret: str, now: datetime) -> int | None:
    """Use a verification link: the id of the user, now verified, or ``None``."""
    with db.write_transaction(app) as writer:
        user_id = _consume(writer, tenant, VERIFY_EMAIL, secret, now)
        user = writer.get(User, user_id) if user_id is not None else None
        if user is None:
            return None
        if user.email_verified_at is None:
            user.email_verified_at = now
            _audit(writer, user, "user.email_verified", now)
        return user.id


def reset_password(
    app: Flask, tenant: Tenant, secret: str, new_password: str, now: datetime
) -> users.PasswordChanged | None:
    """Use a reset link and set the new password, ending every session of the user and
    revoking their API keys (what it ended is returned); ``None`` when the link is unusable.
    Raises :class:`users.UserError` (the link left unused) when the password breaks a rule."""
    reader = db.session()
    user = peek(reader, RESET_PASSWORD, secret, now)
    if user is None or user.tenant_id != tenant.id:
        return None
    problems = users.password_problems(app, reader, tenant, new_password, now, user=user)
    if problems:
        raise users.UserError("the password is not accepted", {"new_password": problems})
    with db.write_transaction(app) as writer:
        if _consume(writer, tenant, RESET_PASSWORD, secret, now) != user.id:
            return None
        stored = writer.get(User, user.id)
        if stored.email_verified_at is None:
            # The link reached the address: that confirms it as well.
            stored.email_verified_at = now
            _audit(writer, stored, "user.email_verified", now)
    return users.change_password(app, user, new_password, now, keep_session_id=None)


def _audit(writer: Session, user: User, action: str, now: datetime) -> None:
    info = request_info()
    audit.record(
        writer,
        tenant_id=user.tenant_id,
        actor=user.audit_label,
        ip=info.ip if info else None,
        action=action,
        subject=f"user:{user.id}",
        now=now,
    )


def link(app: Flask, tenant: Tenant, purpose: str, secret: str) -> str:
    base = str(app.config["BASE_URL"]).rstrip("/")
    path = "verify" if purpose == VERIFY_EMAIL else "reset"
    return f"{base}/book/{tenant.slug}/account/{path}/{secret}"


def send_link(app: Flask, tenant: Tenant, user: User, purpose: str, now: datetime) -> None:
    """A new link for ``user`` and its e-mail, in one transaction; then delivery is nudged."""
    ctx = make_context(tenant, now)
    enabled = host_of(app).enabled_for(db.session(), tenant.id)
    with db.write_transaction(app) as writer:
        secret = issue(writer, user, purpose, now)
        message = compose.account_message(
            app,
            tenant,
            MAIL_KINDS[purpose],
            to=user.email,
            name=user.name,
            url=link(app, tenant, purpose, secret),
        )
        held = None
        try:
            message = dispatch.filtered(app, ctx, enabled, message)
        except dispatch._Held as stop:  # noqa: SLF001 - the same rule as booking mail
            held = stop.reason
        outbox.enqueue(writer, message, tenant.id, None, now, held=held)
    dispatch.kick(app)


def client_of(tenant: Tenant, email: str) -> User | None:
    user = users.find_user(db.session(), tenant.id, email)
    if user is None or user.role != Role.CLIENT or not user.active:
        return None
    return user


def register(
    app: Flask, tenant: Tenant, *, email: str, password: str, name: str, now: datetime
) -> User | None:
    """Create an unverified client and send the verification link. For an address that already
    has an account nothing is created and nothing sent (``None``): the caller answers the same,
    so registering cannot tell who has an account. Raises :class:`users.UserError` otherwise."""
    try:
        user = users.create_user(
            app,
            tenant_id=tenant.id,
            email=email,
            role=Role.CLIENT,
            password=password,
            name=name,
            now=now,
            actor=f"client:{users.canonical_email(email)}",
            email_verified=False,
        )
    except users.UserError as error:
        if error.fields.get("email") == ["Taken."]:
            return None
        raise
    send_link(app, tenant, user, VERIFY_EMAIL, now)
    return user


def resend_verification(app: Flask, tenant: Tenant, email: str, now: datetime) -> None:
    """A new verification link, only to an unverified client account; silent otherwise."""
    user = client_of(tenant, email)
    if user is not None and user.email_verified_at is None:
        send_link(app, tenant, user, VERIFY_EMAIL, now)


def request_reset(app: Flask, tenant: Tenant, email: str, now: datetime) -> None:
    """A reset link, only to an existing client account; silent otherwise."""
    user = client_of(tenant, email)
    if user is not None:
        send_link(app, tenant, user, RESET_PASSWORD, now)
