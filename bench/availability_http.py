"""Availability over HTTP, through the real server (``bookwell serve``, as bench/server.py starts
it) on loopback, one request at a time: "any provider" over 10 providers against one provider,
for 1 day and for 30 days (aim: at most 10x); and a request's fixed cost, a day with no opening
(a day already past: the tenant, the plugin state, the service and provider checks and an empty
JSON list, but no slot to compute) against ``/healthz`` (what the server and HTTP cost alone).

Every provider has the same bookings (a few a day), so "any" must offer exactly ten times the
slots of one: a wrong answer cannot pass for a fast one.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import insert

from bookwell.core import create_app
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, BookingStatus

from .benchmark import Benchmark, Comparison, Measurement, Options, Variant
from .databases import ScratchDatabase, scratch_database
from .server import cli, free_port, server_environment, stop, tail, wait_until_healthy
from .timing import calls_per_measurement, seconds_per_call

SLUG = "bench"
PROVIDERS = 10
WORKERS = 2
OPENS, CLOSES = time_of_day(9), time_of_day(18)
BOOKINGS_PER_DAY = 4  # per provider, of the 18 half hours
REQUEST_TIMEOUT = 10.0
HEALTHZ = "GET /healthz (the server alone)"
FIXED = "availability, a day past (fixed cost)"
ONE = "availability, {span}, 1 provider"
ANY = "availability, {span}, any of 10"
SPANS = {"1 day": 0, "30 days": 29}


def first_day() -> date:
    # Ahead of the real clock the server runs on (bookings must lie within the horizon).
    return datetime.now(UTC).date() + timedelta(days=7)


def set_up_business(instance: Path, database: ScratchDatabase) -> tuple[int, list[int]]:
    """A tenant with one 30-minute service and 10 providers open 09:00-18:00 daily, each with
    the same bookings over the 30 days asked for; returns the service's and providers' ids."""
    app = create_app(
        {"INSTANCE_PATH": str(instance), "DATABASE_URL": database.url, "RATE_LIMITS": "off"}
    )
    now = datetime.now(UTC)
    try:
        with db.write_transaction(app) as session:
            tenant = create_tenant(session, SLUG, name="Bench", timezone="Europe/Paris", now=now)
            service = add_service(
                session,
                tenant,
                "Cut",
                duration_minutes=30,
                slot_step_minutes=15,
                min_notice_minutes=0,
                horizon_days=365,
                price_cents=3000,
            )
            every_day = {weekday: [(OPENS, CLOSES)] for weekday in range(7)}
            providers = [
                add_provider(session, tenant, f"Provider {number}", [service], every_day).id
                for number in range(PROVIDERS)
            ]
            tenant_id, service_id = tenant.id, service.id
        with db.engine_of(app).begin() as connection:
            connection.execute(insert(Booking), booking_rows(tenant_id, service_id, providers, now))
        return service_id, providers
    finally:
        db.engine_of(app).dispose()


def booking_rows(
    tenant_id: int, service_id: int, providers: list[int], now: datetime
) -> list[dict[str, Any]]:
    picker = random.Random(10)
    rows = []
    for offset in range(30):
        day = first_day() + timedelta(days=offset)
        cells = picker.sample(range(18), BOOKINGS_PER_DAY)
        for provider_id in providers:
            for cell in cells:
                # 09:00 Paris is 07:00 or 08:00 UTC; 08:00 UTC lies in the opening either way.
                start = datetime.combine(day, time_of_day(8), UTC) + timedelta(minutes=30 * cell)
                number = f"{provider_id}-{day:%Y%m%d}-{cell}"
                rows.append(
                    {
                        "tenant_id": tenant_id,
                        "reference": f"H{number}",
                        "manage_token_hash": hashlib.sha256(number.encode()).hexdigest(),
                        "service_id": service_id,
                        "provider_id": provider_id,
                        "starts_at": start,
                        "ends_at": start + timedelta(minutes=30),
                        "blocked_from": start,
                        "blocked_until": start + timedelta(minutes=30),
                        "client_name": "Client",
                        "client_email": "client@example.com",
                        "status": BookingStatus.CONFIRMED,
                        "price_cents": 3000,
                        "prepaid_cents": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
    return rows


class Getter:
    """GETs one URL, one request at a time, on a kept-alive session; checks the answer once."""

    def __init__(self, url: str, params: dict[str, Any] | None = None) -> None:
        self.http = requests.Session()
        self.url, self.params = url, params

    def __call__(self) -> requests.Response:
        answer = self.http.get(self.url, params=self.params, timeout=REQUEST_TIMEOUT)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {self.url} answered {answer.status_code}: {answer.text[:300]}")
        return answer

    def slots(self) -> int:
        return len(self().json()["slots"])


def per_call_variant(name: str, call: Callable[[], object], options: Options) -> Variant:
    if options.quick:
        calls = calls_per_measurement(call, target_seconds=0.1, minimum=5)
    else:
        calls = calls_per_measurement(call, target_seconds=0.3)

    def measure() -> Measurement:
        return Measurement(seconds_per_call(call, calls) * 1000, {})

    return Variant(name, "ms/request", measure, detail=f"mean of {calls} requests")


@contextlib.contextmanager
def prepare(options: Options) -> Iterator[list[Variant]]:
    folder = options.workdir / "availability_http"
    instance = folder / "instance"
    folder.mkdir(parents=True, exist_ok=True)
    with scratch_database(options.database_url, folder, "availability_http") as database:
        environment = server_environment(database)
        initialised = subprocess.run(
            cli(instance, "init"), env=environment, capture_output=True, text=True
        )
        if initialised.returncode:
            raise RuntimeError(f"`bookwell init` failed: {initialised.stderr.strip()}")
        service_id, providers = set_up_business(instance, database)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = folder / "server.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                cli(instance, "serve", "--host", "127.0.0.1", "--port", str(port))
                + ["--workers", str(WORKERS)],
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_healthy(base, process, log)
            yield variants(base, service_id, providers, options)
        except Exception as error:
            raise RuntimeError(f"{error}\n{tail(log)}") from error
        finally:
            stop(process)


def variants(base: str, service_id: int, providers: list[int], options: Options) -> list[Variant]:
    url = f"{base}/api/v1/tenants/{SLUG}/availability"
    first = first_day()
    past = first - timedelta(days=30)
    found = [
        per_call_variant(HEALTHZ, Getter(f"{base}/healthz"), options),
        per_call_variant(
            FIXED,
            Getter(url, {"service_id": service_id, "from": past, "to": past}),
            options,
        ),
    ]
    for span, days in SPANS.items():
        window = {"service_id": service_id, "from": first, "to": first + timedelta(days=days)}
        one = Getter(url, {**window, "provider_id": providers[0]})
        anyone = Getter(url, window)
        # 35 starts a day (09:00 to 17:30, every 15 minutes); a booking takes at most 3 of them.
        fewest, most = (days + 1) * (35 - 3 * BOOKINGS_PER_DAY), (days + 1) * 35
        one_slots, any_slots = one.slots(), anyone.slots()
        if any_slots != PROVIDERS * one_slots or not fewest <= one_slots < most:
            raise RuntimeError(
                f"wrong results for {span}: one provider {one_slots} slots, any {any_slots}"
            )
        found.append(per_call_variant(ONE.format(span=span), one, options))
        found.append(per_call_variant(ANY.format(span=span), anyone, options))
    return found


BENCHMARK = Benchmark(
    name="availability_http",
    description="availability through `bookwell serve` on loopback: any of 10 providers vs one, "
    "1 and 30 days; a request's fixed cost vs /healthz",
    prepare=prepare,
    comparisons=(
        *(Comparison(ANY.format(span=span), ONE.format(span=span), aim=10.0) for span in SPANS),
        Comparison(FIXED, HEALTHZ),
    ),
)
