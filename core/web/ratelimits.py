"""Per-IP rate limits on public writes and on every login (Flask-Limiter).

``BOOKWELL_RATE_LIMITS`` names a limit per category, e.g. ``booking=20/minute,write=60/minute``;
``off`` turns them all off (load tests). Views opt in with :func:`rate_limited`, API and pages
alike: every view marked with one category counts in one per-IP bucket, so a login page is no way
around the API's login limit. Only writes count (a GET of a form is free).

The counts are shared by every worker of every process: in Redis when ``REDIS_URL`` is set (in
memory while it is unreachable), otherwise in the database (``storage/rate_counts.py``).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_qualified_name, get_remote_address
from limits import parse_many

from bookwell.core.storage import db, rate_counts

EXTENSION = "bookwell.limiter"
MARKED_VIEWS = "bookwell.limited_views"
CATEGORIES = ("booking", "write", "login")
# What a rate limit counts: the requests that act. Reading a page or a form is never limited.
COUNTED_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
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
    """Count the view's writes against ``category``'s per-IP limit, in the bucket every view
    marked with that category shares. The limit is looked up when the view is called, so the
    mark works on any view (API, page, or one registered after :func:`init_app`)."""

    def mark(view: View) -> View:
        marked = getattr(view, "rate_limit_category", None)
        if marked == category:
            return view  # counted once, however often it is marked
        if marked is not None:
            raise ValueError(f"{view.__name__} is counted as {marked!r} already, not {category!r}")

        @functools.wraps(view)
        def counted(*args: Any, **kwargs: Any) -> Any:
            return current_app.extensions[MARKED_VIEWS].limited(view, category)(*args, **kwargs)

        counted.rate_limit_category = category  # type: ignore[attr-defined]
        return counted  # type: ignore[return-value]

    return mark


class MarkedViews:
    """Each marked view of one app, wrapped once by its Flask-Limiter limit on its first call."""

    def __init__(self, limiter: Limiter, limits: dict[str, str] | None) -> None:
        self.limiter = limiter
        self.limits = limits
        self._wrapped: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {}
        self._lock = threading.Lock()

    def limited(self, view: Callable[..., Any], category: str) -> Callable[..., Any]:
        if not self.limits or category not in self.limits:
            return view
        # Flask-Limiter keeps a decorated limit under the view's qualified name: two views of
        # one name would each be counted twice, so that is refused rather than left to happen.
        name = get_qualified_name(view)
        with self._lock:
            known = self._wrapped.get(name)
            if known is None:
                wrapped = self.limiter.shared_limit(
                    self.limits[category], scope=category, methods=COUNTED_METHODS
                )(view)
                known = self._wrapped[name] = (view, wrapped)
        if known[0] is not view:
            raise RuntimeError(f"two rate-limited views are both named {name}")
        return known[1]


REDIS_TIMEOUT_SECONDS = 0.5


def init_app(app: Flask) -> None:
    limits = parse_setting(str(app.config["RATE_LIMITS"]))
    redis_url = app.config.get("REDIS_URL")
    limiter = Limiter(
        get_remote_address,
        app=app,
        # Without Redis, the database every worker already shares keeps the counts.
        storage_uri=redis_url or f"{rate_counts.SCHEME}://",
        # A Redis that accepts connections but never answers must not hang requests: give up
        # fast and count in memory (the fallback below) until it answers again.
        storage_options=(
            {
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            }
            if redis_url
            else {"engine": db.engine_of(app)}
        ),
        # Its headers would put Retry-After on every answer; the 429 handler sets it instead.
        headers_enabled=False,
        enabled=limits is not None,
        # A Redis outage (or a database too busy to count) must never fail a booking: count in
        # this process's memory meanwhile.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        key_prefix="bookwell",
    )
    app.extensions[EXTENSION] = limiter
    app.extensions[MARKED_VIEWS] = MarkedViews(limiter, limits)


def seconds_until_reset(app: Flask) -> int:
    """For the Retry-After of a 429: when the breached limit's window frees a request."""
    current = app.extensions[EXTENSION].current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()))
