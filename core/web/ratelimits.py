"""Per-IP rate limits on public writes (Flask-Limiter; Redis-backed when ``REDIS_URL`` is set).

``BOOKWELL_RATE_LIMITS`` names a limit per category, e.g. ``booking=20/minute,write=60/minute``;
``off`` turns them all off (load tests). Views opt in with :func:`rate_limited`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many

EXTENSION = "bookwell.limiter"
CATEGORIES = ("booking", "write", "login")
View = TypeVar("View", bound=Callable[..., Any])


class RateLimitSettingError(ValueError):
    pass


def parse_setting(setting: str) -> dict[str, str] | None:
    """``None`` when limits are off, else a limit string per category (missing ones unlimited)."""
    setting = (setting or "").strip()
    if setting.lower() == "off":
        return None
    if not setting:
        raise RateLimitSettingError("empty rate limits: give CATEGORY=N/PERIOD,... or 'off'")
    limits: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in setting.split(","))):
        category, _, value = part.partition("=")
        category = category.strip()
        if category not in CATEGORIES or not value.strip():
            raise RateLimitSettingError(
                f"bad rate limit {part!r}: expected CATEGORY=N/PERIOD with CATEGORY in "
                f"{', '.join(CATEGORIES)}, or 'off'"
            )
        try:
            parsed = parse_many(value)
        except ValueError as error:
            raise RateLimitSettingError(f"bad rate limit {part!r}: {error}") from error
        if any(item.amount < 1 for item in parsed):
            raise RateLimitSettingError(f"bad rate limit {part!r}: allow at least 1 request")
        limits[category] = value.strip()
    return limits


def rate_limited(category: str) -> Callable[[View], View]:
    """Mark a view as counted against ``category``; :func:`init_app` applies the limit."""

    def mark(view: View) -> View:
        view.rate_limit_category = category  # type: ignore[attr-defined]
        return view

    return mark


REDIS_TIMEOUT_SECONDS = 0.5


def init_app(app: Flask) -> None:
    limits = parse_setting(str(app.config["RATE_LIMITS"]))
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=app.config.get("REDIS_URL") or "memory://",
        # A Redis that accepts connections but never answers must not hang requests: give up
        # fast and count in memory (the fallback below) until it answers again.
        storage_options=(
            {
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            }
            if app.config.get("REDIS_URL")
            else {}
        ),
        # Its headers would put Retry-After on every answer; the 429 handler sets it instead.
        headers_enabled=False,
        enabled=limits is not None,
        # A Redis outage must never fail a booking: fall back to per-process counting.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        key_prefix="bookwell",
    )
    app.extensions[EXTENSION] = limiter
    for endpoint, view in list(app.view_functions.items()):
        category = getattr(view, "rate_limit_category", None)
        if category and limits and category in limits:
            app.view_functions[endpoint] = limiter.shared_limit(limits[category], scope=category)(
                view
            )


def limit_pages(app: Flask, endpoints: tuple[tuple[str, str], ...]) -> None:
    """Count pages' POSTs against the same per-IP buckets as the API (same scopes), so a form
    is no way around a limit. ``endpoints`` pairs an endpoint with its category."""
    limits = parse_setting(str(app.config["RATE_LIMITS"]))
    limiter = app.extensions.get(EXTENSION)
    if not limits or limiter is None:
        return
    for endpoint, category in endpoints:
        if category in limits:
            app.view_functions[endpoint] = limiter.shared_limit(
                limits[category], scope=category, methods=["POST"]
            )(app.view_functions[endpoint])


def seconds_until_reset(app: Flask) -> int:
    """For the Retry-After of a 429: when the breached limit's window frees a request."""
    import time

    current = app.extensions[EXTENSION].current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()))
