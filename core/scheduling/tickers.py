"""Scheduled work and mail as jobs: on RQ when ``REDIS_URL`` is set, in-process otherwise.

With Redis, ``bookwell worker`` runs an RQ worker on the ``bookwell`` queue and a ticker thread.
Each period (``TICK_SECONDS``) the ticker enqueues, per tenant, one job per task (``on_schedule``
and ``mail``), each only if it wins that period's lock for the tenant and task (``SET NX EX``
on a key naming the period): several workers enqueue each tenant's task once a period. A job
also holds a Redis lock while it runs, so a slow run and the next period's never overlap. A
failed job is logged with its tenant and task and retried by RQ with a growing backoff.

Without Redis, ``bookwell serve`` runs the same ticker in each of its processes, and each task
runs under a database lease instead (:func:`bookwell.core.scheduling.schedule.run_due`).

The jobs are named by path (:data:`SCHEDULED_JOB`) and take only ids; they and the worker
that runs them are :mod:`bookwell.core.app.jobs`, which builds the app of the process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import redis
from flask import Flask
from rq import Retry
from sqlalchemy import select

from bookwell.core.foundation import clock
from bookwell.core.mail.dispatch import MAIL_RETRY
from bookwell.core.scheduling import schedule
from bookwell.core.storage import db, leases, queue
from bookwell.core.storage.models import Tenant

log = logging.getLogger("bookwell.jobs")

SCHEDULED_JOB = "bookwell.core.app.jobs.run_scheduled"
SCHEDULE_RETRY = Retry(max=3, interval=[30, 120, 600])


def tick_period(app: Flask) -> timedelta:
    return timedelta(seconds=float(app.config["TICK_SECONDS"]))


# --- enqueueing --------------------------------------------------------------------------------


def enqueue_due(app: Flask, holder: str) -> list[tuple[str, str]]:
    """One period of the Redis ticker: enqueue each tenant's tasks whose lock for this period
    it wins. Returns the (tenant slug, task) pairs it enqueued."""
    connection = queue.redis_of(app)
    period = tick_period(app)
    enqueued = []
    with app.app_context():
        tenants = db.session().execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug)).all()
        period_id = int(schedule.period_end(clock.now(app), period).timestamp())
        for tenant_id, slug in tenants:
            for task in schedule.TASKS:
                key = f"{queue.KEYS}:period:{tenant_id}:{task}:{period_id}"
                # Kept for two periods: long enough that no ticker can still be in that period.
                if not connection.set(key, holder, nx=True, ex=int(2 * period.total_seconds()) + 1):
                    continue
                queue.enqueue(
                    app,
                    SCHEDULED_JOB,
                    tenant_id,
                    task,
                    retry=MAIL_RETRY if task == "mail" else SCHEDULE_RETRY,
                    description=f"{task} of tenant {slug} (#{tenant_id})",
                )
                enqueued.append((slug, task))
    return enqueued


# --- the ticker -----------------------------------------------------------------------


class Ticker:
    """A daemon thread that runs ``work`` now and then every ``every`` seconds; a failing
    round is logged and the next one runs as usual."""

    def __init__(self, every: float, work: Callable[[], object], name: str) -> None:
        self.every = every
        self.work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.work()
            except redis.RedisError as error:
                log.warning("scheduled work not enqueued, Redis is unreachable: %r", error)
            except Exception:
                log.exception("a round of scheduled work failed; the next one runs as usual")
            self._stop.wait(self.every)


def start_in_process(app: Flask) -> Ticker | None:
    """Without Redis (``bookwell serve``): tick in this process, each task under a database
    lease so that the other processes never run it too. ``TICK_SECONDS = 0`` disables it."""
    if app.config.get("REDIS_URL") or not float(app.config["TICK_SECONDS"]):
        return None
    holder = leases.new_holder()
    period = tick_period(app)
    return Ticker(
        period.total_seconds(),
        lambda: schedule.run_due(app, holder, period),
        "bookwell-ticker",
    ).start()
