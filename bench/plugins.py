"""What the plugin platform costs: 50 installed plugins of which the tenant enabled 2, against
none installed, per booking confirmation through the API (aim: at most 5% more), plus one guard
call through the runner on its own.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import Flask

from bookwell.core import create_app, schema
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.context import booking_info, make_context
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Provider, Service, Tenant
from bookwell.hooks import Manifest, hookimpl

from .benchmark import Benchmark, Comparison, Measurement, Options, Variant
from .databases import scratch_database
from .timing import calls_per_measurement, seconds_per_call

INSTALLED = 50
ENABLED = 2
NOW = datetime(2030, 1, 7, 0, 0, tzinfo=UTC)
NONE_INSTALLED = "no plugins installed"
FIFTY_INSTALLED = f"{INSTALLED} installed, {ENABLED} enabled"
GUARD_NONE = "guard call, nothing enabled"
GUARD_TWO = f"guard call, {ENABLED} of {INSTALLED} enabled"


def make_plugin(number: int) -> type:
    """A plugin like a real guard: reads its settings and the booking, then allows."""

    class Plugin:
        MANIFEST = Manifest(
            f"bench-{number:02}", f"Bench {number}", "A benchmark plugin.", "1", "bench", "bench"
        )

        @hookimpl
        def before_confirm(ctx, settings):
            if ctx.booking.client_email.endswith("@refused.example"):
                raise AssertionError("never booked by the benchmark")

        @hookimpl
        def after_confirm(ctx):
            return None

    return Plugin


def build(options: Options, url: str, plugins: list[type]) -> tuple[Flask, int, int, list[int]]:
    app = create_app(
        {
            "INSTANCE_PATH": str(options.workdir / "plugins-instance"),
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "ENCRYPTION_KEY": "bench",
            "RATE_LIMITS": "off",
            "CLOCK": lambda: NOW,
            "LOAD_ENTRY_POINTS": False,
            "EXTRA_PLUGINS": plugins,
            # The mail thread would fight the bookings for SQLite's write lock and double their
            # time with a spread that hides what is measured here: the plugins' cost.
            "MAIL_DELIVERY": "manual",
        }
    )
    schema.upgrade(db.engine_of(app))
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, "bench", name="Bench", timezone="UTC", now=NOW)
        service = add_service(
            session, tenant, "Visit", duration_minutes=15, slot_step_minutes=15, horizon_days=365
        )
        always = {weekday: [(time(0), time(23, 45))] for weekday in range(7)}
        providers = [
            add_provider(session, tenant, f"P{index}", [service], always).id for index in range(2)
        ]
        ids = tenant.id, service.id
    with app.app_context():
        for plugin in plugins[:ENABLED]:
            plugin_changes.enable(app, ids[0], plugin.MANIFEST.name, {}, NOW)
    return app, ids[0], ids[1], providers


def booking_call(app: Flask, service_id: int, providers: list[int]) -> Callable[[], Any]:
    client = app.test_client()
    starts = (
        # 90 quarter hours a day: all inside the 00:00-23:45 opening.
        (provider, NOW + timedelta(days=1 + index // 90, minutes=15 * (index % 90)))
        for index in itertools.count()
        for provider in providers
    )

    def book() -> None:
        provider, start = next(starts)
        response = client.post(
            "/api/v1/tenants/bench/bookings",
            json={
                "service_id": service_id,
                "provider_id": provider,
                "start": start.isoformat(),
                "client": {"name": "Bench", "email": "bench@example.com"},
            },
        )
        if response.status_code != 201:
            raise RuntimeError(f"booking refused: {response.status_code} {response.json}")

    return book


def guard_call(app: Flask, tenant_id: int, service_id: int, provider_id: int) -> Callable[[], Any]:
    host = host_of(app)
    with app.app_context():
        session = db.session()
        tenant = session.get(Tenant, tenant_id)
        enabled = host.enabled_for(session, tenant_id)
        start = NOW + timedelta(days=300)
        ctx = make_context(
            tenant,
            NOW,
            booking=booking_info(
                service=session.get(Service, service_id),
                provider=session.get(Provider, provider_id),
                start=start,
                end=start + timedelta(minutes=15),
                client_name="Bench",
                client_email="bench@example.com",
                client_phone=None,
                status="confirmed",
            ),
        )

    def call() -> None:
        host.guard("before_confirm", ctx, enabled, ())

    return call


def timed(name: str, unit: str, call: Callable[[], Any], scale: float) -> Variant:
    calls = calls_per_measurement(call)
    return Variant(
        name,
        unit,
        lambda: Measurement(seconds_per_call(call, calls) * scale, {}),
        detail=f"mean of {calls} calls",
    )


@contextlib.contextmanager
def prepare(options: Options) -> Iterator[list[Variant]]:
    plugins = [make_plugin(number) for number in range(INSTALLED)]
    with (
        scratch_database(options.database_url, options.workdir, "plugins-none") as bare,
        scratch_database(options.database_url, options.workdir, "plugins-fifty") as fifty,
    ):
        apps = []
        try:
            app_none, tenant_none, service_none, providers_none = build(options, bare.url, [])
            apps.append(app_none)
            app_fifty, tenant_fifty, service_fifty, providers_fifty = build(
                options, fifty.url, plugins
            )
            apps.append(app_fifty)
            yield [
                timed(
                    NONE_INSTALLED,
                    "ms/booking",
                    booking_call(app_none, service_none, providers_none),
                    1000,
                ),
                timed(
                    FIFTY_INSTALLED,
                    "ms/booking",
                    booking_call(app_fifty, service_fifty, providers_fifty),
                    1000,
                ),
                timed(
                    GUARD_NONE,
                    "µs/call",
                    guard_call(app_none, tenant_none, service_none, providers_none[0]),
                    1e6,
                ),
                timed(
                    GUARD_TWO,
                    "µs/call",
                    guard_call(app_fifty, tenant_fifty, service_fifty, providers_fifty[0]),
                    1e6,
                ),
            ]
        finally:
            for app in apps:
                db.engine_of(app).dispose()


BENCHMARK = Benchmark(
    name="plugins",
    description=f"booking with {INSTALLED} plugins installed ({ENABLED} enabled) vs none",
    prepare=prepare,
    comparisons=(
        Comparison(FIFTY_INSTALLED, NONE_INSTALLED, aim=1.05),
        Comparison(GUARD_TWO, GUARD_NONE),
    ),
)
