"""Fixtures: a fresh app on a real database per test, a movable clock, a small business.

Tests run on a SQLite file by default. With ``BOOKWELL_TEST_POSTGRES`` set to a server's admin URL
(``.ci/run`` starts one) every test gets its own PostgreSQL database, cloned from a migrated
template, instead. The database, clock and app fixtures are the ones Bookwell ships to plugin
authors (``bookwell.core.testing``), imported here so that ours and theirs cannot drift apart.
"""

from __future__ import annotations

import os
import re
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text

from bookwell.core import testing
from bookwell.core.testing import CHEAP_HASHING, Business, MovableClock, open_every_day

# A helper module beside the tests, whose asserts should explain themselves as the tests' do.
pytest.register_assert_rewrite("booking_pages")

# A plugin package's own tests run in a pytest of their own, as its author runs them
# (tests/pluginhost/test_front_desk_package.py); collected here they would meet this file's
# fixtures (another `client`) and a second `pytest_plugins`, which pytest refuses.
collect_ignore_glob = ["packages/*/tests"]

__all__ = ["CHEAP_HASHING", "Business", "MovableClock", "booking_body", "open_every_day"]

REDIS_DATABASES = 16  # redis-server's default number of numbered databases


def pytest_configure(config):
    """Under pytest-xdist (``.ci/run`` runs ``-n 2``), each worker gets a Redis database number
    of its own on the shared ``REDIS_TEST_URL`` server, so that a test which counts or clears
    keys never sees another worker's. Database 0 stays for a run without workers."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    given = os.environ.get("REDIS_TEST_URL")
    if not (given and worker.startswith("gw")):
        return
    number = 1 + int(worker.removeprefix("gw")) % (REDIS_DATABASES - 1)
    parts = urlsplit(given)
    os.environ["REDIS_TEST_URL"] = urlunsplit(parts._replace(path=f"/{number}"))


# The fixtures through which a test reaches the database it runs on.
DATABASE_FIXTURES = {"database_url", "blank_database_url", "postgres_template"}


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL (``.ci/run``'s second stage), leave out the tests that never reach a
    database: the SQLite stage ran them, and they would answer the same. A test reaches one
    when it asks for a database fixture, or when its module names PostgreSQL at all (a few
    connect with the environment's URL themselves)."""
    if not os.environ.get(testing.POSTGRES_ENV):
        return
    names_postgres: dict[object, bool] = {}
    kept, left_out = [], []
    for item in items:
        if item.path not in names_postgres:
            names_postgres[item.path] = "postgres" in item.path.read_text().lower()
        if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())) or names_postgres[item.path]:
            kept.append(item)
        else:
            left_out.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


# Bookwell's shipped fixtures, under the same names.
postgres_template = testing.postgres_template
database_url = testing.database_url
migration_database_url = testing.migration_database_url
clock = testing.clock
make_app = testing.make_app


@pytest.fixture
def blank_database_url(tmp_path):
    """An empty database, no tables at all (not cloned from the migrated template), for tests
    that run migrations themselves: a SQLite file, or a new PostgreSQL database."""
    if not os.environ.get(testing.POSTGRES_ENV):
        yield f"sqlite:///{tmp_path / 'blank.sqlite3'}"
        return
    admin = testing._admin_engine()
    name = f"bookwell_blank_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield testing._psycopg(testing._with_database(os.environ[testing.POSTGRES_ENV], name))
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def business(app, clock) -> Business:
    """'salon' in Europe/Paris: a 30-minute cut on a 30-minute step, no buffers, no notice;
    two providers open every day 09:00-17:00."""
    return testing.open_business(app, clock())


def booking_body(business: Business, start: str, *, provider_id=None, name="Ann", **extra):
    body = {
        "service_id": business.service_id,
        "provider_id": provider_id or business.provider_id,
        "start": start,
        "client": {"name": name, "email": f"{name.lower()}@example.com"},
    }
    body.update(extra)
    return body


# --- staff on the pages ---------------------------------------------------------------------------

STAFF_PASSWORD = "correct horse battery"
CSRF_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token_of(page) -> str:
    """The CSRF token of the (first) form on a rendered page."""
    return CSRF_TOKEN.search(page.text).group(1)


def log_in_staff(app, email: str, slug: str = "salon", password: str = STAFF_PASSWORD):
    """A test client signed in to ``slug``'s staff pages through the real login form."""
    client = app.test_client()
    page = client.get(f"/admin/{slug}/login")
    response = client.post(
        f"/admin/{slug}/login",
        data={"csrf_token": csrf_token_of(page), "email": email, "password": password},
    )
    assert response.status_code == 302, response.text
    return client


def add_staff_and_a_rival(app, business, now, roles, *, rival_timezone="UTC") -> int:
    """Staff of ``business``, one per role (``<role>@example.com``; the ``staff`` one works as
    its first provider), and a second business, ``spa``, whose owner is ``spa@example.com``; all
    with :data:`STAFF_PASSWORD`. Returns the second business's id."""
    from bookwell.core.access.users import create_user
    from bookwell.core.booking.tenants import create_tenant
    from bookwell.core.storage import db

    with app.app_context():
        for role in roles:
            create_user(
                app,
                tenant_id=business.tenant_id,
                email=f"{role}@example.com",
                role=role,
                password=STAFF_PASSWORD,
                now=now,
                provider_id=business.provider_id if role == "staff" else None,
            )
        with db.write_transaction(app) as session:
            rival = create_tenant(session, "spa", name="Spa", timezone=rival_timezone, now=now)
            rival_id = rival.id
        create_user(
            app,
            tenant_id=rival_id,
            email="spa@example.com",
            role="owner",
            password=STAFF_PASSWORD,
            now=now,
        )
    return rival_id
