"""The jobs RQ runs, and the worker that runs them: each builds (or is given, with
:func:`use_app`) the app of the process it runs in.

They are enqueued by path (``bookwell.core.app.jobs.run_scheduled``, ``...deliver_mail``) by
:mod:`bookwell.core.scheduling.tickers` and :mod:`bookwell.core.mail.dispatch`, and take only
ids, so that a plain ``rq worker`` with the instance in its environment can run them too.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator

import redis
from flask import Flask
from rq import Queue, SimpleWorker, get_current_job

from bookwell.core.app.factory import create_app
from bookwell.core.foundation import clock
from bookwell.core.mail import outbox
from bookwell.core.scheduling import schedule
from bookwell.core.scheduling.tickers import Ticker, enqueue_due, tick_period
from bookwell.core.storage import db, leases, queue
from bookwell.core.storage.models import Tenant

log = logging.getLogger("bookwell.jobs")

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


class MailNotSent(Exception):
    """Some due messages failed to go out; the job is retried (the outbox keeps them)."""


_job_app: Flask | None = None


def use_app(app: Flask) -> None:
    """Run this process's jobs with ``app`` (the worker's, or a test's)."""
    global _job_app
    _job_app = app


def _app() -> Flask:
    if _job_app is None:
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
        with _running(queue.redis_of(app), f"{queue.KEYS}:running:{tenant_id}:{task}") as ours:
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
    ours = bool(connection.set(key, token, nx=True, ex=queue.JOB_TIMEOUT))
    try:
        yield ours
    finally:
        if ours:
            connection.eval(_RELEASE, 1, key, token)


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
    worker = SimpleWorker([Queue(queue.QUEUE, connection=connection)], connection=connection)
    worker.work(burst=burst, with_scheduler=True)
