"""The numbered versions of a business's Terms & Conditions, kept forever in ``terms_versions``.

Core tells no plugin that its settings were saved, so a text is numbered the first time anyone
could see it: when a client is asked to accept it (``booking_requirements``), when a version's
page is opened, or when a staff page is shown (the marketplace's answer to a save is one). So every
text a client could ever have accepted has its number, and a text saved and replaced before anyone
saw it gets none.

A version names one exact text: the text saved again, byte for byte, as an earlier version is
that version again. The unique ``(tenant_id, version)`` and ``(tenant_id, text_sha256)`` keys make
numbering safe when requests race: the insert that loses retries and finds the winner's row.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.exc import IntegrityError

from bookwell.hooks import Context, TenantInfo

terms_versions = Table(
    "terms_versions",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("text_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Each lost race means another request numbered a text meanwhile, and only the text saved last
# is ever current: a handful of tries is plenty.
NUMBERING_ATTEMPTS = 5


def sha256_of(text: str) -> str:
    """The SHA-256 core keeps with each consent: of the text's UTF-8 bytes, as saved."""
    return hashlib.sha256(text.encode()).hexdigest()


def version_of(ctx: Context, text: str) -> dict[str, Any]:
    """The row of ``text``'s version, numbered (the latest number plus one) if it has none yet."""
    assert ctx.tables is not None  # every context of a business has its tables
    digest = sha256_of(text)
    for attempt in range(NUMBERING_ATTEMPTS + 1):
        found = ctx.tables.select(terms_versions, terms_versions.c.text_sha256 == digest)
        if found:
            return found[0]
        if attempt == NUMBERING_ATTEMPTS:
            break
        latest = ctx.tables.select(
            terms_versions, order_by=(terms_versions.c.version.desc(),), limit=1
        )
        number = latest[0]["version"] + 1 if latest else 1
        try:
            ctx.tables.insert(
                terms_versions,
                version=number,
                text=text,
                text_sha256=digest,
                created_at=ctx.now,
            )
        except IntegrityError:
            continue  # another request numbered this text, or took this number, first
    raise RuntimeError(f"could not number a new version of the terms in {NUMBERING_ATTEMPTS} tries")


def all_versions(ctx: Context) -> list[dict[str, Any]]:
    """Every version of the business's terms, the latest first."""
    assert ctx.tables is not None
    return ctx.tables.select(terms_versions, order_by=(terms_versions.c.version.desc(),))


def one_version(ctx: Context, number: int) -> dict[str, Any] | None:
    assert ctx.tables is not None
    found = ctx.tables.select(terms_versions, terms_versions.c.version == number)
    return found[0] if found else None


def page_path(slug: str, number: int) -> str:
    """The site path of version ``number``'s public page."""
    return f"/book/{quote(slug)}/terms/{number}"


def page_url(tenant: TenantInfo, number: int) -> str:
    """Version ``number``'s public page: absolute where the site's address is known, as links
    in mail and on other sites need, else the site path."""
    if tenant.booking_url:
        return f"{tenant.booking_url.rstrip('/')}/terms/{number}"
    return page_path(tenant.slug, number)
