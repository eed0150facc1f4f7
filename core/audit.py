"""The audit trail: who did what, when (UTC), from which IP, on what; tamper-evident.

Every tenant has its own chain of entries (platform-level events have one of their own), numbered
1, 2, 3, ... Each entry stores the SHA-256 of its own content, and that content includes the hash
of the entry before it (64 zeros for the first). Editing an entry changes its hash; removing one
leaves a gap in the numbering; inserting one breaks the link to its neighbour. :func:`verify`
walks a chain and names the first entry that does not hold.

Writing an entry:

* about a change that commits: :func:`audit` (or :func:`record`) with the change's own session,
  after the change is flushed, so entry and change commit or roll back together;
* about a refusal, whose transaction rolls back: :func:`audit_separately` (or
  :func:`record_separately`) *after* that transaction has ended; it commits on its own.

Appends never fork a chain: on SQLite the caller's
:func:`~bookwell.core.storage.db.write_transaction`
already holds the database's write lock (``BEGIN IMMEDIATE``) before the chain's head is read; on
PostgreSQL a transaction-scoped advisory lock per chain is taken first. ``UNIQUE(chain, sequence)``
is the backstop. On PostgreSQL the lock is held until commit, so audit last in a transaction.

Details never carry secrets: the value of any key that looks like a password, code, token, OTP,
PIN, secret, key, cookie or session id is replaced by ``"[redacted]"``, at any depth.

The hashes are unkeyed: they reveal accidental or naive tampering, not a writer who recomputes
every hash after the one they changed, nor the removal of the newest entries. Keep the head hash
that ``bookwell audit verify`` prints somewhere else to catch those too.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from flask import Flask
from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry

PLATFORM_CHAIN = "platform"
GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"
HASH_FORMAT = "bookwell-audit-1"  # first element of every hashed content, so it can evolve

MAX_ACTOR, MAX_IP, MAX_ACTION, MAX_SUBJECT = 320, 45, 100, 200

# A key is secret when one of these occurs anywhere in it ...
_SECRET_FRAGMENTS = (
    "password",
    "passwd",
    "passphrase",
    "token",
    "secret",
    "apikey",
    "privatekey",
    "credential",
    "cookie",
    "authorization",
    "sessionid",
    "csrf",
)
# ... or when one of its words (split on _, -, spaces, dots and camelCase) is one of these.
_SECRET_WORDS = frozenset(
    {"code", "codes", "otp", "totp", "hotp", "pin", "pwd", "cvc", "cvv", "key", "keys", "salt"}
)
_WORD_BREAK = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on one chain (``chain``), or on all of them (``chain == "*"``, see ``chains``).

    ``checked`` counts the entries found intact (before the first bad one); ``first_bad`` is the
    sequence number of the first bad entry and ``first_bad_id`` its row id (``None`` when it is
    missing); ``head_hash`` is the hash of the last entry of an intact chain.
    """

    chain: str
    ok: bool
    checked: int
    first_bad: int | None = None
    first_bad_id: int | None = None
    reason: str | None = None
    head_hash: str | None = None
    chains: tuple[VerifyResult, ...] = ()


def chain_of(tenant_id: int | None) -> str:
    return PLATFORM_CHAIN if tenant_id is None else f"tenant:{int(tenant_id)}"


def tenant_of(chain: str) -> int | None:
    if chain == PLATFORM_CHAIN:
        return None
    prefix, _, number = chain.partition(":")
    if prefix != "tenant" or not number.isdigit():
        raise ValueError(f"not an audit chain: {chain!r}")
    return int(number)


# --- what goes in --------------------------------------------------------------------------------


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    squashed = _WORD_BREAK.sub("", lowered)
    if any(fragment in squashed for fragment in _SECRET_FRAGMENTS):
        return True
    words = _WORD_BREAK.split(_CAMEL.sub("_", key).lower())
    return any(word in _SECRET_WORDS for word in words)


def scrub(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-ready copy of ``details`` with every secret-looking key's value redacted.

    Instants become ISO 8601 in UTC (naive ones are refused), dates and times ISO 8601, enums
    their value, tuples and sets lists; anything else that JSON cannot hold raises ``TypeError``.
    """
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise TypeError(f"audit details must be a mapping, not {type(details).__name__}")
    return _clean(details)


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        cleaned = {}
        for key, item in value.items():
            name = key.value if isinstance(key, enum.Enum) else str(key)
            cleaned[name] = REDACTED if is_secret_key(name) else _clean(item)
        return cleaned
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_clean(item) for item in value), key=_canonical)
    if isinstance(value, enum.Enum):
        return _clean(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("audit details cannot hold NaN or infinity")
        return value
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"audit details cannot hold a {type(value).__name__}")


def _canonical(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are refused: every instant carries its zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _ip(ip: str | None) -> str | None:
    if ip is None or not str(ip).strip():
        return None
    raw = str(ip).strip()
    try:
        return ipaddress.ip_address(raw).compressed
    except ValueError:
        return raw[:MAX_IP]  # keep what the proxy told us rather than lose the entry


def _label(value: str, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"the audit {name} must be a non-empty string")
    if len(value) > limit:
        raise ValueError(f"the audit {name} is longer than {limit} characters: {value[:40]!r}...")
    return value


def entry_hash(
    *,
    chain: str,
    sequence: int,
    at: datetime,
    actor: str,
    ip: str | None,
    action: str,
    subject: str,
    details: str,
    previous_hash: str,
) -> str:
    """SHA-256 (hex) of an entry's canonical content; ``details`` is the stored JSON text."""
    content = [
        HASH_FORMAT,
        chain,
        sequence,
        _instant(at),
        actor,
        ip,
        action,
        subject,
        details,
        previous_hash,
    ]
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def _hash_of(entry: AuditEntry) -> str:
    return entry_hash(
        chain=entry.chain,
        sequence=entry.sequence,
        at=entry.at,
        actor=entry.actor,
        ip=entry.ip,
        action=entry.action,
        subject=entry.subject,
        details=entry.details,
        previous_hash=entry.previous_hash,
    )


# --- appending -----------------------------------------------------------------------------------


def _lock_chain(session: Session, chain: str) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: the caller's BEGIN IMMEDIATE already serialises every writer
    digest = hashlib.sha256(f"bookwell.audit:{chain}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def record(
    session: Session,
    *,
    tenant_id: int | None,
    actor: str,
    ip: str | None,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    now: datetime,
) -> AuditEntry:
    """Append an entry to ``tenant_id``'s chain (the platform's when ``None``) in ``session``'s
    transaction, and flush it. Secret-looking details are redacted first."""
    chain = chain_of(tenant_id)
    actor = _label(actor, "actor", MAX_ACTOR)
    action = _label(action, "action", MAX_ACTION)
    subject = _label(subject, "subject", MAX_SUBJECT)
    ip = _ip(ip)
    details_text = _canonical(scrub(details))
    _instant(now)  # refuses a naive instant before anything is written
    at = now.astimezone(UTC)

    _lock_chain(session, chain)
    head = session.execute(
        select(AuditEntry.sequence, AuditEntry.entry_hash)
        .where(AuditEntry.chain == chain)
        .order_by(AuditEntry.sequence.desc())
        .limit(1)
    ).first()
    sequence, previous_hash = (head.sequence + 1, head.entry_hash) if head else (1, GENESIS_HASH)
    entry = AuditEntry(
        chain=chain,
        tenant_id=tenant_id,
        sequence=sequence,
        at=at,
        actor=actor,
        ip=ip,
        action=action,
        subject=subject,
        details=details_text,
        previous_hash=previous_hash,
    )
    entry.entry_hash = _hash_of(entry)
    session.add(entry)
    session.flush()
    return entry


def record_separately(
    app: Flask,
    *,
    tenant_id: int | None,
    actor: str,
    ip: str | None,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    now: datetime,
) -> AuditEntry:
    """:func:`record` in a write transaction of its own, committed on return.

    For refusals whose own transaction rolls back. Call it only once that transaction has ended:
    on SQLite it would otherwise wait for the write lock its own thread holds.
    """
    with db.write_transaction(app) as session:
        return record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            ip=ip,
            action=action,
            subject=subject,
            details=details,
            now=now,
        )


def actor_label(actor: Any) -> str:
    """How an actor is written in the trail: a string as it is, ``None`` as ``"anonymous"``, an
    object by its ``audit_label`` or else its ``id`` (``"user:<id>"``). Never ``str()`` of an
    object, which could carry anything."""
    if actor is None:
        return "anonymous"
    if isinstance(actor, str):
        return actor
    label = getattr(actor, "audit_label", None)
    if callable(label):
        label = label()
    if isinstance(label, str):
        return label
    identifier = getattr(actor, "id", None)
    if isinstance(identifier, int | str) and not isinstance(identifier, bool):
        return f"user:{identifier}"
    raise TypeError(f"cannot name a {type(actor).__name__} as an audit actor")


def _from_context(ctx: Any, actor: str | None) -> dict[str, Any]:
    tenant_id = getattr(ctx, "tenant_id", None)
    if tenant_id is None:
        tenant = getattr(ctx, "tenant", None)
        tenant_id = None if tenant is None else tenant.id
    request = getattr(ctx, "request", None)
    if request is not None:
        ip = getattr(request, "ip", None) or getattr(request, "remote_addr", None)
    else:
        ip = getattr(ctx, "ip", None)
    now = getattr(ctx, "now", None)
    if callable(now):
        now = now()
    if not isinstance(now, datetime):
        raise TypeError("the audit context has no `now` instant")
    return {
        "tenant_id": tenant_id,
        "actor": actor if actor is not None else actor_label(getattr(ctx, "actor", None)),
        "ip": ip,
        "now": now,
    }


def audit(
    session: Session,
    ctx: Any,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    *,
    actor: str | None = None,
) -> AuditEntry:
    """Append ``action`` on ``subject`` to ``ctx``'s tenant's chain, in ``session``'s
    transaction. ``ctx`` (e.g. a :class:`bookwell.hooks.Context`) is duck-typed; read from it:

    * ``tenant_id``, or ``tenant`` (with ``.id``): the chain; ``None`` for platform events;
    * ``actor``: see :func:`actor_label`; the ``actor`` argument, when given, wins;
    * ``request``: with ``.ip`` (or ``.remote_addr``), or ``None`` outside a request (then
      ``ctx.ip`` if it has one);
    * ``now``: the aware instant of the event, or a callable returning it.
    """
    return record(
        session, action=action, subject=subject, details=details, **_from_context(ctx, actor)
    )


def audit_separately(
    app: Flask,
    ctx: Any,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    *,
    actor: str | None = None,
) -> AuditEntry:
    """:func:`audit` in a transaction of its own (see :func:`record_separately`)."""
    return record_separately(
        app, action=action, subject=subject, details=details, **_from_context(ctx, actor)
    )


# --- verifying -----------------------------------------------------------------------------------


def verify_chain(session: Session, chain: str) -> VerifyResult:
    """Walk ``chain`` in sequence order and name its first edited, missing or inserted entry."""
    tenant_id = tenant_of(chain)
    if tenant_id is None:
        belongs = AuditEntry.tenant_id.is_(None)
    else:
        belongs = AuditEntry.tenant_id == tenant_id
    entries = session.scalars(
        select(AuditEntry)
        .where(or_(AuditEntry.chain == chain, belongs))
        .order_by(AuditEntry.sequence, AuditEntry.id)
        .execution_options(yield_per=500)
    )
    checked, previous_hash = 0, GENESIS_HASH
    try:
        for entry in entries:
            problem, first_bad = _problem(entry, chain, tenant_id, checked + 1, previous_hash)
            if problem is not None:
                return VerifyResult(
                    chain=chain,
                    ok=False,
                    checked=checked,
                    first_bad=first_bad,
                    first_bad_id=entry.id if first_bad == entry.sequence else None,
                    reason=problem,
                )
            checked, previous_hash = checked + 1, entry.entry_hash
    finally:
        entries.close()
    return VerifyResult(
        chain=chain, ok=True, checked=checked, head_hash=previous_hash if checked else None
    )


def _problem(
    entry: AuditEntry, chain: str, tenant_id: int | None, expected: int, previous_hash: str
) -> tuple[str | None, int]:
    """What is wrong with ``entry`` where entry number ``expected`` should be, and its number."""
    number = entry.sequence
    if entry.chain != chain or entry.tenant_id != tenant_id:
        return f"entry {number} was edited (moved between chains)", number
    if number > expected:
        if number == expected + 1:
            return f"entry {expected} is missing (sequence gap)", expected
        return f"entries {expected} to {number - 1} are missing (sequence gap)", expected
    if number < expected:
        return f"entry {number} appears twice", number
    if _hash_of(entry) != entry.entry_hash:
        return f"entry {number} was edited", number
    if entry.previous_hash != previous_hash:
        return f"entry {number} was inserted or its chain link is broken", number
    return None, number


def chains(session: Session) -> list[str]:
    """Every chain that has (or claims to have) an entry: platform first, then by tenant id."""
    named = set(session.scalars(select(AuditEntry.chain).distinct()))
    owners = session.scalars(select(AuditEntry.tenant_id).distinct())
    named.update(chain_of(owner) for owner in owners)

    def order(chain: str) -> tuple[int, int, str]:
        try:
            owner = tenant_of(chain)
        except ValueError:
            return (2, 0, chain)
        return (0, 0, chain) if owner is None else (1, owner, chain)

    return sorted(named, key=order)


def verify(session: Session, tenant_id: int | None = None) -> VerifyResult:
    """Verify ``tenant_id``'s chain; without it, every chain (the platform's included).

    For all chains the result is ``ok`` only if each is, counts every intact entry, names the
    first bad entry of the first bad chain, and lists each chain's own result in ``chains``.
    """
    if tenant_id is not None:
        return verify_chain(session, chain_of(tenant_id))
    results = []
    for chain in chains(session):
        try:
            tenant_of(chain)
        except ValueError:
            results.append(
                VerifyResult(chain=chain, ok=False, checked=0, reason=f"unknown chain {chain!r}")
            )
            continue
        results.append(verify_chain(session, chain))
    first_bad = next((result for result in results if not result.ok), None)
    return VerifyResult(
        chain="*",
        ok=first_bad is None,
        checked=sum(result.checked for result in results),
        first_bad=first_bad.first_bad if first_bad else None,
        first_bad_id=first_bad.first_bad_id if first_bad else None,
        reason=first_bad.reason if first_bad else None,
        chains=tuple(results),
    )
