"""Server-side sessions for browsers (a cookie) and API clients (a bearer token), and API keys.

The client holds a random secret; the database holds its SHA-256, so a stolen database holds no
usable session. Sessions end at logout, after the idle or absolute timeout (the strictest of the
instance's and the tenant's plugins'), and when the password changes. A password change
revokes the user's API keys too: whoever learned the old password may have made one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bookwell.core.access import support
from bookwell.core.context import make_context
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import ApiKey, AuthSession, Tenant, User
from bookwell.hooks import SessionLimits

SESSION_PREFIX = "bws_"
API_KEY_PREFIX = "bwk_"
# Writing "last seen" on every request would make every read a write: 15 seconds' precision
# (a session may end that much early) is plenty for a 30-minute idle timeout.
LAST_SEEN_PRECISION = timedelta(seconds=15)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Limits:
    idle_minutes: int
    absolute_minutes: int


def limits_for(
    app: Flask, session: Session, tenant: Tenant | None, now: datetime, user: User | None = None
) -> Limits:
    """The instance's defaults, tightened by every ``session_limits`` of the tenant's plugins
    (platform support's: the instance's support plugins). ``user`` is whose session it is
    (``ctx.actor``), when known."""
    idle = int(app.config["SESSION_IDLE_MINUTES"])
    absolute = int(app.config["SESSION_ABSOLUTE_MINUTES"])
    host = host_of(app)
    if tenant is not None:
        enabled = host.enabled_for(session, tenant.id)
        ctx = make_context(tenant, now, actor=user)
    else:
        enabled = support.support_plugins(app).enabled
        ctx = support.context(app, now, actor=user) if enabled else None
    if ctx is not None:
        for _, limits in host.contributions("session_limits", ctx, enabled):
            if isinstance(limits, SessionLimits):
                if limits.idle_minutes:
                    idle = min(idle, limits.idle_minutes)
                if limits.absolute_minutes:
                    absolute = min(absolute, limits.absolute_minutes)
    return Limits(idle, absolute)


def start(
    writer: Session,
    user: User,
    *,
    kind: str,
    limits: Limits,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
    scope: str | None = None,
) -> tuple[AuthSession, str]:
    """A fresh session (never a reused id: fixation is impossible). Returns it and its secret.
    ``scope`` restricts it (see :mod:`bookwell.core.access.login`); ``None`` is full access."""
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    row = AuthSession(
        user_id=user.id,
        kind=kind,
        secret_hash=digest(secret),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(minutes=limits.absolute_minutes),
        idle_minutes=limits.idle_minutes,
        ip=ip,
        user_agent=(user_agent or "")[:300] or None,
        scope=scope,
    )
    writer.add(row)
    writer.flush()
    return row, secret


def is_live(row: AuthSession, now: datetime, limits: Limits | None = None) -> bool:
    """Not revoked, and within its timeouts: those it started with, or stricter ones that a
    plugin enabled since imposes (``limits``)."""
    idle, expires_at = row.idle_minutes, row.expires_at
    if limits is not None:
        idle = min(idle, limits.idle_minutes)
        expires_at = min(expires_at, row.created_at + timedelta(minutes=limits.absolute_minutes))
    return (
        row.revoked_at is None
        and now < expires_at
        and now < row.last_seen_at + timedelta(minutes=idle)
    )


def resolve(app: Flask, reader: Session, secret: str, kind: str, now: datetime):
    """The live session and its user for ``secret``, touching "last seen"; else ``None``."""
    if not secret.startswith(SESSION_PREFIX):
        return None
    row = reader.scalar(select(AuthSession).where(AuthSession.secret_hash == digest(secret)))
    if row is None or row.kind != kind or not is_live(row, now):
        return None
    user = reader.get(User, row.user_id)
    if user is None or not user.active:
        return None
    tenant = reader.get(Tenant, user.tenant_id) if user.tenant_id is not None else None
    if not is_live(row, now, limits_for(app, reader, tenant, now, user)):
        return None
    if now - row.last_seen_at >= LAST_SEEN_PRECISION:
        with db.write_transaction(app) as writer:
            writer.execute(
                update(AuthSession).where(AuthSession.id == row.id).values(last_seen_at=now)
            )
    return row, user


def resolve_api_key(app: Flask, reader: Session, secret: str, now: datetime):
    if not secret.startswith(API_KEY_PREFIX):
        return None
    key = reader.scalar(select(ApiKey).where(ApiKey.secret_hash == digest(secret)))
    if key is None or key.revoked_at is not None:
        return None
    user = reader.get(User, key.user_id)
    if user is None or not user.active:
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_SEEN_PRECISION:
        with db.write_transaction(app) as writer:
            writer.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return key, user


def revoke(writer: Session, session_id: int, now: datetime) -> None:
    writer.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_all_but(writer: Session, user_id: int, keep_id: int | None, now: datetime) -> int:
    query = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep_id is not None:
        query = query.where(AuthSession.id != keep_id)
    return writer.execute(query.values(revoked_at=now)).rowcount


def revoke_api_keys(writer: Session, user_id: int, now: datetime) -> list[ApiKey]:
    """Revoke every live API key of the user; returns those revoked (for the audit trail)."""
    keys = list(
        writer.scalars(
            select(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.id)
        )
    )
    for key in keys:
        key.revoked_at = now
    writer.flush()
    return keys


def active_sessions(reader: Session, user_id: int, now: datetime) -> list[AuthSession]:
    rows = reader.scalars(
        select(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .order_by(AuthSession.created_at.desc())
    )
    return [row for row in rows if is_live(row, now)]


def create_api_key(writer: Session, user: User, now: datetime) -> tuple[ApiKey, str]:
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(user_id=user.id, prefix=secret[:12], secret_hash=digest(secret), created_at=now)
    writer.add(key)
    writer.flush()
    return key, secret
