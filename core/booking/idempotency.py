"""``Idempotency-Key``: a retried request gets the first answer instead of a second booking.

Keys are scoped to the tenant and kept for a day. Only successful answers are remembered: a
refused request booked nothing, so its retry is simply evaluated again.

A replay hands the first answer, manage token included, to whoever repeats the key and the
body, so a key must be unguessable: at least ``MIN_KEY_LENGTH`` characters (a random UUID has
36), and at most what the column holds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bookwell.core.storage import sealing
from bookwell.core.storage.models import IdempotencyKey

KEPT_FOR = timedelta(hours=24)
MIN_KEY_LENGTH = 16
MAX_KEY_LENGTH = IdempotencyKey.__table__.c.key.type.length
KEY_RULE = (
    f"Must be {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} printable characters that nobody could guess, "
    "such as a random UUID: a retry with the same key and body is given the first answer."
)


def key_problem(key: str) -> str | None:
    """What is wrong with ``key`` as an ``Idempotency-Key``, or ``None``."""
    if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        return KEY_RULE
    return None


class KeyReused(Exception):
    """The key was used before for a different request."""


class Replay(Exception):
    """The key was used before for this very request: answer what was answered then."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def lookup(session: Session, tenant_id: int, key: str, fingerprint: str, now: datetime) -> None:
    """Raise :class:`Replay` or :class:`KeyReused` if ``key`` is live; return if it is unused."""
    row = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at > now - KEPT_FOR,
        )
    )
    if row is None:
        return
    if row.request_hash != fingerprint:
        raise KeyReused(key)
    raise Replay(row.response_status, json.loads(sealing.unseal(row.response_body)))


def claim(
    session: Session, tenant_id: int, key: str, fingerprint: str, now: datetime
) -> IdempotencyKey:
    """Inside the booking's transaction: check the key again and hold it for this request."""
    lookup(session, tenant_id, key, fingerprint, now)
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.created_at <= now - KEPT_FOR
        )
    )
    row = IdempotencyKey(
        tenant_id=tenant_id,
        key=key,
        request_hash=fingerprint,
        response_status=0,
        response_body="{}",
        created_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as error:
        raise ConcurrentClaim(key) from error
    return row


class ConcurrentClaim(Exception):
    """Another request holding the same key committed first; look it up again and replay."""


def complete(row: IdempotencyKey, status: int, body: dict[str, Any]) -> None:
    """Remember the answer, sealed: it holds the manage token, which is otherwise only hashed."""
    row.response_status = status
    row.response_body = sealing.seal(json.dumps(body))
