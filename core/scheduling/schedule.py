"""Scheduled work: per tenant, two tasks, ``on_schedule`` (the plugins', and core's sweep that
encrypts client fields a plugin wants protected) and the delivery of the mail that is due.

Three ways to run them:

* :func:`tick`, once, on demand (``bookwell tick``): every tenant, now. It waits for no period,
  but skips a tenant's task that another process is running right then (its database lease).
* :func:`run_due`, each period of the in-process ticker (``bookwell serve`` without Redis): a
  tenant's task runs only in the process that takes its database lease, at most once a period.
* the RQ jobs of :mod:`bookwell.core.app.jobs` (``bookwell worker`` with Redis, enqueued by
  :mod:`bookwell.core.scheduling.tickers`), which call :func:`run_task` under Redis locks instead.

A run need not finish everything. Every way above runs each tenant's tasks again at the next
tick (the period, ``TICK_SECONDS``, or the next ``bookwell tick``), and nothing here counts on a
run having done all there was: long work (deleting years of old bookings) takes a bounded slice
per run, well within ``SCHEDULE_TIMEOUT_SECONDS``, and carries on at the next tick. What it
reports with ``ctx.progress`` reaches :func:`tick`'s ``progress`` listener, if any.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select

from bookwell.core.context import make_context, protection, tools
from bookwell.core.foundation import clock
from bookwell.core.mail import DeliveryReport, deliver_due
from bookwell.core.pluginhost import health as plugin_health
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db, leases, queue
from bookwell.core.storage.models import Tenant

log = logging.getLogger("bookwell.schedule")
MAIL_ROUNDS = 20  # per tenant and tick, of deliver_due's batch each
TASKS = ("on_schedule", "mail")
# How long a run may hold its lease before another process may take it over (a process that died
# mid-run holds nothing for longer); on_schedule calls and mail batches are bounded well within.
RUN_BOUND = timedelta(seconds=queue.JOB_TIMEOUT)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TickReport:
    tenant: str
    plugins: tuple[str, ...]
    # None on a dry run, when the database failed (logged), or when the task did not run here.
    mail: DeliveryReport | None = None
    # Tasks that another process was running, so this tick left them alone.
    skipped: tuple[str, ...] = ()


def lease_name(tenant_id: int, task: str) -> str:
    return f"schedule:{tenant_id}:{task}"


def period_end(now: datetime, period: timedelta) -> datetime:
    """The end of the period ``now`` falls in. Periods are aligned on a fixed instant, so that
    processes ticking out of phase still agree on which period it is."""
    return _EPOCH + ((now - _EPOCH) // period + 1) * period


def send_tenant_mail(app: Flask, now: datetime, tenant_id: int | None) -> DeliveryReport:
    """Send the due mail (of one tenant, or all), batch after batch, within bounds. Raises
    when the database fails; a message that fails is counted and retried by the outbox."""
    claimed = sent = failed = 0
    for _ in range(MAIL_ROUNDS):
        report = deliver_due(app, now, tenant_id=tenant_id)
        claimed, sent, failed = (
            claimed + report.claimed,
            sent + report.sent,
            failed + report.failed,
        )
        if report.claimed == 0:
            break
    return DeliveryReport(claimed=claimed, sent=sent, failed=failed)


def deliver_tenant_mail(app: Flask, now: datetime, tenant_id: int) -> DeliveryReport | None:
    """:func:`send_tenant_mail`, logging a failure instead of raising it."""
    try:
        return send_tenant_mail(app, now, tenant_id)
    except Exception:
        log.exception("mail delivery of tenant %s failed", tenant_id)
        return None


def run_on_schedule(
    app: Flask, tenant: Tenant, now: datetime, *, dry_run: bool = False
) -> tuple[str, ...]:
    """Tell the tenant's enabled plugins ``on_schedule``; returns the names of those that
    implement it. Call in an app context."""
    host = host_of(app)
    enabled = host.enabled_for(db.session(), tenant.id)
    host.event("on_schedule", make_context(tenant, now, dry_run=dry_run), enabled)
    if not dry_run:
        plugin_health.forget_old(app, tenant.id, now)
        # Core's own slice of protection work: stored client fields not yet encrypted.
        protection.sweep_on_tick(app, tenant.id, now)
    implementers = {
        host.pm.get_name(implementation.plugin)
        for implementation in host.pm.hook.on_schedule.get_hookimpls()
    }
    return tuple(sorted(implementers & set(enabled)))


def run_task(app: Flask, tenant: Tenant, task: str, now: datetime) -> TickReport:
    """Run one task of one tenant, with no lease: the caller holds one. Call in an app context."""
    if task == "on_schedule":
        return TickReport(tenant.slug, run_on_schedule(app, tenant, now))
    if task == "mail":
        return TickReport(tenant.slug, (), mail=send_tenant_mail(app, now, tenant.id))
    raise ValueError(f"no scheduled task {task!r}")


def _tenants(slug: str | None = None) -> list[Tenant]:
    query = select(Tenant).order_by(Tenant.slug)
    if slug is not None:
        query = query.where(Tenant.slug == slug)
    return list(db.session().scalars(query))


ProgressListener = Callable[[str, str, int, int], None]


@contextlib.contextmanager
def progress_to(app: Flask, listener: ProgressListener | None) -> Iterator[None]:
    """Meanwhile, every ``ctx.progress(done, total)`` of ``app``'s plugins calls
    ``listener(plugin, tenant slug, done, total)``, from the plugins' threads."""
    if listener is None:
        yield
        return
    previous = app.extensions.get(tools.EXTENSION)
    app.extensions[tools.EXTENSION] = listener
    try:
        yield
    finally:
        if previous is None:
            app.extensions.pop(tools.EXTENSION, None)
        else:
            app.extensions[tools.EXTENSION] = previous


def tick(
    app: Flask,
    now: datetime,
    *,
    slug: str | None = None,
    dry_run: bool = False,
    progress: ProgressListener | None = None,
) -> list[TickReport]:
    """Run ``on_schedule`` once per tenant for the plugins it enabled, then send its due mail
    (not on a dry run), whatever ran earlier in this period; a task that another process is
    running is skipped. ``now`` is the instant the plugins see; their ``ctx.progress`` goes to
    ``progress`` (see :func:`progress_to`). Call in an app context."""
    with progress_to(app, progress):
        return _tick(app, now, slug, dry_run)


def _tick(app: Flask, now: datetime, slug: str | None, dry_run: bool) -> list[TickReport]:
    holder = leases.new_holder()
    reports = []
    for tenant in _tenants(slug):
        if dry_run:
            reports.append(TickReport(tenant.slug, run_on_schedule(app, tenant, now, dry_run=True)))
            continue
        plugins: tuple[str, ...] = ()
        mail = None
        skipped = []
        for task in TASKS:
            # Leases are measured on the real clock: ``now`` may be an instant chosen by hand.
            started = clock.now(app)
            name = lease_name(tenant.id, task)
            if not leases.take(app, name, holder, started, started + RUN_BOUND, over_done=True):
                skipped.append(task)
                continue
            try:
                if task == "on_schedule":
                    plugins = run_on_schedule(app, tenant, now)
                else:
                    mail = deliver_tenant_mail(app, now, tenant.id)
            finally:
                leases.finish(app, name, holder, clock.now(app))
        reports.append(TickReport(tenant.slug, plugins, mail=mail, skipped=tuple(skipped)))
    return reports


def run_due(app: Flask, holder: str, period: timedelta) -> list[tuple[str, str]]:
    """One period of the in-process ticker: run each tenant's tasks whose lease this process
    takes, at most once per period whatever the number of processes. Returns the (tenant slug,
    task) pairs it ran. A task that fails is logged, and the others still run."""
    ran = []
    with app.app_context():
        for tenant in _tenants():
            for task in TASKS:
                now = clock.now(app)
                done_until = period_end(now, period)
                name = lease_name(tenant.id, task)
                if not leases.take(app, name, holder, now, max(done_until, now + RUN_BOUND)):
                    continue
                try:
                    run_task(app, tenant, task, now)
                    ran.append((tenant.slug, task))
                except Exception:
                    log.exception("scheduled %s of tenant %s failed", task, tenant.slug)
                finally:
                    leases.finish(app, name, holder, done_until)
    return ran
