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

Personal data stays outside the hashes (format ``bookwell-audit-2``, :data:`HASH_FORMAT`): every
e-mail address in an entry's actor, subject or details is replaced, before hashing, by the
pseudonym of that person in that tenant (``person:<16 hex>``, one per tenant and address, kept in
``audit_people`` with the address), so ``client:ann@example.com`` is written
``client:person:3f9a...``. The IP goes to ``audit_personal`` (the entry's own ``ip`` column stays
empty, and a v2 entry with one is an edited entry). :func:`erase` empties a person's address and
their entries' IPs there; the chain is untouched and still verifies. Entries hashed in the first
format (``bookwell-audit-1``, actor, subject and IP inside the hash) still verify, in the same
chain: core migration 0012 converted the trails it found and appended an
``audit.format_changed`` entry to each, naming the head hash the chain had before.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import ipaddress
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from flask import Flask
from sqlalchemy import bindparam, func, or_, select, text
from sqlalchemy.orm import Session

from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, AuditPerson, AuditPersonal, Role, User

PLATFORM_CHAIN = "platform"
GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"
# The first element of every hashed content, so that it can evolve. New entries are written in
# HASH_FORMAT; an entry verifies in any of HASH_FORMATS.
HASH_FORMAT_V1 = "bookwell-audit-1"  # actor, subject, details and IP as given, all hashed
HASH_FORMAT = "bookwell-audit-2"  # people by pseudonym; the IP kept outside the hash
HASH_FORMATS = (HASH_FORMAT, HASH_FORMAT_V1)
PERSON_PREFIX = "person:"
ERASED = "[erased]"
FORMAT_CHANGED = "audit.format_changed"
PERSON_ERASED = "audit.person_erased"
EXPORTED = "audit.exported"

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
    hash_format: str = HASH_FORMAT,
) -> str:
    """SHA-256 (hex) of an entry's canonical content; ``details`` is the stored JSON text.

    In ``bookwell-audit-2`` the IP is not part of it (it lives in ``audit_personal``, where an
    erasure may empty it), so ``ip`` must then be ``None``: the column is empty in that format.
    """
    if hash_format == HASH_FORMAT_V1:
        content = [hash_format, chain, sequence, _instant(at), actor, ip, action]
    elif hash_format == HASH_FORMAT:
        if ip is not None:
            raise ValueError(f"{HASH_FORMAT} keeps the IP outside the entry")
        content = [hash_format, chain, sequence, _instant(at), actor, action]
    else:
        raise ValueError(f"unknown audit hash format {hash_format!r}")
    content += [subject, details, previous_hash]
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def _hash_of(entry: AuditEntry, hash_format: str = HASH_FORMAT) -> str:
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
        hash_format=hash_format,
    )


def format_of(entry: AuditEntry) -> str | None:
    """The hash format in which ``entry`` holds (its stored hash matches), or ``None``."""
    if entry.ip is None and _hash_of(entry, HASH_FORMAT) == entry.entry_hash:
        return HASH_FORMAT
    if _hash_of(entry, HASH_FORMAT_V1) == entry.entry_hash:
        return HASH_FORMAT_V1
    return None


# --- people, by pseudonym ------------------------------------------------------------------------

# An e-mail address anywhere in a label or a text: what precedes the @ up to a space, a colon,
# punctuation or a URL's separators (a path such as /admin/salon/clients/ann@example.com names
# Ann alone), and a domain that does not end in a dot (the end of a sentence).
# An apostrophe or a backtick may be inside an address's local part (mary.o'connor@...), not
# first: there it is a quotation mark around the address.
_STOP = r"\s@<>()\[\],;:\"'`"
_STOP_INSIDE = r"\s@<>()\[\],;:\""
EMAIL_IN_TEXT = re.compile(
    rf"[^{_STOP}/?&=][^{_STOP_INSIDE}/?&=]*@[^{_STOP}/\\?&=#]*[^{_STOP}/\\.?&=#]"
)
_PSEUDONYM = re.compile(r"person:[0-9a-f]{16}")


def normal_email(address: str) -> str:
    return address.strip().casefold()


def new_pseudonym() -> str:
    return PERSON_PREFIX + secrets.token_hex(8)


def pseudonyms_in(text_value: str) -> list[str]:
    """The pseudonyms a label or text names, in order."""
    return _PSEUDONYM.findall(text_value)


def _person_by_email(owner: Any) -> Any:
    return (
        select(AuditPerson)
        .where(owner, AuditPerson.email == bindparam("email"), AuditPerson.erased_at.is_(None))
        .order_by(AuditPerson.id)
        .limit(1)
    )


# Built once: every audited change by a client looks its person up, and building the query
# cost more than running it.
_PLATFORM_PERSON = _person_by_email(AuditPerson.tenant_id.is_(None))
_TENANT_PERSON = _person_by_email(AuditPerson.tenant_id == bindparam("tenant_id"))


class _People:
    """The pseudonyms of one tenant's people, found or made while an entry is written."""

    def __init__(self, session: Session, tenant_id: int | None, now: datetime) -> None:
        self.session, self.tenant_id, self.now = session, tenant_id, now
        self.found: dict[str, AuditPerson] = {}

    def person(self, address: str, kind: str) -> AuditPerson:
        email = normal_email(address)
        if email in self.found:
            return self.found[email]
        if self.tenant_id is None:
            person = self.session.scalars(_PLATFORM_PERSON, {"email": email}).first()
        else:
            person = self.session.scalars(
                _TENANT_PERSON, {"tenant_id": self.tenant_id, "email": email}
            ).first()
        if person is None:
            person = AuditPerson(
                pseudonym=new_pseudonym(),
                tenant_id=self.tenant_id,
                kind=kind[:20] or "person",
                email=email[:254],
                created_at=self.now,
            )
            self.session.add(person)
            self.session.flush()
        self.found[email] = person
        return person

    def text(self, value: str) -> str:
        """``value`` with each e-mail address replaced by its person's pseudonym."""

        def swap(match: re.Match[str]) -> str:
            before = value[: match.start()]
            kind = before.rsplit(":", 1)[0].rsplit(":", 1)[-1] if before.endswith(":") else ""
            return self.person(match.group(0), kind or "person").pseudonym

        return EMAIL_IN_TEXT.sub(swap, value)

    def details(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self.text(key): self.details(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.details(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


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
    transaction, written at once. Secret-looking details are redacted first; e-mail addresses are
    replaced by their people's pseudonyms and the IP is kept beside the entry (see the module's
    docstring), both in the same transaction."""
    chain = chain_of(tenant_id)
    _label(actor, "actor", MAX_ACTOR)
    action = _label(action, "action", MAX_ACTION)
    _label(subject, "subject", MAX_SUBJECT)
    ip = _ip(ip)
    cleaned = scrub(details)
    _instant(now)  # refuses a naive instant before anything is written
    at = now.astimezone(UTC)

    _lock_chain(session, chain)  # before the people too: one pseudonym per address, not two
    people = _People(session, tenant_id, at)
    actor = _label(people.text(actor), "actor", MAX_ACTOR)
    subject = _label(people.text(subject), "subject", MAX_SUBJECT)
    details_text = _canonical(people.details(cleaned))
    head = session.execute(_HEAD, {"chain": chain}).first()
    sequence, previous_hash = (head.sequence + 1, head.entry_hash) if head else (1, GENESIS_HASH)
    entry = AuditEntry(
        chain=chain,
        tenant_id=tenant_id,
        sequence=sequence,
        at=at,
        actor=actor,
        ip=None,
        action=action,
        subject=subject,
        details=details_text,
        previous_hash=previous_hash,
    )
    entry.entry_hash = _hash_of(entry)
    # Written as plain inserts, not through the ORM's flush, which cost a booking more than
    # anything else in its trail entry; the entry returned is the row as written, outside the
    # session. (Nothing here is encrypted at rest, so no flush-time hook is passed by.)
    entry.id = session.execute(
        _INSERT_ENTRY,
        {column: getattr(entry, column) for column in _ENTRY_COLUMNS},
    ).inserted_primary_key[0]
    acting = _acting_person(session, people, actor, subject)
    if ip is not None or acting is not None:
        session.execute(_INSERT_PERSONAL, {"entry_id": entry.id, "person_id": acting, "ip": ip})
    return entry


_HEAD = (
    select(AuditEntry.sequence, AuditEntry.entry_hash)
    .where(AuditEntry.chain == bindparam("chain"))
    .order_by(AuditEntry.sequence.desc())
    .limit(1)
)
_INSERT_ENTRY = AuditEntry.__table__.insert()
_INSERT_PERSONAL = AuditPersonal.__table__.insert()
_ENTRY_COLUMNS = tuple(
    column.key for column in AuditEntry.__table__.columns if not column.primary_key
)


def _acting_person(session: Session, people: _People, actor: str, subject: str) -> int | None:
    """The id of the person whose IP the entry's is: the one the actor names; or, when the actor
    is no account (``anonymous``, ``system``), the one the subject names (a failed login's
    ``login:<pseudonym>``), so that erasing that person empties this IP too."""
    named = pseudonyms_in(actor)
    if not named and not actor.startswith(("user:", "support:")):
        named = pseudonyms_in(subject)
    if not named:
        return None
    for person in people.found.values():
        if person.pseudonym == named[0]:
            return person.id
    return session.scalar(select(AuditPerson.id).where(AuditPerson.pseudonym == named[0]))


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
    if format_of(entry) is None:
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


# --- reading, for people: browse, filter, export -------------------------------------------------

EXPORT_FORMATS = ("json", "csv")
EXPORT_COLUMNS = (
    "sequence",
    "at",
    "actor",
    "actor_email",
    "ip",
    "action",
    "subject",
    "details",
    "entry_hash",
    "previous_hash",
)
_FIRST_YEAR, _LAST_YEAR = 1970, 2200  # as the API's days
_MICROSECOND = datetime.resolution
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); an actor
# or subject may hold what a plugin was handed.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Filter:
    """Which entries of a chain to show: ``since`` (inclusive) and ``until`` (exclusive) bound
    ``at``; ``action`` is matched exactly; ``actor`` is an e-mail address (that person's
    pseudonyms and accounts) or a label such as ``user:3`` or ``person:...``."""

    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    actor: str | None = None


@dataclass(frozen=True)
class Shown:
    """An entry as people read it: the stored entry, with the personal data it refers to
    (``actor_email``, ``subject_email``: an address, :data:`ERASED`, or ``None``; ``ip``;
    ``people``: the address, or :data:`ERASED`, of every pseudonym the entry names)."""

    sequence: int
    at: datetime
    actor: str
    actor_email: str | None
    ip: str | None
    action: str
    subject: str
    subject_email: str | None
    details: dict[str, Any] = field(default_factory=dict)
    entry_hash: str = ""
    previous_hash: str = ""
    people: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "at": _instant(self.at),
            "actor": self.actor,
            "actor_email": self.actor_email,
            "ip": self.ip,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
            "entry_hash": self.entry_hash,
            "previous_hash": self.previous_hash,
        }


def parse_bound(raw: str, zone: Any, *, end: bool) -> datetime:
    """A ``from`` (``end=False``) or ``to`` (``end=True``) bound as the instant it starts or ends
    at: ``YYYY-MM-DD`` is a whole day of ``zone`` (``to`` takes all of it), an ISO 8601 date and
    time is that instant (in ``zone`` without an offset; ``to`` includes it). Returned as an
    exclusive end for ``to``. Anything else raises ``ValueError``."""
    text_value = raw.strip()
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text_value):
            day = date.fromisoformat(text_value)
            if not _FIRST_YEAR <= day.year <= _LAST_YEAR:
                raise ValueError("year out of range")
            moment = datetime.combine(day, time(), zone)
            if end:
                moment = datetime.combine(date.fromordinal(day.toordinal() + 1), time(), zone)
        elif re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.,+\-Z]+", text_value):
            moment = datetime.fromisoformat(text_value)
            if not _FIRST_YEAR <= moment.year <= _LAST_YEAR:
                raise ValueError("year out of range")
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            if end:
                moment = moment + _MICROSECOND
        else:
            raise ValueError("not an ISO 8601 date or date and time")
        return moment.astimezone(UTC)
    except (OverflowError, ValueError) as error:
        raise ValueError(str(error)) from error


def _needles(session: Session, tenant_id: int, actor: str) -> list[str]:
    """What an actor filter matches: the labels (or pseudonyms within labels) it stands for."""
    wanted = actor.strip()
    if "@" not in wanted:
        return [wanted]
    email = normal_email(wanted)
    pseudonyms = session.scalars(
        select(AuditPerson.pseudonym).where(
            AuditPerson.tenant_id == tenant_id, AuditPerson.email == email
        )
    ).all()
    accounts = session.scalars(
        select(User.id).where(User.tenant_id == tenant_id, User.email == email)
    ).all()
    return [*pseudonyms, *(f"user:{account}" for account in accounts)]


def _selection(session: Session, tenant_id: int, wanted: Filter) -> Any:
    query = select(AuditEntry).where(AuditEntry.chain == chain_of(tenant_id))
    if wanted.since is not None:
        query = query.where(AuditEntry.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEntry.at < wanted.until)
    if wanted.action:
        query = query.where(AuditEntry.action == wanted.action.strip())
    if wanted.actor:
        needles = _needles(session, tenant_id, wanted.actor)
        if not needles:
            return query.where(False)
        query = query.where(
            or_(
                *(AuditEntry.actor == needle for needle in needles),
                *(AuditEntry.actor.endswith(":" + needle, autoescape=True) for needle in needles),
            )
        )
    return query


def count(session: Session, tenant_id: int, wanted: Filter = Filter()) -> int:
    query = _selection(session, tenant_id, wanted).with_only_columns(func.count())
    return int(session.scalar(query.order_by(None)) or 0)


def listing(
    session: Session,
    tenant_id: int,
    wanted: Filter = Filter(),
    *,
    newest_first: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[Shown]:
    """``tenant_id``'s entries that ``wanted`` selects, with the personal data they refer to:
    oldest first (an export) or newest first (a page), ``limit`` at a time from ``offset``."""
    order = AuditEntry.sequence.desc() if newest_first else AuditEntry.sequence
    query = _selection(session, tenant_id, wanted).order_by(order).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    entries = list(session.scalars(query))
    return _shown(session, tenant_id, entries)


def _shown(session: Session, tenant_id: int, entries: list[AuditEntry]) -> list[Shown]:
    named = {
        name
        for entry in entries
        for name in pseudonyms_in(f"{entry.actor} {entry.subject} {entry.details}")
    }
    people: dict[str, AuditPerson] = {}
    for start in range(0, len(named), 500):
        batch = sorted(named)[start : start + 500]
        for person in session.scalars(
            select(AuditPerson).where(
                AuditPerson.tenant_id == tenant_id, AuditPerson.pseudonym.in_(batch)
            )
        ):
            people[person.pseudonym] = person
    accounts = {
        int(entry.actor[5:])
        for entry in entries
        if entry.actor.startswith("user:") and entry.actor[5:].isdigit()
    }
    emails: dict[int, str] = {}
    if accounts:
        emails = dict(
            session.execute(
                select(User.id, User.email).where(
                    User.id.in_(accounts),
                    or_(User.tenant_id == tenant_id, User.tenant_id.is_(None)),
                )
            ).all()
        )
        # A client account erased from the trail keeps its address in ``users`` (its bookings
        # and logins need it); the trail shows it erased all the same.
        erased_accounts = session.scalars(
            select(AuditEntry.subject).where(
                AuditEntry.chain == chain_of(tenant_id),
                AuditEntry.action == PERSON_ERASED,
                AuditEntry.subject.in_([f"user:{account}" for account in accounts]),
            )
        )
        for label in erased_accounts:
            emails[int(label[5:])] = ERASED
    personal: dict[int, str | None] = {}
    ids = [entry.id for entry in entries]
    for start in range(0, len(ids), 500):
        personal.update(
            session.execute(
                select(AuditPersonal.entry_id, AuditPersonal.ip).where(
                    AuditPersonal.entry_id.in_(ids[start : start + 500])
                )
            ).all()
        )

    def email_of(label: str) -> str | None:
        named_here = pseudonyms_in(label)
        if named_here:
            person = people.get(named_here[0])
            if person is None:
                return None
            return ERASED if person.erased_at is not None else person.email
        if label.startswith("user:") and label[5:].isdigit():
            return emails.get(int(label[5:]))
        return None

    return [
        Shown(
            sequence=entry.sequence,
            at=entry.at,
            actor=entry.actor,
            actor_email=email_of(entry.actor),
            ip=entry.ip if entry.ip is not None else personal.get(entry.id),
            action=entry.action,
            subject=entry.subject,
            subject_email=email_of(entry.subject),
            details=json.loads(entry.details or "{}"),
            entry_hash=entry.entry_hash,
            previous_hash=entry.previous_hash,
            people={
                name: ERASED if people[name].erased_at else (people[name].email or ERASED)
                for name in pseudonyms_in(f"{entry.actor} {entry.subject} {entry.details}")
                if name in people
            },
        )
        for entry in entries
    ]


def export_json(shown: Iterable[Shown]) -> str:
    return json.dumps({"entries": [entry.as_json() for entry in shown]}, ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text_value = _canonical(value) if isinstance(value, dict) else str(value)
    return f"'{text_value}" if text_value.startswith(_FORMULA_STARTS) else text_value


def export_csv(shown: Iterable[Shown]) -> str:
    """One header row (:data:`EXPORT_COLUMNS`), then one row per entry; ``details`` is the
    stored JSON. A cell that a spreadsheet would run as a formula starts with ``'``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for entry in shown:
        row = entry.as_json()
        writer.writerow(_cell(row[column]) for column in EXPORT_COLUMNS)
    return out.getvalue()


def export(
    app: Flask,
    tenant_id: int,
    wanted: Filter,
    export_format: str,
    *,
    actor: str,
    ip: str | None,
    now: datetime,
) -> tuple[str, int]:
    """The export of ``tenant_id``'s entries that ``wanted`` selects, oldest first, in
    ``export_format`` (``json`` or ``csv``), and the number of entries; the export itself is
    audited (:data:`EXPORTED`) before it is handed out, after the entries it holds."""
    if export_format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {export_format!r}")
    # Read and render without the write lock: on SQLite it is the whole database's, and a
    # large export would hold every business's bookings back for seconds.
    with db.fresh_session(app) as reading:
        shown = listing(reading, tenant_id, wanted)
        searched = _searched_actor(reading, tenant_id, wanted.actor)
    body = export_json(shown) if export_format == "json" else export_csv(shown)
    with db.write_transaction(app) as session:
        record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            ip=ip,
            action=EXPORTED,
            subject=chain_of(tenant_id),
            details={
                "format": export_format,
                "from": wanted.since,
                "to": wanted.until,
                "action": wanted.action,
                "actor": searched,
                "entries": len(shown),
            },
            now=now,
        )
    return body, len(shown)


def _searched_actor(session: Session, tenant_id: int, searched: str | None) -> str | None:
    """The actor filter as the export's own entry may keep it: an address becomes the pseudonym
    of whoever has it in the trail, and an address of nobody there (someone erased, say) is not
    written at all, so that searching for a person never writes them back into the trail."""
    if searched is None:
        return None

    def known(match: re.Match[str]) -> str:
        found = session.scalar(
            select(AuditPerson.pseudonym).where(
                AuditPerson.tenant_id == tenant_id,
                AuditPerson.email == normal_email(match.group(0)),
                AuditPerson.erased_at.is_(None),
            )
        )
        return found or "[an address not in the trail]"

    return EMAIL_IN_TEXT.sub(known, searched)


# --- erasure -------------------------------------------------------------------------------------


class NobodyToErase(LookupError):
    """No one with that e-mail address is in the tenant's trail (or they were erased already)."""


@dataclass(frozen=True)
class Erasure:
    """Who was erased: the pseudonyms, the client accounts (``user:<id>``) whose entries' IPs
    were emptied, and how many IPs that was in all."""

    pseudonyms: tuple[str, ...]
    ips_erased: int
    accounts: tuple[str, ...] = ()


def erase(
    session: Session,
    *,
    tenant_id: int,
    email: str,
    actor: str,
    ip: str | None,
    now: datetime,
) -> Erasure:
    """Forget who ``email`` was in ``tenant_id``'s trail: their pseudonyms' e-mail and name are
    emptied, and so are the IPs of the entries they made, by e-mail or signed in to a client
    account of that address (``user:<id>``). The entries stay, hashes intact, and each erasure
    is an :data:`PERSON_ERASED` entry that names the pseudonym (or the account) only.

    Staff accounts are not erased from the trail: who worked on whose data, from where, is what
    the trail is kept for. Raises :class:`NobodyToErase` when no one has that address there."""
    address = normal_email(email)
    people = list(
        session.scalars(
            select(AuditPerson)
            .where(
                AuditPerson.tenant_id == tenant_id,
                AuditPerson.email == address,
                AuditPerson.erased_at.is_(None),
            )
            .order_by(AuditPerson.id)
        )
    )
    accounts = list(
        session.scalars(
            select(User.id)
            .where(
                User.tenant_id == tenant_id,
                func.lower(User.email) == address,
                User.role == Role.CLIENT,
            )
            .order_by(User.id)
        )
    )
    if not people and not accounts:
        raise NobodyToErase(f"no one with that e-mail address in the trail of tenant {tenant_id}")
    erased_ips = 0
    for person in people:
        personal = list(
            session.scalars(
                select(AuditPersonal).where(
                    AuditPersonal.person_id == person.id, AuditPersonal.ip.is_not(None)
                )
            )
        )
        for row in personal:
            row.ip = None
        person.email, person.name, person.erased_at = None, None, now
        session.flush()
        erased_ips += len(personal)
        record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            ip=ip,
            action=PERSON_ERASED,
            subject=person.pseudonym,
            details={"ips_erased": len(personal)},
            now=now,
        )
    for account in accounts:
        label = f"user:{account}"
        made = select(AuditEntry.id).where(
            AuditEntry.chain == chain_of(tenant_id), AuditEntry.actor == label
        )
        personal = list(
            session.scalars(
                select(AuditPersonal).where(
                    AuditPersonal.entry_id.in_(made), AuditPersonal.ip.is_not(None)
                )
            )
        )
        for row in personal:
            row.ip = None
        session.flush()
        erased_ips += len(personal)
        record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            ip=ip,
            action=PERSON_ERASED,
            subject=label,
            details={"ips_erased": len(personal)},
            now=now,
        )
    return Erasure(
        tuple(person.pseudonym for person in people),
        erased_ips,
        tuple(f"user:{account}" for account in accounts),
    )


def ip_of(session: Session, entry: AuditEntry) -> str | None:
    """The IP an entry came from: its own column (first format) or ``audit_personal``'s."""
    if entry.ip is not None:
        return entry.ip
    return session.scalar(select(AuditPersonal.ip).where(AuditPersonal.entry_id == entry.id))
