"""The audit trail names people by pseudonym: existing entries converted to bookwell-audit-2

Revision ID: 0012
Revises: 0011
Entries written before this revision (format ``bookwell-audit-1``) carry e-mail addresses in
their actor, subject and details, and the IP in the hashed content, so a person's data could
never leave them. For each chain whose entries all verify, this revision:

- replaces every e-mail address by the pseudonym of that person in that tenant
  (``person:<16 hex>``, one per tenant and address, in ``audit_people``);
- moves each entry's IP to ``audit_personal`` (with the person the actor names) and empties the
  entry's ``ip`` column;
- re-hashes the chain, in sequence order, in ``bookwell-audit-2``;
- appends an ``audit.format_changed`` entry naming the previous format, the head hash the chain
  had before (an operator who kept it can still match it) and the number of entries converted.

A chain that does not verify is left exactly as it is, so that ``bookwell audit verify`` keeps
naming the entry someone tampered with; converting it would launder the tampering. It is
reported on the log; its entries keep their addresses until an operator has looked at it.

Self-contained on purpose: the hashing below is frozen as it was at this revision, whatever
``bookwell.core.audit`` becomes. On PostgreSQL the append-only trigger of 0011 is disabled for
the rewrite only (migrations run as the tables' owner) and enabled again in the same
transaction. Downgrading does not restore the addresses: they are not kept anywhere else on
purpose, and the converted chains verify with either revision's code.
"""

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("bookwell.migrations")

V1, V2 = "bookwell-audit-1", "bookwell-audit-2"
GENESIS = "0" * 64
# As core/audit.py finds addresses (a migration keeps its own copy: core may change later).
_STOP = r"\s@<>()\[\],;:\"'`"
_STOP_INSIDE = r"\s@<>()\[\],;:\""
EMAIL_IN_TEXT = re.compile(
    rf"[^{_STOP}/?&=][^{_STOP_INSIDE}/?&=]*@[^{_STOP}/\\?&=#]*[^{_STOP}/\\.?&=#]"
)
PSEUDONYM = re.compile(r"person:[0-9a-f]{16}")
MAX_ACTOR, MAX_SUBJECT = 320, 200

entries_table = sa.table(
    "audit_entries",
    sa.column("id", sa.Integer),
    sa.column("chain", sa.String),
    sa.column("tenant_id", sa.Integer),
    sa.column("sequence", sa.Integer),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String),
    sa.column("ip", sa.String),
    sa.column("action", sa.String),
    sa.column("subject", sa.String),
    sa.column("details", sa.Text),
    sa.column("previous_hash", sa.String),
    sa.column("entry_hash", sa.String),
)
people_table = sa.table(
    "audit_people",
    sa.column("id", sa.Integer),
    sa.column("pseudonym", sa.String),
    sa.column("tenant_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("email", sa.String),
    sa.column("name", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("erased_at", sa.DateTime(timezone=True)),
)
personal_table = sa.table(
    "audit_personal",
    sa.column("entry_id", sa.Integer),
    sa.column("person_id", sa.Integer),
    sa.column("ip", sa.String),
)


def _canonical(value):
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _stored(moment: datetime, dialect: str) -> datetime:
    """As core's UTCDateTime stores it: naive UTC on SQLite, aware elsewhere."""
    return moment.replace(tzinfo=None) if dialect == "sqlite" else moment


def _hash(row: dict, hash_format: str) -> str:
    head = [hash_format, row["chain"], row["sequence"]]
    head.append(_aware(row["at"]).isoformat(timespec="microseconds"))
    head.append(row["actor"])
    if hash_format == V1:
        head.append(row["ip"])
    head += [row["action"], row["subject"], row["details"], row["previous_hash"]]
    return hashlib.sha256(_canonical(head).encode()).hexdigest()


def _holds(row: dict) -> bool:
    """Whether a stored entry's hash matches its content, in either format."""
    if row["ip"] is None and _hash(row, V2) == row["entry_hash"]:
        return True
    return _hash(row, V1) == row["entry_hash"]


def _intact(rows: list[dict], tenant_id) -> bool:
    previous = GENESIS
    for number, row in enumerate(rows, start=1):
        if row["sequence"] != number or row["tenant_id"] != tenant_id:
            return False
        if not _holds(row) or row["previous_hash"] != previous:
            return False
        previous = row["entry_hash"]
    return True


class _People:
    """One pseudonym per tenant and address, made on first sight (within this migration)."""

    def __init__(self, bind, tenant_id, dialect: str) -> None:
        self.bind, self.tenant_id, self.dialect = bind, tenant_id, dialect
        self.found: dict[str, tuple[int, str]] = {}

    def person(self, address: str, kind: str, at: datetime) -> tuple[int, str]:
        email = address.strip().casefold()
        if email in self.found:
            return self.found[email]
        owner = (
            people_table.c.tenant_id.is_(None)
            if self.tenant_id is None
            else people_table.c.tenant_id == self.tenant_id
        )
        existing = self.bind.execute(
            sa.select(people_table.c.id, people_table.c.pseudonym)
            .where(owner, people_table.c.email == email, people_table.c.erased_at.is_(None))
            .order_by(people_table.c.id)
            .limit(1)
        ).first()
        if existing is None:
            pseudonym = "person:" + secrets.token_hex(8)
            self.bind.execute(
                people_table.insert().values(
                    pseudonym=pseudonym,
                    tenant_id=self.tenant_id,
                    kind=(kind or "person")[:20],
                    email=email[:254],
                    created_at=_stored(_aware(at), self.dialect),
                )
            )
            existing = self.bind.execute(
                sa.select(people_table.c.id, people_table.c.pseudonym).where(
                    people_table.c.pseudonym == pseudonym
                )
            ).one()
        self.found[email] = (existing.id, existing.pseudonym)
        return self.found[email]

    def text(self, value: str, at: datetime) -> str:
        def swap(match):
            before = value[: match.start()]
            kind = before.rsplit(":", 1)[0].rsplit(":", 1)[-1] if before.endswith(":") else ""
            return self.person(match.group(0), kind, at)[1]

        return EMAIL_IN_TEXT.sub(swap, value)

    def details(self, value, at: datetime):
        if isinstance(value, dict):
            return {self.text(key, at): self.details(item, at) for key, item in value.items()}
        if isinstance(value, list):
            return [self.details(item, at) for item in value]
        if isinstance(value, str):
            return self.text(value, at)
        return value


def _convert(bind, dialect: str, chain: str, tenant_id, rows: list[dict]) -> None:
    people = _People(bind, tenant_id, dialect)
    previous_head = rows[-1]["entry_hash"]
    previous_hash = GENESIS
    for row in rows:
        at = row["at"]
        actor = people.text(row["actor"], at)[:MAX_ACTOR]
        subject = people.text(row["subject"], at)[:MAX_SUBJECT]
        details = _canonical(people.details(json.loads(row["details"] or "{}"), at))
        converted = dict(
            row, actor=actor, subject=subject, details=details, previous_hash=previous_hash
        )
        converted["ip"] = None
        converted["entry_hash"] = _hash(converted, V2)
        bind.execute(
            entries_table.update()
            .where(entries_table.c.id == row["id"])
            .values(
                actor=actor,
                subject=subject,
                details=details,
                ip=None,
                previous_hash=previous_hash,
                entry_hash=converted["entry_hash"],
            )
        )
        acting = PSEUDONYM.findall(actor)
        person_id = None
        if acting:
            person_id = next(
                (found for found, name in people.found.values() if name == acting[0]), None
            )
        already = bind.execute(
            sa.select(personal_table.c.entry_id).where(personal_table.c.entry_id == row["id"])
        ).first()
        if already is None and (row["ip"] is not None or person_id is not None):
            bind.execute(
                personal_table.insert().values(
                    entry_id=row["id"], person_id=person_id, ip=row["ip"]
                )
            )
        previous_hash = converted["entry_hash"]
    last = rows[-1]
    marker = {
        "chain": chain,
        "tenant_id": tenant_id,
        "sequence": last["sequence"] + 1,
        "at": max(datetime.now(UTC), _aware(last["at"])),
        "actor": "migration:0012",
        "ip": None,
        "action": "audit.format_changed",
        "subject": chain,
        "details": _canonical(
            {
                "previous_format": V1,
                "format": V2,
                "previous_head_hash": previous_head,
                "entries_converted": len(rows),
            }
        ),
        "previous_hash": previous_hash,
    }
    marker["entry_hash"] = _hash(marker, V2)
    marker["at"] = _stored(marker["at"], dialect)
    bind.execute(entries_table.insert().values(**marker))


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    chains = bind.scalars(
        sa.select(entries_table.c.chain).distinct().order_by(entries_table.c.chain)
    ).all()
    if dialect == "postgresql":
        op.execute("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
    for chain in chains:
        prefix, _, number = chain.partition(":")
        if chain == "platform":
            tenant_id = None
        elif prefix == "tenant" and number.isdigit():
            tenant_id = int(number)
        else:
            log.warning("audit trail %r is no chain Bookwell writes: left as it is", chain)
            continue
        rows = [
            dict(row._mapping)
            for row in bind.execute(
                sa.select(entries_table)
                .where(entries_table.c.chain == chain)
                .order_by(entries_table.c.sequence, entries_table.c.id)
            )
        ]
        if not any(_hash(row, V1) == row["entry_hash"] for row in rows):
            continue  # nothing in the first format: written by this revision's code already
        if not _intact(rows, tenant_id):
            log.warning(
                "audit trail %s does not verify: left unconverted, in its first format, for "
                "`bookwell audit verify` to name the entry that was tampered with",
                chain,
            )
            continue
        _convert(bind, dialect, chain, tenant_id, rows)
    if dialect == "postgresql":
        op.execute("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only")


def downgrade() -> None:
    """Nothing to undo in the schema; the addresses are not brought back (see above)."""
