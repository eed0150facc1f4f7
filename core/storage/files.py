"""Files that must survive a crash whole or not at all: outbox ``.eml`` files, archives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_durably(target: Path, body: bytes) -> None:
    """Write ``body`` to ``target`` through a temporary file in the same folder, synced, then
    renamed over it: a reader sees the old file or the new one, never half of one. mkstemp
    makes it readable by its owner only (what is written here holds clients' details)."""
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
