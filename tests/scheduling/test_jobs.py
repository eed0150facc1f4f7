"""Scheduled work and mail as jobs: on RQ with a real redis-server, or in-process under database
leases; several processes never run a tenant's task twice, and Redis stopping never fails a
booking."""

from __future__ import annotations

import logging
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis
from click.testing import CliRunner
from conftest import booking_body
from redis_server import RedisServer, answers, free_port, wait_until
from rq import Queue, SimpleWorker
from rq.job import JobStatus
from sqlalchemy import select, update

from bookwell.core.app import jobs as worker_jobs
from bookwell.core.cli.root import main
from bookwell.core.mail import dispatch as mail_dispatch
from bookwell.core.mail import outbox
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.scheduling import schedule, tickers
from bookwell.core.storage import db, leases
from bookwell.core.storage import queue as job_queue
from bookwell.core.storage.models import OutboxMessage
from bookwell.core.testing import open_business
from bookwell.hooks import Manifest, hookimpl

SLOT = "2027-03-02T10:00:00+01:00"
PERIOD = timedelta(seconds=60)


class Counting:
    """Counts its on_schedule calls: (tenant slug, the instant it was given)."""

    MANIFEST = Manifest("counting", "Counting", "Counts scheduled runs.", "1", "test", "tests")
    calls: list[tuple[str, datetime]] = []

    @hookimpl
    def on_schedule(ctx):
        Counting.calls.append((ctx.tenant.slug, ctx.now))


@pytest.fixture(autouse=True)
def no_calls_yet():
    Counting.calls.clear()


def per_tenant(calls) -> dict[str, int]:
    counted: dict[str, int] = {}
    for slug, _ in calls:
        counted[slug] = counted.get(slug, 0) + 1
    return counted


@pytest.fixture
def tenants(app, clock):
    """Two businesses, each with the counting plugin enabled."""
    businesses = [open_business(app, clock()), open_business(app, clock(), "barber", "Barber")]
    with app.app_context():
        for business in businesses:
            plugin_changes.enable(app, business.tenant_id, "counting", {}, clock(), actor="test")
    return businesses


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=[Counting], MAIL_DELIVERY="manual", DATABASE_POOL_SIZE=20)


def at_once(count: int, work):
    """Run ``work(index)`` in ``count`` threads released together; returns their answers."""
    barrier = threading.Barrier(count)
    answers: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = work(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def book(app, business) -> None:
    answer = app.test_client().post(
        f"/api/v1/tenants/{business.slug}/bookings", json=booking_body(business, SLOT)
    )
    assert answer.status_code == 201, answer.json


def rows(app) -> list[OutboxMessage]:
    with db.fresh_session(app) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# --- database leases -----------------------------------------------------------------------------


def test_of_many_simultaneous_takers_exactly_one_gets_the_lease(app, clock):
    now = clock()
    holders = [f"taker-{index}" for index in range(8)]
    taken = at_once(8, lambda i: leases.take(app, "job", holders[i], now, now + PERIOD))
    assert taken.count(True) == 1
    # Held: nobody takes it, not even at the same instant again.
    assert not any(at_once(8, lambda i: leases.take(app, "job", holders[i], now, now + PERIOD)))
    clock.advance(seconds=60)  # expired: again exactly one
    later = clock()
    again = at_once(8, lambda i: leases.take(app, "job", holders[i], later, later + PERIOD))
    assert again.count(True) == 1


def test_a_finished_run_holds_its_period_except_against_a_manual_tick(app, clock):
    now = clock()
    assert leases.take(app, "job", "ticker", now, now + timedelta(minutes=10))
    assert not leases.take(app, "job", "manual", now, now + PERIOD, over_done=True)  # running
    leases.finish(app, "job", "ticker", now + PERIOD)
    assert not leases.take(app, "job", "other-ticker", now, now + PERIOD)
    assert leases.take(app, "job", "manual", now, now + PERIOD, over_done=True)


def test_periods_are_aligned_so_that_processes_agree_on_them():
    period = timedelta(minutes=1)
    at = datetime(2027, 3, 1, 8, 0, 59, tzinfo=UTC)
    assert schedule.period_end(at, period) == datetime(2027, 3, 1, 8, 1, tzinfo=UTC)
    assert schedule.period_end(at + timedelta(seconds=1), period) == datetime(
        2027, 3, 1, 8, 2, tzinfo=UTC
    )


def test_two_processes_ticking_at_the_same_instant_run_each_tenants_work_once(
    make_app, app, tenants, clock
):
    other = make_app(EXTRA_PLUGINS=[Counting], MAIL_DELIVERY="manual")
    apps = [app, other]
    holders = [leases.new_holder(), leases.new_holder()]

    def run(index):
        return schedule.run_due(apps[index], holders[index], PERIOD)

    ran = at_once(2, run)
    assert sorted(ran[0] + ran[1]) == [
        ("barber", "mail"),
        ("barber", "on_schedule"),
        ("salon", "mail"),
        ("salon", "on_schedule"),
    ]
    assert per_tenant(Counting.calls) == {"salon": 1, "barber": 1}
    # Again in the same period, from either process: nothing runs.
    assert at_once(2, run) == [[], []]
    clock.advance(seconds=60)
    at_once(2, run)
    assert per_tenant(Counting.calls) == {"salon": 2, "barber": 2}


def test_the_in_process_ticker_runs_once_a_period(make_app, tenants, clock):
    ticking = make_app(EXTRA_PLUGINS=[Counting], MAIL_DELIVERY="manual", TICK_SECONDS=0.02)
    ticker = tickers.start_in_process(ticking)
    assert ticker is not None
    try:
        wait_until(lambda: per_tenant(Counting.calls) == {"salon": 1, "barber": 1})
        clock.advance(seconds=0.02)  # the ticker's period: it runs again, once
        wait_until(lambda: per_tenant(Counting.calls) == {"salon": 2, "barber": 2})
    finally:
        ticker.stop()
    assert per_tenant(Counting.calls) == {"salon": 2, "barber": 2}


def test_serve_with_redis_or_no_ticking_starts_no_ticker(make_app):
    assert tickers.start_in_process(make_app(REDIS_URL="redis://127.0.0.1:1/0")) is None
    assert tickers.start_in_process(make_app(TICK_SECONDS=0)) is None


def test_a_manual_tick_skips_a_task_another_process_is_running(app, tenants, clock):
    salon = tenants[0]
    name = schedule.lease_name(salon.tenant_id, "on_schedule")
    assert leases.take(app, name, "busy-process", clock(), clock() + timedelta(minutes=10))
    with app.app_context():
        reports = {report.tenant: report for report in schedule.tick(app, clock())}
    assert reports["salon"].skipped == ("on_schedule",)
    assert reports["barber"].skipped == ()
    assert per_tenant(Counting.calls) == {"barber": 1}
    # A manual tick runs again whenever asked (the periodic ticker waits for the next period).
    with app.app_context():
        schedule.tick(app, clock())
    assert per_tenant(Counting.calls) == {"barber": 2}


def test_a_failing_task_is_logged_and_the_others_still_run(
    app, tenants, clock, monkeypatch, caplog
):
    def broken_mail(app, now, tenant_id):
        raise RuntimeError("the outbox is unreachable")

    monkeypatch.setattr(schedule, "send_tenant_mail", broken_mail)
    with caplog.at_level(logging.ERROR, logger="bookwell.schedule"):
        ran = schedule.run_due(app, "ticker", PERIOD)
    assert sorted(ran) == [("barber", "on_schedule"), ("salon", "on_schedule")]
    assert "scheduled mail of tenant salon failed" in caplog.text
    assert "the outbox is unreachable" in caplog.text
    clock.advance(seconds=60)  # the next period tries again
    monkeypatch.undo()
    assert ("salon", "mail") in schedule.run_due(app, "ticker", PERIOD)


def test_the_tick_command_says_what_it_left_to_another_process(
    app, tenants, clock, tmp_path, database_url, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    name = schedule.lease_name(tenants[1].tenant_id, "mail")
    assert leases.take(app, name, "busy-process", clock(), clock() + timedelta(days=3650))
    ran = CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), "tick"])
    assert ran.exit_code == 0, ran.output
    assert "barber" in ran.output and "running elsewhere: mail" in ran.output
    assert "salon" in ran.output and ran.output.count("running elsewhere") == 1


# --- Redis and RQ --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    if server.running():
        server.stop()


@pytest.fixture
def redis_url(redis_server):
    if not answers(redis_server.url):  # a test that stopped it failed before starting it again
        redis_server.start()
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    connection.close()
    return redis_server.url


@pytest.fixture
def queue(redis_url):
    connection = redis.Redis.from_url(redis_url)
    yield Queue(job_queue.QUEUE, connection=connection)
    connection.close()


def work(app, queue) -> None:
    """Run every queued job, in this process, as ``bookwell worker --burst`` does."""
    worker_jobs.use_app(app)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_two_tickers_enqueue_each_tenants_tasks_once_a_period(
    make_app, tenants, clock, redis_url, queue
):
    apps = [make_app(EXTRA_PLUGINS=[Counting], REDIS_URL=redis_url) for _ in range(2)]
    holders = [leases.new_holder(), leases.new_holder()]

    def enqueue(index):
        return tickers.enqueue_due(apps[index], holders[index])

    enqueued = at_once(2, enqueue)
    assert sorted(enqueued[0] + enqueued[1]) == [
        ("barber", "mail"),
        ("barber", "on_schedule"),
        ("salon", "mail"),
        ("salon", "on_schedule"),
    ]
    assert queue.count == 4
    assert at_once(2, enqueue) == [[], []]  # the same period: nothing more
    work(apps[0], queue)
    assert per_tenant(Counting.calls) == {"salon": 1, "barber": 1}
    assert queue.finished_job_registry.count == 4

    clock.advance(seconds=60)
    assert len(sum(at_once(2, enqueue), [])) == 4
    work(apps[1], queue)
    assert per_tenant(Counting.calls) == {"salon": 2, "barber": 2}


def test_a_job_still_running_is_not_run_twice(app, tenants, redis_url, queue):
    salon = tenants[0]
    worker_app = app
    worker_app.config["REDIS_URL"] = redis_url
    connection = job_queue.redis_of(worker_app)
    connection.set(f"{job_queue.KEYS}:running:{salon.tenant_id}:on_schedule", "another job")
    job = queue.enqueue(worker_jobs.run_scheduled, salon.tenant_id, "on_schedule")
    work(worker_app, queue)
    assert job.return_value() == "skipped: still running in another job"
    assert Counting.calls == []


def test_booking_mail_is_sent_by_an_rq_job(make_app, clock, redis_url, queue):
    app = make_app(REDIS_URL=redis_url)  # MAIL_DELIVERY "background": kick enqueues a job
    business = open_business(app, clock())
    answer = app.test_client().post(
        f"/api/v1/tenants/{business.slug}/bookings", json=booking_body(business, SLOT)
    )
    assert answer.status_code == 201, answer.json
    assert queue.count == 1
    [job] = queue.get_jobs()
    assert job.func_name == "bookwell.core.app.jobs.deliver_mail" and job.args == ()
    assert all(row.sent_at is None for row in rows(app))
    work(app, queue)
    assert rows(app) and all(row.sent_at is not None for row in rows(app))


def test_redis_stopping_never_fails_a_booking_and_the_mail_goes_out_when_it_is_back(
    make_app, clock, redis_server, redis_url, queue, caplog
):
    app = make_app(REDIS_URL=redis_url)
    business = open_business(app, clock())
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="bookwell.jobs"):
        answer = app.test_client().post(
            f"/api/v1/tenants/{business.slug}/bookings", json=booking_body(business, SLOT)
        )
    assert answer.status_code == 201, answer.json
    assert "mail waits in the outbox" in caplog.text
    assert rows(app) and all(row.sent_at is None for row in rows(app))
    # The ticker cannot enqueue either; it says so and carries on.
    with pytest.raises(redis.ConnectionError):
        tickers.enqueue_due(app, "ticker")

    redis_server.start()
    assert tickers.enqueue_due(app, "ticker") == [("salon", "on_schedule"), ("salon", "mail")]
    work(app, queue)
    assert all(row.sent_at is not None for row in rows(app))


def test_a_redis_that_never_answers_costs_one_booking_its_timeout_not_every_booking(
    make_app, clock
):
    # A socket that accepts connections and never answers: the worst kind of Redis outage.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    silent.setblocking(False)

    def connections_made() -> int:
        made = 0
        while True:
            try:
                connection, _ = silent.accept()
            except BlockingIOError:
                return made
            connection.close()
            made += 1

    try:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        business = open_business(app, clock())
        client = app.test_client()
        for hour in (10, 11, 12):
            answer = client.post(
                f"/api/v1/tenants/{business.slug}/bookings",
                json=booking_body(business, f"2027-03-02T{hour}:00:00+01:00"),
            )
            assert answer.status_code == 201, answer.json
        assert len(rows(app)) == 3 and all(row.sent_at is None for row in rows(app))
        # The first booking tried Redis and gave up at its timeout; the next two left it alone.
        assert connections_made() == 1
        # The quiet period is over: Redis is asked again.
        app.extensions[job_queue.QUIET_UNTIL] = 0.0
        assert mail_dispatch.enqueue_mail(app) is False
        assert connections_made() == 1
    finally:
        silent.close()


def test_a_failed_mail_job_is_logged_and_retried_with_backoff(
    app, tenants, clock, redis_url, queue, caplog
):
    app.config.update(REDIS_URL=redis_url, SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    salon = tenants[0]
    book(app, salon)
    assert tickers.enqueue_due(app, "ticker")
    mail_job = next(job for job in queue.get_jobs() if job.args == (salon.tenant_id, "mail"))
    assert mail_job.retries_left == len(outbox.BACKOFF_MINUTES)
    assert mail_job.retry_intervals == [60, 300, 1800, 7200]

    with caplog.at_level(logging.ERROR, logger="bookwell.jobs"):
        work(app, queue)
    assert f"job mail of tenant #{salon.tenant_id} failed; RQ retries it" in caplog.text
    assert "MailNotSent: 1 of 1 messages failed" in caplog.text
    mail_job.refresh()
    assert mail_job.get_status() == JobStatus.SCHEDULED
    assert mail_job.retries_left == len(outbox.BACKOFF_MINUTES) - 1
    assert mail_job.id in queue.scheduled_job_registry
    retry_at = queue.scheduled_job_registry.get_scheduled_time(mail_job)
    assert timedelta(seconds=50) < retry_at - datetime.now(UTC) <= timedelta(seconds=60)

    # A minute later the transport works again and the messages are due: the retried job (the
    # one RQ's scheduler enqueues at its time) sends them.
    app.config["SMTP_URL"] = None
    clock.advance(minutes=1)
    queue.scheduled_job_registry.remove(mail_job)
    queue.enqueue_job(mail_job)
    work(app, queue)
    assert mail_job.get_status() == JobStatus.FINISHED
    assert all(row.sent_at is not None for row in rows(app))


def test_bookwell_worker_burst_enqueues_the_periods_work_and_runs_it(
    app, tenants, clock, tmp_path, database_url, redis_url, queue, monkeypatch
):
    book(app, tenants[0])
    # The command runs on the real clock: make the waiting mail due by it.
    with db.write_transaction(app) as session:
        session.execute(
            update(OutboxMessage).values(next_attempt_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    ran = CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), "worker", "--burst"])
    assert ran.exit_code == 0, ran.output
    assert queue.count == 0
    assert queue.finished_job_registry.count == 4  # each tenant's on_schedule and mail
    assert rows(app) and all(row.sent_at is not None for row in rows(app))


def test_bookwell_worker_needs_redis(app, tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    ran = CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), "worker"])
    assert ran.exit_code != 0 and "REDIS_URL" in ran.output
