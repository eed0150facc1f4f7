"""Pytest fixtures for testing plugins against a real Bookwell: an app, a business, a client, a
movable clock, staff of each role signed in, a second business, the schedule, the outbox and
the audit trail.

Installing Bookwell registers them with pytest (a ``pytest11`` entry point named, like this
module, ``bookwell.core.testing``), so a plugin's tests find them with no line of setup; a
``tests/conftest.py`` that also says ``pytest_plugins = ["bookwell.core.testing"]`` (needed only
with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set) loads the same plugin, not a second one. A test's
own fixture of the same name wins over Bookwell's. A plugin's tests then read like this::

    def test_ten_percent_off_on_tuesdays(client, enable_plugin):
        enable_plugin("tuesdays", percent=10)
        booking = client.book("2027-03-02T10:00:00+01:00")
        assert booking["discount_cents"] == 300

The app loads the installed plugins (``pip install -e .`` your package first); to add modules
that are not installed, or to change the app's settings, override ``bookwell_plugins`` or
``bookwell_settings``.

Each test gets a fresh app on its own database: a SQLite file in ``tmp_path``, or, with
``BOOKWELL_TEST_POSTGRES`` set to a PostgreSQL server's admin URL
(``postgresql://postgres@127.0.0.1:5432/postgres``), a database of its own cloned from one
migrated once per session. With ``BOOKWELL_TEST_POSTGRES_OWNER`` and ``BOOKWELL_TEST_POSTGRES_APP``
also set to URLs of two other roles of that server (same form; the database part is replaced),
the tests run as production does with ``BOOKWELL_MIGRATION_DATABASE_URL``: the owner's role
owns the databases and migrates them, the app connects as the app's role. Time stands still
unless a test moves ``clock``.

Fixtures: ``clock`` (:class:`MovableClock`), ``app`` (built from ``bookwell_plugins`` and
``bookwell_settings``), ``make_app`` (build another), ``tenant`` (a :class:`Business` that takes
bookings), ``client`` and ``make_client`` (a :class:`BookingClient`), ``enable_plugin`` and
``disable_plugin``, ``staff_login`` and one :class:`StaffMember` per role (``owner``,
``manager``, ``staff_member``, ``receptionist``; ``staff_login("staff", provider_id=...)`` for
a staff account working as a provider), ``support_user`` (platform support signed in to the
pages; :func:`support_page_login`), ``second_business`` and ``second_client``,
``run_schedule``, ``outbox`` (:class:`Mail`) and ``audit_trail`` (:class:`AuditRecord`),
``bookwell_cli`` (the ``bookwell`` command on the test's database) and ``plugin_context_for``
(a plugin's context, as its commands get it). :func:`api_login` and :func:`page_login` give a
login's answer, whatever it is.

Plugins' tests also find here what they check against, so that they import nothing else of
core: :func:`host_of` (the installed plugins), :func:`create_user`, and the marketplace's
refusals :class:`PluginConflict`, :class:`PluginRequired` and :class:`InvalidSettings`; and
:func:`self_signed_certificate`, for ``bookwell serve --certfile --keyfile``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql
from sqlalchemy import Connection, create_engine, make_url, select, text

from bookwell.core import audit, create_app, schema
from bookwell.core.access.users import create_user
from bookwell.core.booking.outcomes import mark_outcome
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.cli import instance as cli_instance
from bookwell.core.cli.root import main as bookwell_main
from bookwell.core.mail import dispatch
from bookwell.core.mail import outbox as mail_outbox
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost.host import host_of
from bookwell.core.pluginhost.rules import PluginConflict, PluginRequired
from bookwell.core.pluginhost.settings import InvalidSettings
from bookwell.core.scheduling import schedule
from bookwell.core.scheduling.schedule import TickReport
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, OutboxMessage
from bookwell.core.web.plugin_pages import run_as_command_of
from bookwell.hooks.pages import plugin_context

__all__ = [
    "CHEAP_HASHING",
    "STAFF_PASSWORD",
    "START",
    "AuditRecord",
    "BearerClient",
    "BookingClient",
    "Business",
    "InvalidSettings",
    "Mail",
    "MovableClock",
    "PluginConflict",
    "PluginRequired",
    "StaffMember",
    "TickReport",
    "api_login",
    "as_tables_owner",
    "create_user",
    "csrf_token_of",
    "host_of",
    "open_business",
    "tampering_with_the_trail",
    "open_every_day",
    "page_login",
    "self_signed_certificate",
    "support_page_login",
]

POSTGRES_ENV = "BOOKWELL_TEST_POSTGRES"
POSTGRES_OWNER_ENV = "BOOKWELL_TEST_POSTGRES_OWNER"
POSTGRES_APP_ENV = "BOOKWELL_TEST_POSTGRES_APP"
# A Monday morning in Paris (08:00 UTC = 09:00 CET), far enough ahead to book from.
START = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
# Cheap argon2: tests of hashing itself set their own parameters.
CHEAP_HASHING = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
# The password of every staff member the fixtures sign in (long enough for core's own rules).
STAFF_PASSWORD = "correct horse battery"  # noqa: S105 (a test user of a test database)
_CSRF_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class MovableClock:
    """The app's clock in tests: set or advance it; it never moves by itself."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def __call__(self) -> datetime:
        return self.current

    def set(self, now: datetime) -> None:
        self.current = now

    def advance(self, **delta: float) -> None:
        """``clock.advance(days=1, hours=2)``: the arguments of :class:`datetime.timedelta`."""
        self.current += timedelta(**delta)


@dataclass(frozen=True)
class Business:
    """A tenant ready to take bookings: a 30-minute service at 30.00 on a 30-minute step, no
    notice needed, and two providers open every day 09:00-17:00 in Europe/Paris."""

    slug: str
    tenant_id: int
    service_id: int
    provider_id: int
    second_provider_id: int


def open_every_day(opens: time = time(9), closes: time = time(17)) -> dict:
    return {weekday: [(opens, closes)] for weekday in range(7)}


def open_business(app: Flask, now: datetime, slug: str = "salon", name: str = "Salon") -> Business:
    """Create tenant ``slug`` with one service and two providers (see :class:`Business`)."""
    with db.write_transaction(app) as session:
        tenant = create_tenant(session, slug, name=name, timezone="Europe/Paris", now=now)
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
        return Business(slug, tenant.id, service.id, first.id, second.id)


class BookingClient:
    """A client of one business, acting through the public JSON API as a browser would.

    Bookings are the API's JSON (``reference``, ``manage_token``, ``status``, ``start``,
    ``price_cents``, ``discount_cents``, ``total_cents``, ...). A refused call fails the test
    with the API's answer; use :meth:`post` to look at a refusal yourself.
    """

    def __init__(self, app: Flask, business: Business, clock: MovableClock, name: str, email: str):
        self.app, self.business, self.clock = app, business, clock
        self.name, self.email = name, email
        self.http = app.test_client()

    @property
    def bookings_url(self) -> str:
        return f"/api/v1/tenants/{self.business.slug}/bookings"

    def post(self, path: str = "", **body: Any):
        """POST ``body`` as JSON to the bookings URL (plus ``path``, e.g.
        ``f"/{reference}/cancel"``) and return Flask's response, whatever it is:
        ``response.status_code``, ``response.json["error"]["refusals"]``, ``response.headers``."""
        return self.http.post(self.bookings_url + path, json=body)

    def try_book(
        self,
        start: str | datetime,
        *,
        provider_id: int | None = None,
        service_id: int | None = None,
        **extra: Any,
    ):
        """Ask to book ``start`` as :meth:`book` does, and return the response, refused or not:
        what a guard's test looks at."""
        return self.post(
            service_id=service_id or self.business.service_id,
            provider_id=provider_id or self.business.provider_id,
            start=start.isoformat() if isinstance(start, datetime) else start,
            client={"name": self.name, "email": self.email},
            **extra,
        )

    def book(
        self,
        start: str | datetime,
        *,
        provider_id: int | None = None,
        service_id: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Book ``start`` (ISO 8601 with an offset, or an aware datetime); extra fields such as
        ``consents=[...]`` go into the request as they are."""
        response = self.try_book(start, provider_id=provider_id, service_id=service_id, **extra)
        return _json(response, 201)

    def get(self, booking: dict[str, Any]) -> dict[str, Any]:
        """The booking as the API shows it now."""
        response = self.http.get(
            f"{self.bookings_url}/{booking['reference']}",
            query_string={"token": booking["manage_token"]},
        )
        return _json(response, 200)

    def cancel(self, booking: dict[str, Any]) -> dict[str, Any]:
        response = self.post(f"/{booking['reference']}/cancel", token=booking["manage_token"])
        return _json(response, 200)

    def reschedule(self, booking: dict[str, Any], start: str | datetime) -> dict[str, Any]:
        start = start.isoformat() if isinstance(start, datetime) else start
        response = self.post(
            f"/{booking['reference']}/reschedule", token=booking["manage_token"], start=start
        )
        return _json(response, 200)

    def complete(self, booking: dict[str, Any], outcome: str = "completed") -> dict[str, Any]:
        """The business marks the visit ``completed`` (or ``no-show``), as staff do on the
        booking's page once the appointment has started: move ``clock`` past it first."""
        with self.app.app_context():
            mark_outcome(
                self.app,
                tenant_id=self.business.tenant_id,
                reference=booking["reference"],
                outcome=outcome,
                now=self.clock(),
                actor="staff:tests",
            )
        return self.get(booking)

    def visit(self, start: str | datetime) -> dict[str, Any]:
        """Book ``start``, let the appointment happen and mark it completed; the clock ends
        up just after the appointment."""
        booking = self.book(start)
        self.clock.set(max(self.clock(), datetime.fromisoformat(booking["end"])))
        return self.complete(booking)

    def stored(self, booking: dict[str, Any]) -> Booking:
        """The booking's row, for what the API does not show."""
        with db.fresh_session(self.app) as session:
            return session.scalars(
                select(Booking).where(Booking.reference == booking["reference"])
            ).one()


class BearerClient:
    """The JSON API with a staff member's bearer token. A path without a leading ``/`` is under
    the business's API (``"plugins"`` is ``/api/v1/tenants/<slug>/plugins``). Each method
    returns Flask's response: ``status_code``, ``json``, ``headers``."""

    def __init__(self, http: FlaskClient, slug: str, token: str) -> None:
        self.http, self.slug, self.token = http, slug, token

    def url(self, path: str) -> str:
        return path if path.startswith("/") else f"/api/v1/tenants/{self.slug}/{path}"

    def open(self, method: str, path: str, json: Any = None, **options: Any):
        headers = {"Authorization": f"Bearer {self.token}", **options.pop("headers", {})}
        return self.http.open(self.url(path), method=method, json=json, headers=headers, **options)

    def get(self, path: str, **options: Any):
        return self.open("GET", path, **options)

    def post(self, path: str, json: Any = None, **options: Any):
        return self.open("POST", path, json, **options)

    def put(self, path: str, json: Any = None, **options: Any):
        return self.open("PUT", path, json, **options)

    def patch(self, path: str, json: Any = None, **options: Any):
        return self.open("PATCH", path, json, **options)

    def delete(self, path: str, **options: Any):
        return self.open("DELETE", path, **options)


class StaffMember:
    """A staff member of one business with one role, signed in twice over, as the fixtures
    ``owner``, ``manager``, ``staff_member``, ``receptionist`` and ``staff_login`` give them:

    * ``api``, a :class:`BearerClient` logged in through the API's login (``token``);
    * ``pages``, a Flask test client signed in to the staff pages through their login form, for
      ``pages.get("/admin/salon/...")``; :meth:`submit` posts a form of those pages.

    ``email`` is ``<role>@example.com`` unless given, the password :data:`STAFF_PASSWORD`.
    """

    def __init__(self, app: Flask, business: Business, role: str, email: str, user_id: int):
        self.app, self.business, self.role = app, business, role
        self.email, self.user_id = email, user_id
        self.sign_in_again()

    def sign_in_again(self) -> None:
        """Log in afresh, through the API and the login page, as when created: a new ``token``
        (``api``) and a newly signed-in ``pages``. The sessions age with ``clock``: once it moved
        past the idle timeout (30 minutes unless a plugin's ``session_limits`` says less) they
        have ended, and this signs the member in again."""
        slug = self.business.slug
        http = self.app.test_client()
        answer = api_login(self.app, self.email, business=self.business)
        self.token: str = _json(answer, 200)["token"]
        self.api = BearerClient(http, slug, self.token)
        signed_in, self.pages = page_login(self.app, self.email, business=self.business)
        assert signed_in.status_code == 302, (signed_in.status_code, signed_in.text[:500])

    def submit(self, path: str, data: dict[str, Any] | None = None, *, form_on: str | None = None):
        """POST ``data`` to ``path`` as the form of a staff page does: the CSRF token is taken
        from the page at ``form_on`` (default: ``path`` itself). Returns the response."""
        page = self.pages.get(form_on or path)
        assert page.status_code == 200, (page.status_code, page.text[:500])
        return self.pages.post(path, data={"csrf_token": csrf_token_of(page), **(data or {})})


def api_login(
    app: Flask,
    email: str,
    password: str = STAFF_PASSWORD,
    *,
    business: Business | str = "salon",
    otp: str | None = None,
):
    """The API's answer to a login (``POST /api/v1/tenants/<slug>/auth/login``), whatever it
    is: 200 with ``token`` (and ``scope``, ``code``, ``message`` when restricted), or the
    refusal (401 ``invalid_credentials``, a guard's code, 503 ``plugin_failed``)."""
    slug = business if isinstance(business, str) else business.slug
    body = {"email": email, "password": password, **({"otp": otp} if otp is not None else {})}
    return app.test_client().post(f"/api/v1/tenants/{slug}/auth/login", json=body)


def page_login(
    app: Flask, email: str, password: str = STAFF_PASSWORD, *, business: Business | str = "salon"
) -> tuple[Any, FlaskClient]:
    """A browser's login on the staff login page: its answer (302 when signed in; 303 to the
    page a login a guard let through restricted goes to, its ``continue_at``; else the page
    again with the reason: 401, or 403 for a restricted login without such a page) and the
    browser, a test client signed in when it succeeded."""
    slug = business if isinstance(business, str) else business.slug
    browser = app.test_client()
    form = browser.get(f"/admin/{slug}/login")
    answer = browser.post(
        f"/admin/{slug}/login",
        data={"csrf_token": csrf_token_of(form), "email": email, "password": password},
    )
    return answer, browser


def support_page_login(
    app: Flask, email: str, password: str = STAFF_PASSWORD
) -> tuple[Any, FlaskClient]:
    """A browser's login on platform support's login page (``/support/login``): its answer (302
    when signed in) and the browser. Support reads a business's read-only staff pages
    (``/admin/<slug>/``, ``/week``, a booking's, a client's) through ``before_data_access``."""
    browser = app.test_client()
    form = browser.get("/support/login")
    answer = browser.post(
        "/support/login",
        data={"csrf_token": csrf_token_of(form), "email": email, "password": password},
    )
    return answer, browser


def self_signed_certificate(
    folder: Path, *names: str, passphrase: bytes | None = None
) -> tuple[Path, Path]:
    """A certificate for ``names`` (host names or IP addresses; ``127.0.0.1`` and
    ``localhost`` when none) signed by its own key, written as ``cert.pem`` and ``key.pem`` in
    ``folder``: for ``bookwell serve --certfile --keyfile``, trusted by a client told to
    (``requests.get(..., verify=cert)``). ``passphrase`` encrypts the key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    names = names or ("127.0.0.1", "localhost")
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    # Valid around the wall clock, not the test's: the TLS client checks it against the former.
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        # Its own authority too, so that OpenSSL takes it as the root it was told to trust.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def csrf_token_of(page) -> str:
    """The CSRF token of the (first) form of a rendered page."""
    found = _CSRF_TOKEN.search(page.text)
    assert found is not None, "no form with a CSRF token on this page"
    return found.group(1)


@dataclass(frozen=True)
class Mail:
    """One message of a business's outbox (sent or waiting), as ``outbox()`` lists them."""

    to: str
    subject: str
    text: str
    kind: str
    html: str | None
    booking: str | None  # the booking's reference, for mail about one
    sent: bool
    ics: str | None = None  # the calendar attachment (an .ics invitation), if any


@dataclass(frozen=True)
class AuditRecord:
    """One entry of a business's audit trail, as ``audit_trail()`` lists them. People appear in
    ``actor``, ``subject`` and ``details`` by pseudonym (``client:person:<16 hex>``); the e-mail
    address each stands for is in ``actor_email`` and ``subject_email`` (``"[erased]"`` once
    erased), and for every pseudonym the entry names in ``people``; the IP in ``ip``."""

    action: str
    subject: str
    details: dict[str, Any]
    actor: str
    at: datetime
    actor_email: str | None = None
    subject_email: str | None = None
    ip: str | None = None
    people: dict[str, str] = field(default_factory=dict)


def _json(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


# --- databases ----------------------------------------------------------------------------------


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _admin_engine():
    return create_engine(_psycopg(os.environ[POSTGRES_ENV]), isolation_level="AUTOCOMMIT")


def _separate_roles() -> tuple[str, str] | None:
    """(owner's URL, app's URL) when the tests run with two roles, as production may."""
    owner, app = os.environ.get(POSTGRES_OWNER_ENV), os.environ.get(POSTGRES_APP_ENV)
    if os.environ.get(POSTGRES_ENV) and owner and app:
        return owner, app
    return None


def _owned_by() -> str:
    """``OWNER "role"`` of a new database when the owner's role is separate, else nothing."""
    roles = _separate_roles()
    return f' OWNER "{make_url(roles[0]).username}"' if roles else ""


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str | None]:
    """With ``BOOKWELL_TEST_POSTGRES``: a migrated database each test's database is cloned
    from; else ``None``."""
    if not os.environ.get(POSTGRES_ENV):
        yield None
        return
    admin = _admin_engine()
    # One template per pytest process: under pytest-xdist each worker migrates its own, and no
    # worker's clone waits on (or fails for) another's connection to a shared template.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"bookwell_template_{worker}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{_owned_by()}'))
    admin.dispose()
    roles = _separate_roles()
    if roles is None:
        template_engine = create_engine(_psycopg(_with_database(os.environ[POSTGRES_ENV], name)))
        schema.upgrade(template_engine)
        template_engine.dispose()
    else:  # the owner migrates, and grants the app's role what it needs (cloned with the rest)
        owner_engine = create_engine(_psycopg(_with_database(roles[0], name)))
        app_engine = create_engine(_psycopg(_with_database(roles[1], name)))
        schema.upgrade_as(owner_engine, app_engine)
        owner_engine.dispose()
        app_engine.dispose()
    _spares[name] = []
    yield name
    for database in (*_spares.pop(name), name):
        _drop(database)


@pytest.fixture
def database_url(request, tmp_path, postgres_template) -> Iterator[str]:
    """This test's own database: a SQLite file, or a PostgreSQL clone of the template. Either
    URL works with SQLAlchemy's ``create_engine`` as it is (``postgresql+psycopg://...``). With
    separate roles it is the app's role's URL; see ``migration_database_url``.

    Either starts migrated: the SQLite file is a copy of one migrated per test process. On
    PostgreSQL a database that a test left as the template is (same schema, privileges and
    versions, nobody connected) is emptied and handed to the next test, since cloning the
    template costs 0.1-0.4 s; any other is dropped."""
    if postgres_template is None:
        database = tmp_path / "bookwell.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), database)
        yield f"sqlite:///{database}"
        return
    spares = _spares[postgres_template]
    name = spares.pop() if spares else _clone(postgres_template)
    roles = _separate_roles()
    yield _psycopg(_with_database(roles[1] if roles else os.environ[POSTGRES_ENV], name))
    if _emptied_for_reuse(name, postgres_template):
        spares.append(name)
    else:
        _drop(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite database migrated as ``bookwell init`` migrates one (core and the installed
    plugins), once per test process, which each test's ``database_url`` copies."""
    path = tmp_path_factory.mktemp("sqlite-template") / "bookwell.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    try:
        failures = schema.upgrade(engine)
    finally:
        engine.dispose()
    if failures:
        pytest.fail(f"plugin migrations failed in the SQLite template: {failures}")
    return path


# Per template: databases emptied after their test, each as the template was, for the next test.
_spares: dict[str, list[str]] = {}
# Per template: what it holds besides its rows (see _fingerprint); None if it holds rows beyond
# its migrations' versions, which emptying would lose: then no database is reused.
_template_fingerprints: dict[str, str | None] = {}

# Everything of a database that emptying its tables would not bring back to the template's:
# tables and columns, indexes, constraints, triggers (and whether they are enabled), functions,
# privileges, schemas, extensions and the database's own settings.
_FINGERPRINT_SQL = """
SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
  SELECT format('column %s.%s %s %s %s', c.relname, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull,
                pg_get_expr(d.adbin, d.adrelid)) AS item
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT format('relation %s %s %s %s', c.relname, c.relkind, c.relacl,
                          pg_get_userbyid(c.relowner))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
  UNION ALL SELECT format('index %s', pg_get_indexdef(i.indexrelid))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
  UNION ALL SELECT format('constraint %s %s', c.conname, pg_get_constraintdef(c.oid))
  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'
  UNION ALL SELECT format('trigger %s %s %s', tgname, tgenabled, tgrelid::regclass)
  FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT format('function %s %s %s', p.oid::regprocedure, md5(p.prosrc), p.proacl)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
  UNION ALL SELECT format('schema %s %s', nspname, nspacl) FROM pg_namespace
  WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
  UNION ALL SELECT format('extension %s %s', extname, extversion) FROM pg_extension
  UNION ALL SELECT format('default acl %s', defaclacl) FROM pg_default_acl
  UNION ALL SELECT format('database %s', datacl) FROM pg_database
  WHERE datname = current_database()
  UNION ALL SELECT format('setting %s', s.setconfig) FROM pg_db_role_setting s
  JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = current_database()
) items
"""


def _connect_as_admin(name: str) -> psycopg.Connection:
    url = make_url(_with_database(os.environ[POSTGRES_ENV], name))
    return psycopg.connect(
        url.render_as_string(hide_password=False).replace("+psycopg", ""), autocommit=True
    )


def _tables(connection: psycopg.Connection) -> tuple[list[str], list[str]]:
    """(the data tables, the migrations' version tables) of the public schema."""
    names = [
        row[0]
        for row in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    versions = [name for name in names if name.startswith("alembic_version")]
    return [name for name in names if name not in versions], versions


def _fingerprint(connection: psycopg.Connection, versions: list[str]) -> str:
    """:data:`_FINGERPRINT_SQL`'s digest, with the rows of the version tables ``versions``."""
    digest = connection.execute(_FINGERPRINT_SQL).fetchone()[0]
    rows = {
        table: sorted(
            row[0]
            for row in connection.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
        )
        for table in versions
    }
    return f"{digest} {rows}"


def _template_fingerprint(template: str) -> str | None:
    if template not in _template_fingerprints:
        with _connect_as_admin(template) as connection:
            tables, versions = _tables(connection)
            holds_rows = any(
                connection.execute(
                    sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(table))
                ).fetchone()[0]
                for table in tables
            )
            _template_fingerprints[template] = (
                None if holds_rows else _fingerprint(connection, versions)
            )
    return _template_fingerprints[template]


def _emptied_for_reuse(name: str, template: str) -> bool:
    """Empty the test's database for the next test if it is still the template but for its rows:
    nobody connected to it, and the same schema, privileges and versions. ``False`` (touching
    nothing, or having failed half-way) if not: then it must be dropped."""
    expected = _template_fingerprint(template)
    if expected is None:
        return False
    try:
        with _connect_as_admin(name) as connection:
            others = connection.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            tables, versions = _tables(connection)
            if others or _fingerprint(connection, versions) != expected:
                return False
            # As in a replica: the audit trail's append-only trigger refuses TRUNCATE otherwise.
            connection.execute("SET session_replication_role = replica")
            connection.execute("SET lock_timeout = '5s'")
            if tables:
                listed = sql.SQL(", ").join(map(sql.Identifier, tables))
                connection.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(listed))
            # RESTART IDENTITY restarted the columns' own sequences; any other one, here.
            for (sequence,) in connection.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = 'public' AND NOT EXISTS ("
                "SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))"
            ).fetchall():
                connection.execute(
                    sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(sequence))
                )
            return True
    except psycopg.Error:
        return False


def _clone(template: str) -> str:
    admin = _admin_engine()
    name = f"bookwell_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{_owned_by()}'))
    finally:
        admin.dispose()
    return name


def _drop(name: str) -> None:
    admin = _admin_engine()
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def migration_database_url(database_url) -> str:
    """The URL this test's schema changes connect with (``MIGRATION_DATABASE_URL``): the
    owner's role's, when the tests run with separate roles, else ``database_url`` itself."""
    roles = _separate_roles()
    if roles is None or database_url.startswith("sqlite"):
        return database_url
    return _psycopg(_with_database(roles[0], make_url(database_url).database or ""))


@contextmanager
def as_tables_owner(app: Flask) -> Iterator[Connection]:
    """A connection to ``app``'s database, in one transaction, as the role that owns its tables
    (``MIGRATION_DATABASE_URL``, else the app's own): for a test that changes the schema under
    the app, which the app's own role may not when the roles are separate."""
    engine = db.build_engine(app.config.get("MIGRATION_DATABASE_URL") or app.config["DATABASE_URL"])
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def tampering_with_the_trail(app: Flask) -> Iterator[Connection]:
    """:func:`as_tables_owner`, with PostgreSQL's append-only trigger of ``audit_entries``
    switched off for the transaction: what someone holding the owner's password could do to the
    trail. For tests that show ``audit verify`` finds an entry edited, removed or forged."""
    with as_tables_owner(app) as connection:
        on_postgresql = connection.dialect.name == "postgresql"
        if on_postgresql:  # USER: the trail's own triggers, not its foreign keys'
            connection.exec_driver_sql("ALTER TABLE audit_entries DISABLE TRIGGER USER")
        yield connection
        if on_postgresql:
            connection.exec_driver_sql("ALTER TABLE audit_entries ENABLE TRIGGER USER")


# --- the app, the business, the client ----------------------------------------------------------


@pytest.fixture
def clock() -> MovableClock:
    """The app's clock, at Monday 1 March 2027, 09:00 in Paris; it moves only when told."""
    return MovableClock(START)


@pytest.fixture
def make_app(
    tmp_path, database_url, migration_database_url, clock
) -> Iterator[Callable[..., Flask]]:
    """Build an app on this test's database: ``make_app(plugins=[module], KEY=value)``.

    ``plugins`` are registered besides the installed ones (as ``EXTRA_PLUGINS``); keyword
    arguments override the app's settings. Rate limits are off and hashing is cheap. The
    database is migrated, core's tables and every plugin's (the ``migrations`` hook). Every app
    built in a test shares its database; the other fixtures use ``app``.
    """
    apps: list[Flask] = []

    def build(plugins: list | tuple = (), **overrides: Any) -> Flask:
        app = create_app(
            _app_settings(
                tmp_path, (database_url, migration_database_url), clock, plugins, overrides
            )
        )
        apps.append(app)
        # Core's tables (already there on PostgreSQL: the template is migrated), then those of
        # the app's plugins, ``plugins`` included, as `bookwell init` does; a plugin's migration
        # that fails fails the test.
        failures = schema.upgrade_app(app, host_of(app))
        if failures:
            pytest.fail(f"plugin migrations failed: {failures}")
        return app

    yield build
    for app in apps:
        # Before the database goes (dropped on PostgreSQL): a delivery thread still running
        # would fail against it, and log its traceback while the next test runs.
        if not dispatch.stop_delivery(app):
            warnings.warn(f"mail delivery of {app!r} still runs after the test", stacklevel=1)
        db.engine_of(app).dispose()


def _app_settings(
    tmp_path,
    database_urls: tuple[str, str],
    clock: MovableClock,
    plugins: list | tuple,
    overrides: dict,
) -> dict[str, Any]:
    """``database_urls``: the app's and the migrations' (the same one unless roles are separate)."""
    app_url, migration_url = database_urls
    settings: dict[str, Any] = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": app_url,
        "MIGRATION_DATABASE_URL": migration_url if migration_url != app_url else None,
        "SECRET_KEY": "test-secret",
        # One key for every app of a test, as for every process of one instance: what one
        # app encrypted with ctx.secrets, another decrypts.
        "ENCRYPTION_KEY": "test-encryption-key",
        "RATE_LIMITS": "off",
        "CLOCK": clock,
        "TESTING": True,
        "PASSWORD_HASHING": CHEAP_HASHING,
        # A guard's time limit (2 s in production) refuses with plugin_failed when it runs out:
        # on a loaded 2-core CI machine a database call may take that long. Tests of overruns
        # set their own short limit.
        "GUARD_TIMEOUT_SECONDS": 10.0,
    }
    if plugins:
        settings["EXTRA_PLUGINS"] = list(plugins)
    settings.update(overrides)
    return settings


@pytest.fixture
def power_cut(monkeypatch) -> Callable[[int], None]:
    """``power_cut(n)``: the ``n``-th deletion of ``ctx.data.archive_and_delete_ended`` (1 for
    the first) fails with ``RuntimeError("power cut")`` after its archive was written and before
    anything was deleted, as if the machine lost power there; the calls after it run normally.
    For a plugin's test that nothing is lost half-way."""
    from bookwell.core.context import data as plugin_data

    real_delete = plugin_data.delete_archived
    calls: list[int] = []

    def arm(nth: int) -> None:
        def cut(*arguments: Any) -> Any:
            calls.append(1)
            if len(calls) == nth:
                raise RuntimeError("power cut")
            return real_delete(*arguments)

        monkeypatch.setattr(plugin_data, "delete_archived", cut)

    return arm


@pytest.fixture
def bookwell_cli(
    app,
    tmp_path,
    database_url,
    migration_database_url,
    clock,
    bookwell_plugins,
    bookwell_settings,
    monkeypatch,
) -> Iterator[Callable[..., Any]]:
    """``bookwell_cli("plugins", "enable", "tuesdays", "--tenant", "salon")`` runs the
    ``bookwell`` command in this process, as an operator would, on the test's database and
    instance, with the app's plugins, settings and ``clock``. Returns click's ``Result``:
    ``exit_code``, ``output`` (stdout and stderr together). ``settings={...}`` changes the
    command's settings for that one run, as an operator's environment would (e.g.
    ``bookwell_cli("keys", "rotate", settings={"ENCRYPTION_KEY": "new,test-encryption-key"})``).
    With ``terminal=True`` its output goes to a pseudo-terminal, as when a person runs it
    (``bookwell tick`` draws progress bars there); ``output`` is then what the terminal
    received, carriage returns included."""
    built: list[Flask] = []
    this_run: dict[str, Any] = {}

    def build(config: dict[str, Any] | None = None) -> Flask:
        settings = _app_settings(
            tmp_path,
            (database_url, migration_database_url),
            clock,
            bookwell_plugins,
            bookwell_settings,
        )
        built.append(create_app({**(config or {}), **settings, **this_run}))
        return built[-1]

    monkeypatch.setenv("DATABASE_URL", database_url)
    for variable in ("BOOKWELL_INSTANCE", "BOOKWELL_DISABLED_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(cli_instance, "create_app", build)

    def run(*args: str, settings: dict[str, Any] | None = None, terminal: bool = False) -> Any:
        this_run.clear()
        this_run.update(settings or {})
        arguments = ["--instance", str(tmp_path / "instance"), *args]
        if terminal:
            return _on_a_terminal(arguments)
        return CliRunner().invoke(bookwell_main, arguments)

    yield run
    for cli_app in built:
        db.engine_of(cli_app).dispose()


@dataclass(frozen=True)
class TerminalResult:
    """What ``bookwell_cli(..., terminal=True)`` gives: the exit code and the terminal's text."""

    exit_code: int
    output: str


def _on_a_terminal(arguments: list[str]) -> TerminalResult:
    import pty
    import sys
    import threading

    controller, terminal_end = pty.openpty()
    received: list[bytes] = []

    def read() -> None:  # drains as it comes: a full terminal buffer would block the command
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's end closed: all is read
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    terminal = os.fdopen(terminal_end, "w", buffering=1)
    standard_output, sys.stdout = sys.stdout, terminal
    exit_code = 0
    try:
        bookwell_main.main(arguments, standalone_mode=False)
    except SystemExit as exit_:
        exit_code = exit_.code if isinstance(exit_.code, int) else 1
    except Exception as error:  # click's errors, as its runner reports them
        terminal.write(f"Error: {error}\n")
        exit_code = 1
    finally:
        sys.stdout = standard_output
        terminal.close()
    reader.join(timeout=10)
    os.close(controller)
    return TerminalResult(exit_code, b"".join(received).decode(errors="replace"))


@pytest.fixture
def plugin_context_for(app, tenant) -> Callable[..., Any]:
    """``with plugin_context_for("tuesdays") as ctx:`` (or ``business=spa``): the context
    ``plugin_context(slug)`` gives the plugin's commands, whether or not the business enabled
    it (``ctx.actor`` is ``None``); ``plugin_settings(slug)`` works inside the block too."""

    @contextmanager
    def context(plugin: str, business: Business | None = None) -> Iterator[Any]:
        with app.app_context():
            run_as_command_of(plugin)
            yield plugin_context((business or tenant).slug)

    return context


@pytest.fixture
def bookwell_plugins() -> list:
    """Plugin modules for ``app`` besides the installed ones; override it to add yours."""
    return []


@pytest.fixture
def bookwell_settings() -> dict[str, Any]:
    """Settings for ``app`` (e.g. ``{"GUARD_TIMEOUT_SECONDS": 0.5}``); override it to change."""
    return {}


@pytest.fixture
def app(make_app, bookwell_plugins, bookwell_settings) -> Flask:
    """The app: the installed plugins and ``bookwell_plugins``, with ``bookwell_settings``."""
    return make_app(plugins=bookwell_plugins, **bookwell_settings)


@pytest.fixture
def tenant(app, clock) -> Business:
    """'salon', ready to take bookings (see :class:`Business`)."""
    return open_business(app, clock())


@pytest.fixture
def make_client(app, tenant, clock) -> Callable[..., BookingClient]:
    """``make_client("Bob")`` or ``make_client("Eve", business=other)``: another client."""

    def build(
        name: str = "Ann", email: str | None = None, business: Business | None = None
    ) -> BookingClient:
        return BookingClient(
            app, business or tenant, clock, name, email or f"{name.lower()}@example.com"
        )

    return build


@pytest.fixture
def client(make_client) -> BookingClient:
    """Ann (ann@example.com), a client of ``tenant``."""
    return make_client()


@pytest.fixture
def enable_plugin(app, tenant, clock) -> Callable[..., dict[str, Any]]:
    """``enable_plugin("loyalty", visits=3)`` switches a plugin on for ``tenant`` (or for
    ``business=...``) with these settings, exactly as the marketplace does; returns the
    settings in force."""

    def enable(name: str, business: Business | None = None, **settings: Any) -> dict[str, Any]:
        tenant_id = (business or tenant).tenant_id
        with app.app_context():
            plugin_changes.enable(app, tenant_id, name, settings, clock())
            return dict(host_of(app).enabled_for(db.session(), tenant_id)[name])

    return enable


@pytest.fixture
def disable_plugin(app, tenant, clock) -> Callable[..., bool]:
    """``disable_plugin("loyalty")`` switches it off again (its settings are kept)."""

    def disable(name: str, business: Business | None = None) -> bool:
        with app.app_context():
            return plugin_changes.disable(app, (business or tenant).tenant_id, name, clock())

    return disable


# --- staff, a second business, the schedule, the outbox, the audit trail -------------------------


@pytest.fixture
def staff_login(app, tenant, clock) -> Callable[..., StaffMember]:
    """``staff_login("manager")``, or ``staff_login("owner", business=spa, email=...)``: a staff
    member with that role, created and signed in (see :class:`StaffMember`); asked twice for
    the same person, the same member. ``provider_id=business.provider_id`` links the account
    to the provider it works as (a ``staff`` account reads only that provider's bookings)."""
    members: dict[tuple[str, str], StaffMember] = {}

    def sign_in(
        role: str = "owner",
        business: Business | None = None,
        email: str | None = None,
        provider_id: int | None = None,
    ) -> StaffMember:
        business = business or tenant
        email = email or f"{role}@example.com"
        if (business.slug, email) not in members:
            with app.app_context():
                user = create_user(
                    app,
                    tenant_id=business.tenant_id,
                    email=email,
                    role=role,
                    password=STAFF_PASSWORD,
                    now=clock(),
                    name=role.title(),
                    actor="tests",
                    provider_id=provider_id,
                )
                user_id = user.id
            members[(business.slug, email)] = StaffMember(app, business, role, email, user_id)
        return members[(business.slug, email)]

    return sign_in


@pytest.fixture
def support_user(app, clock) -> tuple[int, FlaskClient]:
    """``help@bookwell.example``, a platform support account (no business), signed in to the
    support pages in a browser: ``(user_id, browser)``."""
    with app.app_context():
        user_id = create_user(
            app,
            tenant_id=None,
            email="help@bookwell.example",
            role="support",
            password=STAFF_PASSWORD,
            now=clock(),
            actor="tests",
        ).id
    answer, browser = support_page_login(app, "help@bookwell.example")
    assert answer.status_code == 302, (answer.status_code, answer.text[:500])
    return user_id, browser


@pytest.fixture
def owner(staff_login) -> StaffMember:
    """``owner@example.com``, the owner of ``tenant``, signed in."""
    return staff_login("owner")


@pytest.fixture
def manager(staff_login) -> StaffMember:
    """``manager@example.com``, a manager of ``tenant``, signed in."""
    return staff_login("manager")


@pytest.fixture
def staff_member(staff_login) -> StaffMember:
    """``staff@example.com``, of the ``staff`` role at ``tenant``, signed in."""
    return staff_login("staff")


@pytest.fixture
def receptionist(staff_login) -> StaffMember:
    """``receptionist@example.com``, a receptionist of ``tenant``, signed in."""
    return staff_login("receptionist")


@pytest.fixture
def second_business(app, tenant, clock) -> Business:
    """'spa', another business on the same instance, made like ``tenant``: what happens at one
    must never show at the other."""
    return open_business(app, clock(), slug="spa", name="Spa")


@pytest.fixture
def second_client(make_client, second_business) -> BookingClient:
    """Ann again (the same address as ``client``), as a client of ``second_business``."""
    return make_client("Ann", business=second_business)


@pytest.fixture
def run_schedule(app, clock) -> Callable[..., list[TickReport]]:
    """``run_schedule()`` runs the scheduled work once, as ``bookwell tick`` does: every
    business's enabled ``on_schedule`` hooks, then its due mail. ``at=`` (an aware datetime or
    ISO 8601 text) moves ``clock`` there first; ``dry_run=True`` is ``bookwell tick --dry-run``;
    ``business=`` runs one business only. Returns a report per business (``tenant``,
    ``plugins`` that ran, ``mail``)."""

    def run(
        at: datetime | str | None = None,
        *,
        dry_run: bool = False,
        business: Business | None = None,
    ) -> list[TickReport]:
        if at is not None:
            when = datetime.fromisoformat(at) if isinstance(at, str) else at
            if when.tzinfo is None:
                raise ValueError(f"run_schedule(at=...) needs an offset, not {at!r}")
            clock.set(when)
        with app.app_context():
            return schedule.tick(
                app, clock(), slug=business.slug if business else None, dry_run=dry_run
            )

    return run


@pytest.fixture
def outbox(app, tenant, clock) -> Callable[..., list[Mail]]:
    """``outbox()``: the mail of ``tenant`` (or ``business=``), oldest first, sent or waiting,
    as :class:`Mail` (``to``, ``subject``, ``text``, ``kind``, ...); ``kind=`` keeps one kind.
    A booking's mail left as a placeholder (its request composes it right after its commit,
    unless it failed on the way) is composed first, so that the mail reads as it will be sent."""

    def read(business: Business | None = None, kind: str | None = None) -> list[Mail]:
        mail_outbox.compose_placeholders(app, clock(), 1000, grace=timedelta(0))
        query = (
            select(OutboxMessage, Booking.reference)
            .outerjoin(Booking, Booking.id == OutboxMessage.booking_id)
            .where(OutboxMessage.tenant_id == (business or tenant).tenant_id)
            .order_by(OutboxMessage.id)
        )
        if kind is not None:
            query = query.where(OutboxMessage.kind == kind)
        with db.fresh_session(app) as session:
            return [
                Mail(
                    to=message.to_address,
                    subject=message.subject,
                    text=message.text_body,
                    kind=message.kind,
                    html=message.html_body,
                    booking=reference,
                    sent=message.sent_at is not None,
                    ics=message.ics,
                )
                for message, reference in session.execute(query)
            ]

    return read


@pytest.fixture
def audit_trail(app, tenant) -> Callable[..., list[AuditRecord]]:
    """``audit_trail()``: the audit entries of ``tenant`` (or ``business=``), oldest first, as
    :class:`AuditRecord` (``action``, ``subject``, ``details``, ``actor``, ``at``, and the
    personal data the pseudonyms stand for); ``action=`` keeps one action (a plugin's own are
    ``plugin.<name>.<action>``)."""

    def read(business: Business | None = None, action: str | None = None) -> list[AuditRecord]:
        with db.fresh_session(app) as session:
            shown = audit.listing(
                session, (business or tenant).tenant_id, audit.Filter(action=action)
            )
        return [
            AuditRecord(
                action=entry.action,
                subject=entry.subject,
                details=entry.details,
                actor=entry.actor,
                at=entry.at,
                actor_email=entry.actor_email,
                subject_email=entry.subject_email,
                ip=entry.ip,
                people=entry.people,
            )
            for entry in shown
        ]

    return read
