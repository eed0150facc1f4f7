"""The block list: clients a business stopped from booking and changing bookings online.

An e-mail address is kept case-folded (staff see whom they blocked) beside its keyed digest;
a phone number is kept only as the keyed digest of its normalised form (digits, with a leading
``+``), so the table never holds one. Lookups go by digest alone.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from bookwell.hooks import Context

blocks = Table(
    "cancellation_policy_blocks",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("kind", String(10), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("email", String(254)),
    Column("reason", String(500), nullable=False),
    Column("blocked_at", DateTime(timezone=True), nullable=False),
    Column("blocked_by", String(200), nullable=False),
    UniqueConstraint("tenant_id", "kind", "digest"),
)

EMAIL, PHONE = "email", "phone"
# Enough digits to name one line: a shorter "phone" would block whoever typed the same few.
MIN_PHONE_DIGITS = 6
_NOT_DIGIT = re.compile(r"\D")


def normal_email(email: str) -> str:
    return email.strip().casefold()


def normal_phone(phone: str) -> str | None:
    """``+33 6 12-34.56 78`` and ``0033 (6) 12345678`` alike as ``+33612345678``; ``None`` for
    text with too few digits to be a phone number."""
    stripped = phone.strip()
    international = stripped.startswith("+")
    digits = _NOT_DIGIT.sub("", stripped)
    if not international and digits.startswith("00"):
        international, digits = True, digits[2:]
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    return ("+" if international else "") + digits


def email_digest(ctx: Context, email: str) -> str:
    assert ctx.secrets is not None
    return ctx.secrets.digest("email:" + normal_email(email))


def phone_digest(ctx: Context, phone: str) -> str | None:
    assert ctx.secrets is not None
    normal = normal_phone(phone)
    return None if normal is None else ctx.secrets.digest("phone:" + normal)


def is_blocked(ctx: Context, email: str, phone: str | None) -> bool:
    """Whether the client with this address or phone is on the business's block list."""
    assert ctx.tables is not None
    wanted = [(EMAIL, email_digest(ctx, email))]
    if phone:
        digest = phone_digest(ctx, phone)
        if digest is not None:
            wanted.append((PHONE, digest))
    for kind, digest in wanted:
        if ctx.tables.select(blocks, blocks.c.kind == kind, blocks.c.digest == digest, limit=1):
            return True
    return False


def block(
    ctx: Context, kind: str, value: str, reason: str, blocked_by: str
) -> tuple[bool, str | None]:
    """Put a client on the list; returns (added, problem). Not added when already there."""
    assert ctx.tables is not None
    if kind == EMAIL:
        digest: str | None = email_digest(ctx, value)
        shown: str | None = normal_email(value)
    else:
        digest, shown = phone_digest(ctx, value), None
        if digest is None:
            return False, gettext(
                "A phone number needs at least %(count)s digits.", count=MIN_PHONE_DIGITS
            )
    if ctx.tables.select(blocks, blocks.c.kind == kind, blocks.c.digest == digest, limit=1):
        return False, None
    try:
        ctx.tables.insert(
            blocks,
            kind=kind,
            digest=digest,
            email=shown,
            reason=reason,
            blocked_at=ctx.now,
            blocked_by=blocked_by,
        )
    except IntegrityError:  # blocked at the same moment by another request: it is there
        return False, None
    return True, None


def listed(ctx: Context) -> list[dict[str, Any]]:
    assert ctx.tables is not None
    return ctx.tables.select(blocks, order_by=(blocks.c.blocked_at.desc(), blocks.c.id.desc()))


def unblock(ctx: Context, block_id: int) -> dict[str, Any] | None:
    """Take entry ``block_id`` off the list; returns it, or ``None`` if there was none."""
    assert ctx.tables is not None
    found = ctx.tables.select(blocks, blocks.c.id == block_id, limit=1)
    if not found or not ctx.tables.delete(blocks, blocks.c.id == block_id):
        return None
    return found[0]
