"""What the access plugins cost a login: API logins per second with `ssl`, `password_policy` and
`two_factor` all on (over HTTPS, with a one-time code) against a business with none, beside the
bound every login pays: one argon2 verification with the instance's parameters.

Each login is a real one: the password verified with the production argon2 parameters, a session
written, the audit entry chained. The app's clock moves 31 seconds before each login, so that the
code is always of a new step (the replay guard refuses a step used twice).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
from flask import Flask

from bookwell.core import create_app, schema
from bookwell.core.access import passwords
from bookwell.core.access.users import create_user
from bookwell.core.booking.tenants import create_tenant
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db

from .benchmark import Benchmark, Comparison, Measurement, Options, Variant
from .databases import scratch_database
from .timing import calls_per_measurement, seconds_per_call

START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
EMAIL = "owner@bench.example"
PASSWORD = "a long passphrase nobody would guess 7"  # passes the default policy
ACCESS_PLUGINS = ("ssl", "password_policy", "two_factor")
NONE = "login, no plugins"
ALL_THREE = "login, ssl + password_policy + two_factor"
ARGON2 = "one argon2 verification"


class SteppingClock:
    """The app's clock: 31 seconds on at each ``step``, so every login has a fresh TOTP step."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def step(self) -> None:
        self.now += timedelta(seconds=31)


def build(options: Options, url: str, label: str, plugins: tuple[str, ...]) -> tuple[Flask, Any]:
    clock = SteppingClock()
    app = create_app(
        {
            "INSTANCE_PATH": str(options.workdir / f"{label}-instance"),
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "ENCRYPTION_KEY": "bench",
            "RATE_LIMITS": "off",
            "CLOCK": clock,
            "MAIL_DELIVERY": "manual",
        }
    )
    schema.upgrade(db.engine_of(app))
    with db.write_transaction(app) as session:
        tenant_id = create_tenant(session, "bench", name="Bench", timezone="UTC", now=START).id
    with app.app_context():
        create_user(
            app, tenant_id=tenant_id, email=EMAIL, role="owner", password=PASSWORD, now=START
        )
        for plugin in plugins:
            plugin_changes.enable(app, tenant_id, plugin, {}, START)
    return app, clock


def enrol(app: Flask, clock: SteppingClock) -> pyotp.TOTP:
    """The owner enrols an authenticator through the API, as a client app would."""
    client = app.test_client()
    https = {"base_url": "https://bench.example"}
    login = client.post(
        "/api/v1/tenants/bench/auth/login", json={"email": EMAIL, "password": PASSWORD}, **https
    )
    if login.status_code != 200:
        raise RuntimeError(f"login before enrolment: {login.status_code} {login.json}")
    bearer = {"Authorization": f"Bearer {login.json['token']}"}
    started = client.post("/api/v1/tenants/bench/me/totp", headers=bearer, **https)
    if started.status_code != 200:
        raise RuntimeError(f"enrolment: {started.status_code} {started.json}")
    secret = parse_qs(urlsplit(started.json["otpauth_uri"]).query)["secret"][0]
    totp = pyotp.TOTP(secret)
    confirmed = client.post(
        "/api/v1/tenants/bench/me/totp/confirm",
        json={"code": totp.at(clock())},
        headers=bearer,
        **https,
    )
    if confirmed.status_code != 200:
        raise RuntimeError(f"confirmation: {confirmed.status_code} {confirmed.json}")
    return totp


def login_call(app: Flask, clock: SteppingClock, totp: pyotp.TOTP | None) -> Callable[[], None]:
    client = app.test_client()
    base_url = "https://bench.example" if totp is not None else "http://bench.example"

    def log_in() -> None:
        clock.step()
        body = {"email": EMAIL, "password": PASSWORD}
        if totp is not None:
            body["otp"] = totp.at(clock())
        answer = client.post("/api/v1/tenants/bench/auth/login", json=body, base_url=base_url)
        if answer.status_code != 200 or answer.json.get("scope") != "tenant:bench":
            raise RuntimeError(f"login refused: {answer.status_code} {answer.json}")

    return log_in


def argon2_call(app: Flask) -> Callable[[], None]:
    kit = passwords.passwords(app)
    stored = kit.hash(PASSWORD)

    def verify() -> None:
        if not kit.verify(stored, PASSWORD):
            raise RuntimeError("the hash did not verify")

    return verify


def timed(name: str, call: Callable[[], None]) -> Variant:
    calls = calls_per_measurement(call)
    return Variant(
        name,
        "ms/login",
        lambda: Measurement(seconds_per_call(call, calls) * 1000, {}),
        detail=f"mean of {calls} calls",
    )


@contextlib.contextmanager
def prepare(options: Options) -> Iterator[list[Variant]]:
    with (
        scratch_database(options.database_url, options.workdir, "logins-none") as bare,
        scratch_database(options.database_url, options.workdir, "logins-all") as guarded,
    ):
        apps: list[Flask] = []
        try:
            plain, plain_clock = build(options, bare.url, "logins-none", ())
            apps.append(plain)
            full, full_clock = build(options, guarded.url, "logins-all", ACCESS_PLUGINS)
            apps.append(full)
            totp = enrol(full, full_clock)
            yield [
                timed(NONE, login_call(plain, plain_clock, None)),
                timed(ALL_THREE, login_call(full, full_clock, totp)),
                timed(ARGON2, argon2_call(plain)),
            ]
        finally:
            for app in apps:
                db.engine_of(app).dispose()


BENCHMARK = Benchmark(
    name="logins",
    description="API logins with ssl, password_policy and two_factor on, against none, and the "
    "bound of one argon2 verification",
    prepare=prepare,
    comparisons=(
        Comparison(ALL_THREE, NONE, aim=1.25),
        Comparison(NONE, ARGON2),
    ),
)
