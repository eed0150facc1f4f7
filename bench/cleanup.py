"""Deleting old bookings while new ones are made: the history cleanup plugin archives and
deletes ``--cleanup-bookings`` ended bookings (default 70,000; the issue's figure is 1,000,000),
an equal share each round, in a process of its own as ``bookwell tick`` would; meanwhile this
process books through the API one booking after another. Reported: the 99th-percentile latency
of a new booking during the cleanup against the same with no cleanup running (aim: at most 2x),
and, summed over the rounds, how many bookings went and how long it took.

The ended bookings are written by one ``INSERT ... SELECT`` over a generated series (a recursive
CTE on SQLite, ``generate_series`` on PostgreSQL): a million rows take about a minute here, and
the setup time is printed. They lie one after another, 30 minutes each, from 1960 on: round
``r`` runs the cleanup at an instant that makes exactly the ``r``-th share 30 days old.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import statistics
import sys
import time as clock_time
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select, text

import bookwell.plugins.history_cleanup as history_cleanup
from bookwell.core import create_app, schema
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.scheduling import schedule
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Tenant

from .benchmark import Benchmark, Comparison, Measurement, Options, Variant
from .databases import scratch_database

DEFAULT_BOOKINGS = 70_000
NOW = datetime(2030, 1, 7, 0, 0, tzinfo=UTC)  # the app's clock: new bookings come after it
HISTORY_START = datetime(1960, 1, 1, tzinfo=UTC)
SLOT = timedelta(minutes=30)
RETENTION_DAYS = 30
BASELINE_BOOKINGS = 300  # per round with no cleanup
MIN_BOOKINGS_DURING = 50  # a round whose cleanup is quicker still books this many
PROVIDERS = 4
RETRIES = 5  # tries per booking answered "busy" (each waited the lock timeout, 5 s)
QUIET = "booking p99, no cleanup"
DURING = "booking p99, during cleanup"
# Set by ``python -m bench --cleanup-bookings N`` (argparse lives in __main__).
size = {"bookings": DEFAULT_BOOKINGS}


def settings(url: str, instance: str) -> dict[str, Any]:
    return {
        "INSTANCE_PATH": instance,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "ENCRYPTION_KEY": "bench",
        "RATE_LIMITS": "off",
        "CLOCK": lambda: NOW,
        "LOAD_ENTRY_POINTS": False,
        "EXTRA_PLUGINS": [history_cleanup],
        "MAIL_DELIVERY": "manual",  # the bookings' mail would take the write lock too
    }


def build(url: str, instance: str, bookings: int) -> tuple[Flask, int, int, list[int], float]:
    """The app, the business (cleanup on), its service and providers, and ``bookings`` ended
    bookings; returns also how long writing them took."""
    app = create_app(settings(url, instance))
    schema.upgrade(db.engine_of(app))
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, "bench", name="Bench", timezone="UTC", now=NOW)
        service = add_service(
            session, tenant, "Visit", duration_minutes=15, slot_step_minutes=15, horizon_days=365
        )
        always = {weekday: [(time(0), time(23, 45))] for weekday in range(7)}
        providers = [
            add_provider(session, tenant, f"P{index}", [service], always).id
            for index in range(PROVIDERS)
        ]
        ids = tenant.id, service.id
    with app.app_context():
        plugin_changes.enable(
            app, ids[0], "history_cleanup", {"retention_days": RETENTION_DAYS}, NOW
        )
    started = clock_time.perf_counter()
    insert_history(app, ids[0], ids[1], providers[0], bookings)
    return app, ids[0], ids[1], providers, clock_time.perf_counter() - started


def insert_history(app: Flask, tenant_id: int, service_id: int, provider_id: int, count: int):
    """``count`` completed bookings, one after another from HISTORY_START, in one statement."""
    engine = db.engine_of(app)
    base = int(HISTORY_START.timestamp())
    step = int(SLOT.total_seconds())
    if engine.dialect.name == "sqlite":
        series = (
            "WITH RECURSIVE series(n) AS"
            " (SELECT 0 UNION ALL SELECT n + 1 FROM series WHERE n + 1 < :count) "
        )
        moment = "datetime(:base + {offset}, 'unixepoch') || '.000000'"
        source = "series"
    else:
        series = ""
        moment = "to_timestamp(:base + {offset})"
        source = "generate_series(0, :count - 1) AS series(n)"
    start, end = moment.format(offset="n * :step"), moment.format(offset="(n + 1) * :step")
    statement = text(
        series
        + "INSERT INTO bookings (tenant_id, reference, manage_token_hash, service_id, provider_id,"
        " starts_at, ends_at, blocked_from, blocked_until, client_name, client_email,"
        " client_phone, client_notes, status, price_cents, prepaid_cents, discount_cents,"
        " created_at, updated_at, reschedule_count) "
        f"SELECT :tenant, 'H' || n, :token, :service, :provider, {start}, {end}, {start}, {end},"
        f" 'Client ' || n, 'client' || n || '@example.com', NULL, NULL, 'completed', 3000, 0, 0,"
        f" {start}, {end}, 0 FROM {source}"
    )
    with engine.begin() as connection:
        connection.execute(
            statement,
            {
                "count": count,
                "base": base,
                "step": step,
                "tenant": tenant_id,
                "token": "0" * 64,
                "service": service_id,
                "provider": provider_id,
            },
        )


def era_now(index: int, shares: int, total: int) -> datetime:
    """The instant at which exactly the first ``index + 1`` shares are 30 days old."""
    last = (index + 1) * total // shares  # bookings [0, last) will have ended before the cut
    return HISTORY_START + last * SLOT + timedelta(days=RETENTION_DAYS, minutes=1)


def clean(url: str, instance: str, tenant_id: int, now_iso: str, ready, done) -> None:
    """In a process of its own, as ``bookwell tick`` is: run the plugin's schedule as at
    ``now`` until nothing it may delete is left; ``done`` gets (seconds, bookings deleted)."""
    app = create_app(settings(url, instance))
    now = datetime.fromisoformat(now_iso)
    before = now - timedelta(days=RETENTION_DAYS)
    with app.app_context():
        tenant = db.session().get(Tenant, tenant_id)
        left = _ended_before(app, tenant_id, before)
        ready.set()
        started = clock_time.perf_counter()
        remaining = left
        while remaining:
            schedule.run_on_schedule(app, tenant, now)
            before_run, remaining = remaining, _ended_before(app, tenant_id, before)
            if remaining == before_run:  # the plugin failed (its log says why): not for ever
                raise RuntimeError("the cleanup deleted nothing in a whole run")
        done.put((clock_time.perf_counter() - started, left))
    db.engine_of(app).dispose()


def _ended_before(app: Flask, tenant_id: int, before: datetime) -> int:
    with db.fresh_session(app) as session:
        return session.scalar(
            select(func.count(Booking.id)).where(
                Booking.tenant_id == tenant_id, Booking.ends_at < before
            )
        )


class Bookings:
    """New bookings through the API, one after another, each at a free time of its own."""

    def __init__(self, app: Flask, service_id: int, providers: list[int]) -> None:
        self.client = app.test_client()
        self.service_id = service_id
        self.providers = providers
        self.made = 0
        self.busy = 0  # answers "busy" since take_busy() was last called

    def book(self) -> float:
        """Make one booking; returns its latency as its client sees it: an answer ``busy``
        (the write lock not granted in time; nothing stored) is retried, as a client would,
        and counted, and the latency runs from the first try."""
        index = self.made
        self.made += 1
        provider = self.providers[index % len(self.providers)]
        slot = index // len(self.providers)
        start = NOW + timedelta(days=1 + slot // 90, minutes=15 * (slot % 90))
        started = clock_time.perf_counter()
        for _ in range(RETRIES):
            answer = self.client.post(
                "/api/v1/tenants/bench/bookings",
                json={
                    "service_id": self.service_id,
                    "provider_id": provider,
                    "start": start.isoformat(),
                    "client": {"name": "New", "email": "new@example.com"},
                },
            )
            if answer.status_code != 503:
                break
            self.busy += 1
        elapsed = clock_time.perf_counter() - started
        if answer.status_code != 201:
            raise RuntimeError(f"booking refused: {answer.status_code} {answer.json}")
        return elapsed

    def take_busy(self) -> int:
        busy, self.busy = self.busy, 0
        return busy


def report(line: str) -> None:
    """Each round's figures as it ends: a run of a million bookings takes a while."""
    print(f"cleanup: {line}", file=sys.stderr, flush=True)


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[98] * 1000


@contextlib.contextmanager
def prepare(options: Options) -> Iterator[list[Variant]]:
    total = size["bookings"]
    shares = options.rounds
    instance = str(options.workdir / "cleanup-instance")
    with scratch_database(options.database_url, options.workdir, "cleanup") as database:
        print(f"cleanup: writing {total:,} ended bookings ...", file=sys.stderr, flush=True)
        app, tenant_id, service_id, providers, setup = build(database.url, instance, total)
        print(f"cleanup: {total:,} ended bookings written in {setup:.1f}s", file=sys.stderr)
        bookings = Bookings(app, service_id, providers)
        for _ in range(20):  # untimed: the first bookings pay for compiling statements
            bookings.book()
        spawn = multiprocessing.get_context("spawn")
        era = iter(range(shares))

        def quiet() -> Measurement:
            bookings.take_busy()
            latencies = [bookings.book() for _ in range(BASELINE_BOOKINGS)]
            busy = bookings.take_busy()
            report(f"{QUIET}: {p99(latencies):.1f} ms, busy answers {busy}")
            return Measurement(p99(latencies), {"busy answers": busy})

        def during() -> Measurement:
            now = era_now(next(era), shares, total)
            ready, done = spawn.Event(), spawn.Queue()
            worker = spawn.Process(
                target=clean,
                args=(database.url, instance, tenant_id, now.isoformat(), ready, done),
            )
            bookings.take_busy()
            worker.start()
            try:
                if not ready.wait(120):
                    raise RuntimeError("the cleanup process did not start")
                latencies = []
                while worker.is_alive() or len(latencies) < MIN_BOOKINGS_DURING:
                    latencies.append(bookings.book())
                    if not worker.is_alive() and done.empty() and worker.exitcode:
                        raise RuntimeError(f"the cleanup process failed ({worker.exitcode})")
                seconds, deleted = done.get(timeout=60)
            finally:
                worker.join(timeout=60)
            busy = bookings.take_busy()
            report(
                f"{DURING}: {p99(latencies):.1f} ms over {len(latencies)} bookings, busy answers"
                f" {busy}; {deleted:,} deleted in {seconds:.1f}s"
            )
            return Measurement(
                p99(latencies),
                {
                    "bookings deleted": deleted,
                    "cleanup milliseconds": round(seconds * 1000),
                    "bookings made during cleanup": len(latencies),
                    "busy answers": busy,
                },
            )

        try:
            yield [
                Variant(QUIET, "ms", quiet, detail=f"p99 of {BASELINE_BOOKINGS} bookings"),
                Variant(
                    DURING,
                    "ms",
                    during,
                    detail=f"p99 of the bookings made while {total // shares:,} ended ones go",
                ),
            ]
            with db.fresh_session(app) as session:
                left = session.scalar(select(func.count(Booking.id)).where(Booking.ends_at < NOW))
            if left:
                raise RuntimeError(f"{left} ended bookings were not deleted")
        finally:
            db.engine_of(app).dispose()


BENCHMARK = Benchmark(
    name="cleanup",
    description="new bookings' p99 latency while the history cleanup deletes ended bookings",
    prepare=prepare,
    comparisons=(Comparison(DURING, QUIET, aim=2.0),),
)
