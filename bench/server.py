"""Bookings per second through the real server (``bookwell serve``: gunicorn, 2 workers) on
loopback, with a pool of client threads booking distinct free slots; beside it, round by round,
the floor: a bare Flask app doing one INSERT per POST under the same gunicorn settings, on the
same kind of database (``bench/bare_app.py``).

Every slot booked is one the server itself offered and no one else books, so each request
should succeed: a 409 here means the server refused a free slot (or double-booked one earlier),
and fails the run. After the rounds every guarantee is checked: one stored booking per 201, no
two overlapping, each booking's mail composed (no placeholder left) into exactly one message and
sent once, and the audit chain verifies (``bookwell audit verify``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import text

from bookwell.core import create_app
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.foundation import config
from bookwell.core.storage import db

from .benchmark import Benchmark, Comparison, Measurement, Options, Variant
from .databases import ScratchDatabase, scratch_database

SLUG = "bench"
PROVIDERS = 8  # consecutive bookings go to different providers, so they never contend for a slot
WORKERS = 2
CLIENT_THREADS = 8
BOOKINGS_PER_ROUND = 500  # about 2 s per round on a small machine
QUICK_BOOKINGS_PER_ROUND = 200
BARE_POSTS_PER_ROUND = 2000  # the floor is much faster: as many seconds' worth as the bookings
QUICK_BARE_POSTS_PER_ROUND = 1000
MAIL_WAIT_LIMIT = 120.0  # seconds for the server's delivery to send every booking's mail
BARE = "bare INSERT app"
BOOKINGS = "POST /bookings"
WARM_UP_BOOKINGS = 2 * CLIENT_THREADS
ROUND_TIME_LIMIT = 20.0  # seconds; a round cut short reports the rate of what it did book
START_TIME_LIMIT = 30.0
REQUEST_TIMEOUT = 10.0
MAX_DAYS_PER_QUERY = 31  # under the API's MAX_AVAILABILITY_DAYS


def cli(instance: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "bookwell.core.cli", "--instance", str(instance), *arguments]


def server_environment(database: ScratchDatabase) -> dict[str, str]:
    """The caller's environment without any Bookwell setting that could point the server
    elsewhere (another database, Redis, rate limits), plus ours."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in config.ENVIRONMENT_KEYS and name != "BOOKWELL_INSTANCE"
    }
    environment["DATABASE_URL"] = database.url
    environment["BOOKWELL_RATE_LIMITS"] = "off"  # a load test from one IP would hit them at once
    return environment


def set_up_business(instance: Path, database: ScratchDatabase) -> int:
    """A tenant with one 30-minute service and PROVIDERS providers open 09:00-18:00 daily;
    returns the service's id."""
    app = create_app(
        {"INSTANCE_PATH": str(instance), "DATABASE_URL": database.url, "RATE_LIMITS": "off"}
    )
    try:
        with db.write_transaction(app) as session:
            tenant = create_tenant(
                session, SLUG, name="Bench", timezone="Europe/Paris", now=datetime.now(UTC)
            )
            service = add_service(
                session,
                tenant,
                "Cut",
                duration_minutes=30,
                slot_step_minutes=30,
                min_notice_minutes=0,
                horizon_days=365,
                price_cents=3000,
            )
            every_day = {weekday: [(time_of_day(9), time_of_day(18))] for weekday in range(7)}
            for number in range(PROVIDERS):
                add_provider(session, tenant, f"Provider {number}", [service], every_day)
            return service.id
    finally:
        db.engine_of(app).dispose()


def free_port() -> int:
    # The port could in principle be taken between this and gunicorn's bind; the health wait
    # below would then fail loudly rather than measure something else.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIME_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{tail(log)}")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /healthz in {START_TIME_LIMIT:g}s:\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the gunicorn master (by its pid) lets it stop its workers; kill if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def fetch_slots(base: str, service_id: int, needed: int) -> list[dict[str, Any]]:
    """At least ``needed`` free slots, earliest first, providers alternating at each time."""
    slots: list[dict[str, Any]] = []
    # From the day after tomorrow: no slot may fall into the past while the run goes on.
    day = datetime.now(UTC).date() + timedelta(days=2)
    while len(slots) < needed:
        last = day + timedelta(days=MAX_DAYS_PER_QUERY - 1)
        answer = requests.get(
            f"{base}/api/v1/tenants/{SLUG}/availability",
            params={"service_id": service_id, "from": day.isoformat(), "to": last.isoformat()},
            timeout=REQUEST_TIMEOUT,
        )
        answer.raise_for_status()
        found = answer.json()["slots"]
        if not found:  # past the service's horizon: asking further would loop for ever
            raise RuntimeError(f"only {len(slots)} free slots to book, {needed} needed")
        slots.extend(found)
        day = last + timedelta(days=1)
    return slots[:needed]


def _processes() -> dict[int, tuple[int, str, float]]:
    """Every process's (parent pid, command name, CPU seconds used), from Linux's ``/proc``;
    empty where there is none."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended while we looked
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return found


def cpu_seconds(server_pid: int, database_is_local_postgresql: bool) -> dict[str, float]:
    """CPU seconds used so far by the server (its master and every process under it) and, for a
    PostgreSQL on this machine, by all its processes. Read before and after a round, their
    differences say where the round's time went."""
    processes = _processes()
    if not processes:
        return {}
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    used, waiting = 0.0, [server_pid]
    while waiting:
        pid = waiting.pop()
        if pid in processes:
            used += processes[pid][2]
            waiting.extend(children.get(pid, ()))
    figures = {"app": used}
    if database_is_local_postgresql:
        database = sum(cpu for _, name, cpu in processes.values() if name == "postgres")
        if database:
            figures["database"] = database
    return figures


SETTLE_LIMIT = 5.0  # seconds a round waits for the server's work after its last answer


class Booker:
    """Books slots off a shared list with a pool of client threads, one HTTP session each.

    With ``cpu`` (see :func:`cpu_seconds`), each round also reports the CPU time the server and
    the database spent per request. It counts until the server falls quiet after the round's
    last answer: the bookings' mail is sent by the server just after them, and is theirs."""

    def __init__(
        self,
        url: str,
        service_id: int,
        slots: Iterator[dict[str, Any]],
        cpu: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.url = url
        self.service_id = service_id
        self.slots = slots
        self.cpu = cpu
        self.lock = threading.Lock()
        self.booked = 0  # over all rounds, warm-up included

    def book(self, count: int) -> Measurement:
        with self.lock:
            batch = [slot for _, slot in zip(range(count), self.slots, strict=False)]
        pending = iter(batch)
        statuses: Counter[str] = Counter()
        deadline = time.perf_counter() + ROUND_TIME_LIMIT

        def client() -> None:
            with requests.Session() as session:
                while time.perf_counter() < deadline:
                    with self.lock:
                        slot = next(pending, None)
                    if slot is None:
                        return
                    outcome = self._post(session, slot)
                    with self.lock:
                        statuses[outcome] += 1

        threads = [threading.Thread(target=client) for _ in range(CLIENT_THREADS)]
        cpu_before = self.cpu() if self.cpu is not None else {}
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        self.booked += statuses["201"]
        counts = {
            "booked": statuses["201"],
            "409": statuses["409"],
            "other failures": sum(n for key, n in statuses.items() if key not in ("201", "409")),
            "not attempted (time limit)": len(batch) - sum(statuses.values()),
        }
        return Measurement(
            statuses["201"] / elapsed, counts, self._cpu_per_request(cpu_before, statuses["201"])
        )

    def _cpu_per_request(self, before: dict[str, float], answered: int) -> dict[str, float]:
        if self.cpu is None or not before or not answered:
            return {}
        after, deadline = self.cpu(), time.monotonic() + SETTLE_LIMIT
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = self.cpu()
            quiet = now.get("app", 0.0) - after.get("app", 0.0) < 0.01  # under 4% of a core
            after = now
            if quiet:
                break
        return {
            f"{part} CPU ms/request": (after[part] - before[part]) * 1000 / answered
            for part in before
            if part in after
        }

    def _post(self, session: requests.Session, slot: dict[str, Any]) -> str:
        body = {
            "service_id": self.service_id,
            "provider_id": slot["provider_id"],
            "start": slot["start"],
            "client": {"name": "Bench Client", "email": "client@example.com"},
        }
        try:
            return str(session.post(self.url, json=body, timeout=REQUEST_TIMEOUT).status_code)
        except requests.RequestException as error:
            return type(error).__name__


def bare_slots() -> Iterator[dict[str, Any]]:
    """What the bare app is sent: bodies shaped like a booking's, never running out."""
    number = 0
    while True:
        number += 1
        yield {"provider_id": number % PROVIDERS + 1, "start": f"2030-01-01T00:00:{number}Z"}


@contextlib.contextmanager
def served(
    command: list[str], environment: dict[str, str], log: Path, base: str
) -> Iterator[subprocess.Popen]:
    with log.open("w") as output:
        process = subprocess.Popen(
            command, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until_healthy(base, process, log)
        yield process
    finally:
        stop(process)


@contextlib.contextmanager
def prepare(options: Options) -> Iterator[list[Variant]]:
    folder = options.workdir / "server"
    instance = folder / "instance"
    folder.mkdir(parents=True, exist_ok=True)
    per_round = QUICK_BOOKINGS_PER_ROUND if options.quick else BOOKINGS_PER_ROUND
    bare_per_round = QUICK_BARE_POSTS_PER_ROUND if options.quick else BARE_POSTS_PER_ROUND
    with (
        scratch_database(options.database_url, folder, "server") as database,
        scratch_database(options.database_url, folder, "bare") as bare_database,
    ):
        environment = server_environment(database)
        initialised = subprocess.run(
            cli(instance, "init"), env=environment, capture_output=True, text=True
        )
        if initialised.returncode:
            raise RuntimeError(f"`bookwell init` failed: {initialised.stderr.strip()}")
        service_id = set_up_business(instance, database)
        port, bare_port = free_port(), free_port()
        base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        serve = cli(
            instance, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)
        )
        bare = [
            sys.executable,
            "-m",
            "bench.bare_app",
            bare_database.url,
            "127.0.0.1",
            str(bare_port),
            str(WORKERS),
        ]
        bare_environment = {**environment, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        log = folder / "server.log"
        local_postgresql = database.kind == "postgresql" and _is_local(database.url)
        with (
            served(serve, environment, log, base) as server,
            served(bare, bare_environment, folder / "bare.log", bare_base) as bare_server,
        ):
            needed = WARM_UP_BOOKINGS + options.rounds * per_round
            booker = Booker(
                f"{base}/api/v1/tenants/{SLUG}/bookings",
                service_id,
                iter(fetch_slots(base, service_id, needed)),
                cpu=lambda: cpu_seconds(server.pid, local_postgresql),
            )
            floor = Booker(
                f"{bare_base}/bookings",
                service_id,
                bare_slots(),
                cpu=lambda: cpu_seconds(bare_server.pid, local_postgresql),
            )
            # Untimed: both workers' first requests pay for imports and statement compilation.
            warm_up = booker.book(WARM_UP_BOOKINGS)
            if warm_up.counts["booked"] != WARM_UP_BOOKINGS:
                raise RuntimeError(f"warm-up bookings failed: {dict(warm_up.counts)}\n{tail(log)}")
            floor.book(WARM_UP_BOOKINGS)
            yield [
                Variant(
                    BARE,
                    "posts/s",
                    lambda: floor.book(bare_per_round),
                    higher_is_better=True,
                    detail=(
                        f"{bare_per_round} one-INSERT POSTs, {CLIENT_THREADS} client threads,"
                        f" {WORKERS} workers"
                    ),
                ),
                Variant(
                    BOOKINGS,
                    "bookings/s",
                    lambda: booker.book(per_round),
                    higher_is_better=True,
                    detail=(
                        f"{per_round} bookings, {CLIENT_THREADS} client threads, {WORKERS} workers"
                    ),
                ),
            ]
            check_guarantees(instance, environment, database, booker.booked)


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1", None)


def check_guarantees(
    instance: Path, environment: dict[str, str], database: ScratchDatabase, booked: int
) -> None:
    """What the rate must not have been bought with: raises on the first guarantee broken."""
    check_rows(database, booked)
    check_mail(database, booked)
    verified = subprocess.run(
        cli(instance, "audit", "verify"), env=environment, capture_output=True, text=True
    )
    if verified.returncode:
        raise RuntimeError(f"`bookwell audit verify` failed: {verified.stdout}{verified.stderr}")


OVERLAPS = text(
    "SELECT count(*) FROM bookings a JOIN bookings b ON a.provider_id = b.provider_id"
    " AND a.id < b.id AND a.blocked_from < b.blocked_until AND b.blocked_from < a.blocked_until"
    " WHERE a.status = 'confirmed' AND b.status = 'confirmed'"
)
MAIL_STATE = text(
    "SELECT"
    " (SELECT count(*) FROM outbox_messages WHERE compose_event IS NOT NULL),"
    " (SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL),"
    " (SELECT count(*) FROM outbox_messages WHERE last_error IS NOT NULL)"
)
MESSAGES_PER_BOOKING = text(
    "SELECT n, count(*) FROM (SELECT b.id, (SELECT count(*) FROM outbox_messages o"
    " WHERE o.booking_id = b.id) AS n FROM bookings b) per_booking GROUP BY n"
)


def check_rows(database: ScratchDatabase, booked: int) -> None:
    """Every 201 must be exactly one stored booking, else the rate counted something else; and
    no two confirmed bookings of a provider may overlap."""
    engine = db.build_engine(database.url, pool_size=1)
    try:
        with engine.connect() as connection:
            stored = connection.scalar(text("SELECT count(*) FROM bookings"))
            overlapping = connection.scalar(OVERLAPS)
    finally:
        engine.dispose()
    if stored != booked:
        raise RuntimeError(f"the server answered 201 {booked} times but stored {stored} bookings")
    if overlapping:
        raise RuntimeError(f"{overlapping} pairs of confirmed bookings overlap")


def check_mail(database: ScratchDatabase, booked: int) -> None:
    """Each booking's placeholder composed into exactly one message (its providers have no
    address: no notice), none held, and every one sent by the server's own delivery."""
    engine = db.build_engine(database.url, pool_size=1)
    deadline = time.monotonic() + MAIL_WAIT_LIMIT
    try:
        while True:
            with engine.connect() as connection:
                placeholders, unsent, errors = connection.execute(MAIL_STATE).one()
                per_booking = dict(connection.execute(MESSAGES_PER_BOOKING).all())
            if (placeholders == 0 and unsent == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    if placeholders:
        raise RuntimeError(f"{placeholders} mail placeholders were never composed")
    if per_booking != {1: booked}:
        raise RuntimeError(f"messages per booking: {per_booking} (want {{1: {booked}}})")
    if errors or unsent:
        raise RuntimeError(f"mail: {unsent} not sent after {MAIL_WAIT_LIMIT:g}s, {errors} failed")


BENCHMARK = Benchmark(
    name="server",
    description="bookings per second through `bookwell serve` on loopback",
    prepare=prepare,
    # The floor over the bookings: at most 8 (bookings at least 1/8 of the bare app's rate).
    comparisons=(Comparison(BARE, BOOKINGS, aim=8.0),),
    must_stay_zero=("409", "other failures"),
)
