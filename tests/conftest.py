"""Fixtures: a fresh app on a real database per test, a movable clock, a small business.

Tests run on a SQLite file by default. With ``BOOKWELL_TEST_POSTGRES`` set to a server's admin URL
(``.ci/run`` starts one) every test gets its own PostgreSQL database, cloned from a migrated
template, instead.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import create_engine, text

from bookwell.core import create_app, db, schema
from bookwell.core.tenants import add_provider, add_service, create_tenant

POSTGRES_ADMIN_URL = os.environ.get("BOOKWELL_TEST_POSTGRES")
CHEAP_HASHING = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


class MovableClock:
    """The app's clock in tests: set or advance it; it never moves by itself."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def __call__(self) -> datetime:
        return self.current

    def set(self, now: datetime) -> None:
        self.current = now

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture(scope="session")
def postgres_template():
    if not POSTGRES_ADMIN_URL:
        yield None
        return
    admin = create_engine(_psycopg(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"bookwell_template_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    template_engine = create_engine(_psycopg(_with_database(POSTGRES_ADMIN_URL, name)))
    schema.upgrade(template_engine)
    template_engine.dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(tmp_path, postgres_template):
    if postgres_template is None:
        yield f"sqlite:///{tmp_path / 'bookwell.sqlite3'}"
        return
    admin = create_engine(_psycopg(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"bookwell_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    yield _with_database(POSTGRES_ADMIN_URL, name)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def clock():
    # A Monday morning in Paris (08:00 UTC = 09:00 CET), far enough ahead to book from.
    return MovableClock(datetime(2027, 3, 1, 8, 0, tzinfo=UTC))


@pytest.fixture
def make_app(tmp_path, database_url, clock):
    """Build an app on the test's database; ``make_app(RATE_LIMITS=...)`` overrides settings."""
    apps = []

    def build(**overrides):
        settings = {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "RATE_LIMITS": "off",
            "CLOCK": clock,
            "TESTING": True,
            # Cheap argon2 for speed; the tests of hashing itself set their own parameters.
            "PASSWORD_HASHING": CHEAP_HASHING,
        }
        settings.update(overrides)
        app = create_app(settings)
        schema.upgrade(db.engine_of(app))  # no-op on PostgreSQL: the template is migrated
        apps.append(app)
        return app

    yield build
    for app in apps:
        db.engine_of(app).dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class Business:
    slug: str
    tenant_id: int
    service_id: int
    provider_id: int
    second_provider_id: int


def open_every_day(opens: time = time(9), closes: time = time(17)):
    return {weekday: [(opens, closes)] for weekday in range(7)}


@pytest.fixture
def business(app, clock) -> Business:
    """'salon' in Europe/Paris: a 30-minute cut on a 30-minute step, no buffers, no notice;
    two providers open every day 09:00-17:00."""
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, "salon", name="Salon", timezone="Europe/Paris", now=clock())
        service = add_service(
            session,
            tenant,
            "Cut",
            description="A cut.",
            duration_minutes=30,
            price_cents=3000,
            slot_step_minutes=30,
            min_notice_minutes=0,
            horizon_days=365,
        )
        first = add_provider(session, tenant, "Ana", [service], open_every_day())
        second = add_provider(session, tenant, "Ben", [service], open_every_day())
        return Business("salon", tenant.id, service.id, first.id, second.id)


def booking_body(business: Business, start: str, *, provider_id=None, name="Ann", **extra):
    body = {
        "service_id": business.service_id,
        "provider_id": provider_id or business.provider_id,
        "start": start,
        "client": {"name": name, "email": f"{name.lower()}@example.com"},
    }
    body.update(extra)
    return body
