"""The injected clock. Core asks ``now()`` instead of the wall clock, so tests can move time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, current_app

EXTENSION = "bookwell.clock"


def system_clock() -> datetime:
    return datetime.now(UTC)


def install(app: Flask, clock: Callable[[], datetime] | None = None) -> None:
    app.extensions[EXTENSION] = clock or system_clock


def now(app: Flask | None = None) -> datetime:
    return (app or current_app).extensions[EXTENSION]()
