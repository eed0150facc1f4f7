"""Redis, the second shared store: the app's client and the RQ queue that jobs go through.

A job is enqueued by the dotted path of its function (``bookwell.core.app.jobs.deliver_mail``),
which RQ imports in the worker: the side that asks for work never imports the side that does it,
which builds an app of its own (:mod:`bookwell.core.app.jobs`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue

log = logging.getLogger("bookwell.jobs")

QUEUE = "bookwell"
KEYS = "bookwell:jobs"
EXTENSION = "bookwell.jobs"
# A job, and a run of scheduled work under a database lease, is bounded by this.
JOB_TIMEOUT = 10 * 60
FAILURE_TTL = 7 * 24 * 3600  # failed jobs stay listed (``rq info``) for a week
# A booking request waits at most this long for a Redis that does not answer, and then no
# request asks it again for REDIS_QUIET_SECONDS.
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_QUIET_SECONDS = 30
QUIET_UNTIL = "bookwell.jobs.redis_quiet_until"


def redis_of(app: Flask) -> redis.Redis:
    """The app's Redis client for short commands: it fails fast rather than hang a request."""
    client = app.extensions.get(EXTENSION)
    if client is None:
        client = redis.Redis.from_url(
            app.config["REDIS_URL"],
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            retry=RedisRetry(NoBackoff(), 0),
        )
        app.extensions[EXTENSION] = client
    return client


def enqueue(app: Flask, function: str, *args: Any, **options: Any) -> None:
    """Queue the job ``function`` (a dotted path) with ``args``; ``options`` as RQ's
    ``enqueue_call`` takes them. Raises :class:`redis.RedisError` when Redis fails."""
    options.setdefault("timeout", JOB_TIMEOUT)
    options.setdefault("failure_ttl", FAILURE_TTL)
    Queue(QUEUE, connection=redis_of(app)).enqueue_call(function, args=args, **options)


def enqueue_from_request(
    app: Flask, function: str, *args: Any, meanwhile: str, **options: Any
) -> bool:
    """:func:`enqueue` for a request that must not wait on Redis: with Redis down, log it
    (saying what happens ``meanwhile``) and return ``False``.

    After a failure, Redis is left alone for ``REDIS_QUIET_SECONDS``: a Redis that accepts
    connections but never answers would otherwise cost every request the full timeout."""
    quiet_until = app.extensions.get(QUIET_UNTIL, 0.0)
    if time.monotonic() < quiet_until:
        return False
    try:
        enqueue(app, function, *args, **options)
    except redis.RedisError as error:
        app.extensions[QUIET_UNTIL] = time.monotonic() + REDIS_QUIET_SECONDS
        log.warning(
            "Redis is unreachable (%r): %s; not asking Redis for %d s",
            error,
            meanwhile,
            REDIS_QUIET_SECONDS,
        )
        return False
    return True
