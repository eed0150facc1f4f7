"""Scheduled work and mail as jobs: on RQ when ``REDIS_URL`` is set, in-process otherwise.

With Redis, ``bookwell worker`` runs an RQ worker on the ``bookwell`` queue and a ticker thread.
Each period (``TICK_SECONDS``) the ticker enqueues, per tenant, one job per task (``on_schedule``
and ``mail``), each only if it wins that period's lock for the tenant and task (``SET NX EX``
on a key naming the period): several workers enqueue each tenant's task once a period. A job
also holds a Redis lock while it runs, so a slow run and the next period's never overlap. A
failed job is logged with its tenant and task and retried by RQ with a growing backoff.

Without Redis, ``bookwell serve`` runs the same ticker in each of its processes, and each task
runs under a database lease instead (:func:`bookwell.core.scheduling.schedule.run_due`).

Job functions are importable by path and take only ids; they build (or are given, with
:func:`use_app`) the app of the process they run in.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry, SimpleWorker, get_current_job
from sqlalchemy import select

from bookwell.core.foundation import clock
from bookwell.core.mail import outbox
from bookwell.core.scheduling import schedule
from bookwell.core.storage import db, leases
from bookwell.core.storage.models import Tenant

log = logging.getLogger("bookwell.jobs")

QUEUE = "bookwell"
KEYS = "bookwell:jobs"
EXTENSION = "bookwell.jobs"
# Mail jobs retry on the outbox's own backoff, so that a retry finds the failed messages due.
MAIL_RETRY = Retry(
    max=len(outbox.BACKOFF_MINUTES), interval=[60 * m for m in outbox.BACKOFF_MINUTES]
)
SCHEDULE_RETRY = Retry(max=3, interval=[30, 120, 600])
JOB_TIMEOUT = int(schedule.RUN_BOUND.total_seconds())
FAILURE_TTL = 7 * 24 * 3600  # failed jobs stay listed (``rq info``) for a week
# A booking request waits at most this long for a Redis that does not answer, and then no
# request asks it again for REDIS_QUIET_SECONDS.
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_QUIET_SECONDS = 30
QUIET_UNTIL = "bookwell.jobs.redis_quiet_until"

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


class MailNotSent(Exception):
    """Some due messages failed to go out; the job is retried (the outbox keeps them)."""


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


def tick_period(app: Flask) -> timedelta:
    return timedelta(seconds=float(app.config["TICK_SECONDS"]))


# --- the jobs ----------------------------------------------------------------------------------

_job_app: Flask | None = None


def use_app(app: Flask) -> None:
    """Run this process's jobs with ``app`` (the worker's, or a test's)."""
    global _job_app
    _job_app = app


def _app() -> Flask:
    if _job_app is None:
        from bookwell.core.app.factory import create_app

        use_app(create_app())  # a plain `rq worker`: the instance from the environment
    assert _job_app is not None
    return _job_app


def run_scheduled(tenant_id: int, task: str) -> str:
    """Job: run ``task`` (``on_schedule`` or ``mail``) of the tenant, unless another job of the
    same tenant and task is still running."""
    app = _app()
    with app.app_context(), _logged(f"{task} of tenant #{tenant_id}"):
        tenant = db.session().get(Tenant, tenant_id)
        if tenant is None:
            return "no such tenant (deleted since)"
        with _running(redis_of(app), f"{KEYS}:running:{tenant_id}:{task}") as ours:
            if not ours:
                return "skipped: still running in another job"
            report = schedule.run_task(app, tenant, task, clock.now(app))
            _check(report.mail)
    return "done"


def deliver_mail() -> str:
    """Job: send every tenant's due mail (queued after each booking change)."""
    app = _app()
    with app.app_context(), _logged("mail of all tenants"):
        _check(schedule.send_tenant_mail(app, clock.now(app), None))
    return "done"


def _check(report: outbox.DeliveryReport | None) -> None:
    if report is not None and report.failed:
        raise MailNotSent(f"{report.failed} of {report.claimed} messages failed")


@contextlib.contextmanager
def _logged(what: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        job = get_current_job()
        left = job.retries_left if job is not None else None
        log.exception(
            "job %s failed; %s", what, f"RQ retries it ({left} left)" if left else "no retry left"
        )
        raise


@contextlib.contextmanager
def _running(connection: redis.Redis, key: str) -> Iterator[bool]:
    token = uuid.uuid4().hex
    ours = bool(connection.set(key, token, nx=True, ex=JOB_TIMEOUT))
    try:
        yield ours
    finally:
        if ours:
            connection.eval(_RELEASE, 1, key, token)


# --- enqueueing --------------------------------------------------------------------------------


def enqueue_due(app: Flask, holder: str) -> list[tuple[str, str]]:
    """One period of the Redis ticker: enqueue each tenant's tasks whose lock for this period
    it wins. Returns the (tenant slug, task) pairs it enqueued."""
    connection = redis_of(app)
    queue = Queue(QUEUE, connection=connection)
    period = tick_period(app)
    enqueued = []
    with app.app_context():
        tenants = db.session().execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug)).all()
        period_id = int(schedule.period_end(clock.now(app), period).timestamp())
        for tenant_id, slug in tenants:
            for task in schedule.TASKS:
                key = f"{KEYS}:period:{tenant_id}:{task}:{period_id}"
                # Kept for two periods: long enough that no ticker can still be in that period.
                if not connection.set(key, holder, nx=True, ex=int(2 * period.total_seconds()) + 1):
                    continue
                queue.enqueue_call(
                    run_scheduled,
                    args=(tenant_id, task),
                    retry=MAIL_RETRY if task == "mail" else SCHEDULE_RETRY,
                    timeout=JOB_TIMEOUT,
                    failure_ttl=FAILURE_TTL,
                    description=f"{task} of tenant {slug} (#{tenant_id})",
                )
                enqueued.append((slug, task))
    return enqueued


def enqueue_mail(app: Flask) -> bool:
    """Queue the delivery of the due mail. With Redis down, log it and return ``False``: the
    mail waits in the outbox and the worker's next tick sends it once Redis is back.

    After a failure, Redis is left alone for ``REDIS_QUIET_SECONDS``: a Redis that accepts
    connections but never answers would otherwise cost every booking the full timeout."""
    quiet_until = app.extensions.get(QUIET_UNTIL, 0.0)
    if time.monotonic() < quiet_until:
        return False
    try:
        Queue(QUEUE, connection=redis_of(app)).enqueue_call(
            deliver_mail, retry=MAIL_RETRY, timeout=JOB_TIMEOUT, failure_ttl=FAILURE_TTL
        )
    except redis.RedisError as error:
        app.extensions[QUIET_UNTIL] = time.monotonic() + REDIS_QUIET_SECONDS
        log.warning(
            "Redis is unreachable (%r): mail waits in the outbox; not asking Redis for %d s",
            error,
            REDIS_QUIET_SECONDS,
        )
        return False
    return True


# --- the ticker and the worker -----------------------------------------------------------------


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


def run_worker(app: Flask, *, burst: bool = False) -> None:
    """``bookwell worker``: the RQ worker and the Redis ticker. With ``burst``, enqueue this
    period's work once, run every queued job, then return."""
    use_app(app)
    holder = leases.new_holder()
    if burst:
        enqueue_due(app, holder)
    elif float(app.config["TICK_SECONDS"]):
        period = tick_period(app).total_seconds()
        Ticker(period, lambda: enqueue_due(app, holder), "bookwell-ticker").start()
    # The worker blocks on the queue for minutes at a time: no short socket timeout here.
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    worker = SimpleWorker([Queue(QUEUE, connection=connection)], connection=connection)
    worker.work(burst=burst, with_scheduler=True)
