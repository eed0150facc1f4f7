"""The archives core writes to the plugin's folder (``ctx.files``): listing them for the staff
page, finding one to download, removing those past their retention, and the dry run's plan.

Core names each archive ``bookings-<first end>-<last end>-<random>.jsonl`` (the same bookings as
``.csv`` beside it) with a ``.sha256`` beside each; the JSON lines' first line says when it was
made and how many bookings it holds. Nothing else in the folder is an archive.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bookwell.hooks import Context

log = logging.getLogger(__name__)

ARCHIVE_NAME = re.compile(r"bookings-(\d{8})-(\d{8})-[0-9a-f]{12}\.(jsonl|csv)")
HEADER_LIMIT = 64 * 1024  # the header line is a few hundred bytes


@dataclass(frozen=True)
class Archive:
    """One archive, both its files."""

    name: str  # the JSON lines' file name
    created_at: datetime
    bookings: int
    first_end: date
    last_end: date
    size: int  # bytes, both files
    checksum: str
    csv_name: str | None
    csv_checksum: str | None


def _checksum_of(path: Path) -> str | None:
    try:
        return path.with_name(f"{path.name}.sha256").read_text().split(maxsplit=1)[0]
    except (OSError, IndexError):
        return None


def _read(path: Path) -> Archive | None:
    """The archive at ``path`` (a ``.jsonl``), or ``None`` when it is no readable archive."""
    found = ARCHIVE_NAME.fullmatch(path.name)
    if found is None or found.group(3) != "jsonl":
        return None
    try:
        with path.open("rb") as handle:
            header = json.loads(handle.readline(HEADER_LIMIT))
        created_at = datetime.fromisoformat(header["created_at"])
        bookings = int(header["bookings"])
        size = path.stat().st_size
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("history_cleanup: %s is not a readable archive; left alone", path)
        return None
    checksum = _checksum_of(path)
    if checksum is None:
        return None
    csv = path.with_suffix(".csv")
    csv_checksum = _checksum_of(csv) if csv.exists() else None
    if csv_checksum is not None:
        size += csv.stat().st_size
    return Archive(
        name=path.name,
        created_at=created_at,
        bookings=bookings,
        first_end=datetime.strptime(found.group(1), "%Y%m%d").date(),
        last_end=datetime.strptime(found.group(2), "%Y%m%d").date(),
        size=size,
        checksum=checksum,
        csv_name=csv.name if csv_checksum is not None else None,
        csv_checksum=csv_checksum,
    )


def listed(ctx: Context) -> list[Archive]:
    """The business's archives, newest first."""
    if ctx.files is None or not ctx.files.is_dir():
        return []
    found = [_read(path) for path in ctx.files.glob("bookings-*.jsonl")]
    return sorted(
        (archive for archive in found if archive is not None),
        key=lambda archive: (archive.created_at, archive.name),
        reverse=True,
    )


def file_to_download(ctx: Context, name: str) -> tuple[Path, Archive] | None:
    """The file called ``name`` (an archive's JSON lines or CSV) and its archive, or ``None``
    when there is no such archive: a name is matched whole, so no other file is ever served."""
    found = ARCHIVE_NAME.fullmatch(name)
    if found is None or ctx.files is None:
        return None
    stem = name.removesuffix(".csv").removesuffix(".jsonl")
    archive = _read(ctx.files / f"{stem}.jsonl")
    if archive is None or name not in (archive.name, archive.csv_name):
        return None
    return ctx.files / name, archive


def expired(ctx: Context, retention_days: int) -> list[Archive]:
    """The archives made ``retention_days`` ago or earlier (by ``ctx.now``)."""
    limit = ctx.now - timedelta(days=retention_days)
    return [archive for archive in listed(ctx) if archive.created_at <= limit]


def remove_expired(ctx: Context, retention_days: int) -> list[Archive]:
    """Remove the expired archives, both files and their checksums; returns those this call
    removed (a run at the same moment that removed one first has it, not this one)."""
    assert ctx.files is not None
    removed = []
    for archive in expired(ctx, retention_days):
        try:
            (ctx.files / archive.name).unlink()
        except FileNotFoundError:
            continue
        removed.append(archive)
        csv = archive.name.removesuffix(".jsonl") + ".csv"
        for name in (f"{archive.name}.sha256", csv, f"{csv}.sha256"):
            (ctx.files / name).unlink(missing_ok=True)
    return removed


@dataclass(frozen=True)
class Plan:
    """What a run would do now."""

    ended_before: datetime
    bookings: int
    first_end: datetime | None
    expired: tuple[Archive, ...]
    archive_retention_days: int

    def summary(self) -> str:
        moment = self.ended_before.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        if self.bookings:
            oldest = self.first_end.astimezone(UTC).strftime("%Y-%m-%d") if self.first_end else "?"
            going = (
                f"would archive and delete {self.bookings} booking(s) that ended before {moment}"
                f" (the oldest ended {oldest})"
            )
        else:
            going = f"no booking ended before {moment}: nothing to delete"
        return (
            f"{going}; would remove {len(self.expired)} archive(s) older than"
            f" {self.archive_retention_days} days"
        )


def plan(ctx: Context, settings) -> Plan:
    """What a run would delete and remove, read from a dry-run ``ctx``: nothing changes."""
    if not ctx.dry_run:
        raise ValueError("a plan is read from a dry run's context, which changes nothing")
    before = ctx.now - timedelta(days=settings["retention_days"])
    first = ctx.data.archive_and_delete_ended(before, 1)
    return Plan(
        ended_before=before,
        bookings=first.deleted + first.remaining,
        first_end=first.first_end,
        expired=tuple(expired(ctx, settings["archive_retention_days"])),
        archive_retention_days=settings["archive_retention_days"],
    )
