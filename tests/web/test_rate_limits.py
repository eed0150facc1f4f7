"""Per-IP rate limits on booking, on every public write and on every login (API and pages, one
bucket): 429 with Retry-After, set with ``BOOKWELL_RATE_LIMITS`` (config key ``RATE_LIMITS``), on
by default, ``off`` turns them off, and shared between processes through Redis when ``REDIS_URL``
is set, through the database otherwise."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid

import flask
import pytest
import redis
from conftest import STAFF_PASSWORD, booking_body, csrf_token_of
from redis_server import RedisServer, answers, free_port, wait_until
from sqlalchemy import func, insert, select, update

from bookwell.core import create_app, schema
from bookwell.core.access import login, passwords, sessions
from bookwell.core.access.users import create_user
from bookwell.core.foundation.config import DEFAULTS
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db, rate_counts
from bookwell.core.storage.models import Booking, RateLimitCounter, Tenant, User
from bookwell.core.web import session_cookies
from bookwell.core.web.ratelimits import RateLimitSettingError
from bookwell.hooks import Manifest, Refusal, hookimpl

API = "/api/v1/tenants/salon"


def slot(index: int) -> str:
    """A distinct free slot per index: 2027-03-02 09:00, 09:30, ... 16:30, then the next day."""
    day, step = divmod(index, 16)
    minutes = 9 * 60 + 30 * step
    return f"2027-03-{2 + day:02d}T{minutes // 60:02d}:{minutes % 60:02d}:00+01:00"


def booking_count(app) -> int:
    with db.engine_of(app).connect() as connection:
        return connection.scalar(select(func.count()).select_from(Booking))


def book(client, business, index: int, ip: str = "127.0.0.1", **headers):
    return client.post(
        f"{API}/bookings",
        json=booking_body(business, slot(index)),
        environ_base={"REMOTE_ADDR": ip},
        headers=headers,
    )


def assert_rate_limited(response) -> None:
    assert response.status_code == 429, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "rate_limited"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), retry_after
    assert 0 < int(retry_after) <= 60


def unique_ip() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


# --- limits per category -------------------------------------------------------------------------


def test_the_fourth_booking_in_a_minute_from_one_address_gets_429(make_app, business):
    app = make_app(RATE_LIMITS="booking=3/minute")
    client = app.test_client()
    for index in range(3):
        response = book(client, business, index)
        assert response.status_code == 201, response.json
    refused = book(client, business, 3)
    assert_rate_limited(refused)
    assert booking_count(app) == 3  # the refused one stored nothing


def test_refused_and_invalid_attempts_count_too(make_app, business):
    """A client cannot probe slots for free: a 409 or a 422 uses up the allowance as well."""
    app = make_app(RATE_LIMITS="booking=3/minute")
    client = app.test_client()
    assert book(client, business, 0).status_code == 201
    assert book(client, business, 0).status_code == 409
    damaged = client.post(f"{API}/bookings", data=b"{", content_type="application/json")
    assert damaged.status_code == 422
    assert_rate_limited(book(client, business, 1))


def test_another_address_has_its_own_allowance(make_app, business):
    app = make_app(RATE_LIMITS="booking=2/minute")
    client = app.test_client()
    assert book(client, business, 0, ip="192.0.2.1").status_code == 201
    assert book(client, business, 1, ip="192.0.2.1").status_code == 201
    assert_rate_limited(book(client, business, 2, ip="192.0.2.1"))
    assert book(client, business, 2, ip="192.0.2.2").status_code == 201


def test_a_forged_forwarded_for_header_does_not_reset_the_count(make_app, business):
    app = make_app(RATE_LIMITS="booking=2/minute")  # no trusted proxy: the socket address counts
    client = app.test_client()
    for index in range(2):
        response = book(client, business, index, **{"X-Forwarded-For": f"203.0.113.{index}"})
        assert response.status_code == 201
    assert_rate_limited(book(client, business, 2, **{"X-Forwarded-For": "203.0.113.99"}))


def test_behind_a_trusted_proxy_each_client_address_counts_apart(make_app, business):
    app = make_app(RATE_LIMITS="booking=1/minute", TRUSTED_PROXIES=1)
    client = app.test_client()
    assert book(client, business, 0, **{"X-Forwarded-For": "203.0.113.1"}).status_code == 201
    assert_rate_limited(book(client, business, 1, **{"X-Forwarded-For": "203.0.113.1"}))
    assert book(client, business, 1, **{"X-Forwarded-For": "203.0.113.2"}).status_code == 201


def _two_bookings(client, business):
    bookings = []
    for index in range(2):
        response = book(client, business, index)
        assert response.status_code == 201, response.json
        bookings.append((response.json["reference"], response.json["manage_token"]))
    return bookings


def test_cancel_and_reschedule_share_the_write_limit(make_app, business):
    app = make_app(RATE_LIMITS="write=2/minute")
    client = app.test_client()
    (first, first_token), (second, second_token) = _two_bookings(client, business)
    moved = client.post(
        f"{API}/bookings/{first}/reschedule", json={"token": first_token, "start": slot(10)}
    )
    assert moved.status_code == 200, moved.json
    cancelled = client.post(f"{API}/bookings/{second}/cancel", json={"token": second_token})
    assert cancelled.status_code == 200, cancelled.json
    assert_rate_limited(client.post(f"{API}/bookings/{first}/cancel", json={"token": first_token}))
    assert_rate_limited(
        client.post(
            f"{API}/bookings/{first}/reschedule", json={"token": first_token, "start": slot(11)}
        )
    )
    shown = client.get(f"{API}/bookings/{first}", query_string={"token": first_token})
    assert shown.json["status"] == "confirmed" and shown.json["start"] == slot(10)


def test_a_wrong_token_counts_against_the_write_limit(make_app, business):
    """Guessing tokens is throttled like any other write."""
    app = make_app(RATE_LIMITS="write=3/minute")
    client = app.test_client()
    (reference, token), _ = _two_bookings(client, business)
    for guess in range(3):
        response = client.post(f"{API}/bookings/{reference}/cancel", json={"token": f"g{guess}"})
        assert response.status_code == 404
    assert_rate_limited(client.post(f"{API}/bookings/{reference}/cancel", json={"token": token}))


def test_the_booking_and_write_limits_are_counted_apart(make_app, business):
    app = make_app(RATE_LIMITS="booking=2/minute,write=5/minute")
    client = app.test_client()
    (reference, token), _ = _two_bookings(client, business)
    assert_rate_limited(book(client, business, 2))
    cancelled = client.post(f"{API}/bookings/{reference}/cancel", json={"token": token})
    assert cancelled.status_code == 200, cancelled.json


def test_a_category_left_out_of_the_setting_is_not_limited(make_app, business):
    app = make_app(RATE_LIMITS="write=1/minute")
    client = app.test_client()
    for index in range(6):
        assert book(client, business, index).status_code == 201


def test_reads_are_never_limited(make_app, business):
    app = make_app(RATE_LIMITS="booking=1/minute,write=1/minute")
    client = app.test_client()
    created = book(client, business, 0)
    assert created.status_code == 201
    reference, token = created.json["reference"], created.json["manage_token"]
    assert_rate_limited(book(client, business, 1))
    assert client.post(f"{API}/bookings/{reference}/cancel", json={"token": "x"}).status_code == 404
    assert_rate_limited(client.post(f"{API}/bookings/{reference}/cancel", json={"token": token}))
    reads = [
        (f"{API}/services", {}),
        (f"{API}/providers", {"service_id": business.service_id}),
        (
            f"{API}/availability",
            {"service_id": business.service_id, "from": "2027-03-02", "to": "2027-03-03"},
        ),
        (f"{API}/booking-requirements", {}),
        (f"{API}/bookings/{reference}", {"token": token}),
        ("/api/v1/openapi.json", {}),
    ]
    for _ in range(15):
        for path, query in reads:
            response = client.get(path, query_string=query)
            assert response.status_code == 200, (path, response.status_code)


@pytest.mark.parametrize("setting", ["off", "OFF", " off "])
def test_off_turns_every_limit_off(make_app, business, setting):
    app = make_app(RATE_LIMITS=setting)
    client = app.test_client()
    for index in range(25):
        assert book(client, business, index).status_code == 201
    for _ in range(65):
        response = client.post(f"{API}/bookings/NOPE-NOPE-NOPE-NOPE/cancel", json={"token": "x"})
        assert response.status_code == 404


# --- where the setting comes from ----------------------------------------------------------------


@pytest.fixture
def bare_app(tmp_path, database_url, clock, monkeypatch):
    """``create_app`` without a RATE_LIMITS override: the default, or the environment, decides."""
    monkeypatch.delenv("BOOKWELL_RATE_LIMITS", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    apps = []

    def build():
        app = create_app(
            {
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test-secret",
                "CLOCK": clock,
                "TESTING": True,
            }
        )
        schema.upgrade(db.engine_of(app))
        apps.append(app)
        return app

    yield build
    for app in apps:
        db.engine_of(app).dispose()


def test_limits_are_on_by_default(bare_app):
    app = bare_app()
    assert str(app.config["RATE_LIMITS"]).strip().lower() != "off"
    client = app.test_client()
    statuses = [client.post(f"{API}/bookings", data=b"{").status_code for _ in range(200)]
    assert 429 in statuses, "200 bookings in a row from one address were never limited"
    first_refusal = statuses.index(429)
    assert set(statuses[:first_refusal]) == {404}  # no such tenant here: refused, but counted
    assert set(statuses[first_refusal:]) == {429}
    writes = [
        client.post(f"{API}/bookings/X/cancel", json={"token": "x"}).status_code for _ in range(200)
    ]
    assert 429 in writes, "200 cancellations in a row from one address were never limited"


def test_the_limit_is_read_from_BOOKWELL_RATE_LIMITS(bare_app, monkeypatch):
    monkeypatch.setenv("BOOKWELL_RATE_LIMITS", "booking=2/minute")
    client = bare_app().test_client()
    assert client.post(f"{API}/bookings", json={}).status_code == 404
    assert client.post(f"{API}/bookings", json={}).status_code == 404
    assert_rate_limited(client.post(f"{API}/bookings", json={}))


@pytest.mark.parametrize(
    "setting",
    [
        "booking=lots",
        "booking=3/fortnight",
        "booking=",
        "booking",
        "bookings=3/minute",
        "3/minute",
        "booking=3/minute,write=many",
        "read=3/minute",
    ],
)
def test_a_bad_setting_fails_app_creation_with_a_clear_error(make_app, setting):
    with pytest.raises(ValueError) as caught:
        make_app(RATE_LIMITS=setting)
    message = str(caught.value)
    assert "rate limit" in message.lower()
    bad_part = next(
        part
        for part in setting.split(",")
        if part not in ("booking=3/minute",)  # the good half of a mixed setting
    )
    assert bad_part in message


def test_a_bad_setting_in_the_environment_fails_app_creation(bare_app, monkeypatch):
    monkeypatch.setenv("BOOKWELL_RATE_LIMITS", "booking=lots")
    with pytest.raises(ValueError, match="booking=lots"):
        bare_app()


# --- Redis: one count for every process ----------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """``REDIS_TEST_URL`` when set (CI exports it), else a private redis-server on a free port,
    started once for this module and stopped after it."""
    given = os.environ.get("REDIS_TEST_URL")
    if given:
        wait_until(lambda: answers(given))
        yield given
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def client_ip(redis_url):
    """An address no other test uses, so counts never leak between tests on a shared server;
    its keys are removed afterwards."""
    ip = unique_ip()
    yield ip
    connection = redis.Redis.from_url(redis_url)
    try:
        for key in connection.scan_iter(match=f"*/{ip}/*"):
            connection.delete(key)
    finally:
        connection.close()


def test_apps_sharing_redis_share_one_count(make_app, business, redis_url, client_ip):
    first = make_app(REDIS_URL=redis_url, RATE_LIMITS="booking=3/minute").test_client()
    second = make_app(REDIS_URL=redis_url, RATE_LIMITS="booking=3/minute").test_client()
    assert book(first, business, 0, ip=client_ip).status_code == 201
    assert book(first, business, 1, ip=client_ip).status_code == 201
    assert book(second, business, 2, ip=client_ip).status_code == 201
    assert_rate_limited(book(second, business, 3, ip=client_ip))
    assert_rate_limited(book(first, business, 3, ip=client_ip))
    connection = redis.Redis.from_url(redis_url)
    try:
        assert list(connection.scan_iter(match=f"*/{client_ip}/*")), "no count was kept in Redis"
    finally:
        connection.close()


def test_apps_sharing_redis_share_the_write_count(make_app, business, redis_url, client_ip):
    first = make_app(REDIS_URL=redis_url, RATE_LIMITS="write=2/minute").test_client()
    second = make_app(REDIS_URL=redis_url, RATE_LIMITS="write=2/minute").test_client()
    cancel = {"json": {"token": "x"}, "environ_base": {"REMOTE_ADDR": client_ip}}
    assert first.post(f"{API}/bookings/X/cancel", **cancel).status_code == 404
    assert second.post(f"{API}/bookings/X/cancel", **cancel).status_code == 404
    assert_rate_limited(first.post(f"{API}/bookings/X/cancel", **cancel))


def test_a_redis_outage_never_fails_a_booking(make_app, business):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    client = make_app(REDIS_URL=unreachable, RATE_LIMITS="booking=3/minute").test_client()
    for index in range(3):
        response = book(client, business, index)
        assert response.status_code == 201, response.json
    assert_rate_limited(book(client, business, 3))  # still limited, counting in memory


def test_a_redis_that_never_answers_does_not_hang_bookings(make_app, business):
    # Accepts connections, never answers: a network partition, or a Redis stuck on its disk.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        client = make_app(REDIS_URL=url, RATE_LIMITS="booking=3/minute").test_client()
        started = time.monotonic()
        for index in range(3):
            response = book(client, business, index)
            assert response.status_code == 201, response.json
        assert_rate_limited(book(client, business, 3))  # counting in memory meanwhile
        # A hang guard, not a speed test: without the socket timeout these four bookings took
        # 20 s here (each waiting on Redis); with it, under 2 s.
        assert time.monotonic() - started < 15
    finally:
        silent.close()


@pytest.mark.parametrize("setting", ["", "booking=0/minute"])
def test_a_limit_that_would_refuse_everything_or_nothing_is_refused(make_app, setting):
    with pytest.raises(RateLimitSettingError):
        make_app(RATE_LIMITS=setting)


# --- every login, API and pages, first step and further step: one limit -------------------------


class OneTimeCode:
    """Asks every login for a 6-digit code after the password (staff, clients and support)."""

    MANIFEST = Manifest("t-code", "Code", "Asks for a code.", "1.0", "security", "tests")

    @hookimpl
    def before_login(ctx):
        if ctx.login.answers.get("otp") == "246810":
            return None
        return Refusal(
            "Please give the code we sent you.",
            code="otp_needed",
            status=401,
            challenge={"field": "otp", "label": "Code"},
        )


OWNER = "owner@example.com"
WRONG = "not the password!!"
FIRST_STEPS = {
    "staff": ("/admin/salon/login", OWNER),
    "support": ("/support/login", "support@example.com"),
    "client": ("/book/salon/account/login", "client@example.com"),
}
FURTHER_STEPS = {
    "staff": "/admin/salon/login/step",
    "support": "/support/login/step",
    "client": "/book/salon/account/login/step",
}


@pytest.fixture
def doors(business, make_app, clock):
    """The business with client accounts on, an owner, a client and a support user (all with
    :data:`STAFF_PASSWORD`), and ``OneTimeCode`` asked on staff, client and support logins.
    Builds an app with the given limits; every app of the test shares the database."""
    settings = {"EXTRA_PLUGINS": [OneTimeCode], "SUPPORT_PLUGINS": {"t-code": {}}}
    app = make_app(**settings)
    with db.write_transaction(app) as writer:
        writer.get(Tenant, business.tenant_id).client_accounts = True
    with app.app_context():
        for tenant_id, email, role in (
            (business.tenant_id, OWNER, "owner"),
            (business.tenant_id, "client@example.com", "client"),
            (None, "support@example.com", "support"),
        ):
            create_user(
                app,
                tenant_id=tenant_id,
                email=email,
                role=role,
                password=STAFF_PASSWORD,
                now=clock(),
            )
        plugin_changes.enable(app, business.tenant_id, "t-code", {}, clock())
    return lambda limits: make_app(RATE_LIMITS=limits, **settings)


def start_session_of(app, clock, kind: str, email: str = OWNER) -> str:
    """A live session (``pending``: a login waiting for its code) of the user, as its secret."""
    with db.write_transaction(app) as writer:
        user = writer.scalars(select(User).where(User.email == email)).one()
        _, secret = sessions.start(
            writer,
            user,
            kind=kind,
            limits=sessions.Limits(60, 60),
            now=clock(),
            ip=None,
            user_agent=None,
        )
    return secret


def form_token(client, ip: str) -> str:
    """A CSRF token for this client's forms (reading a login page is free)."""
    page = client.get("/admin/salon/login", environ_base={"REMOTE_ADDR": ip})
    assert page.status_code == 200
    return csrf_token_of(page)


def assert_page_rate_limited(response) -> None:
    """A person gets a page, in the site's dress, that says why and when to come back."""
    assert response.status_code == 429, (response.status_code, response.text[:500])
    assert response.mimetype == "text/html"
    assert "many requests" in response.text and "Traceback" not in response.text
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), retry_after
    assert 0 < int(retry_after) <= 60


@pytest.mark.parametrize("who", sorted(FIRST_STEPS))
def test_sixty_wrong_passwords_on_a_login_page_meet_the_limit(doors, who):
    """The issue's finding: 60 wrong passwords in a row on a login page, and never a 429."""
    app = doors(DEFAULTS["RATE_LIMITS"])  # 10 a minute
    client = app.test_client()
    path, email = FIRST_STEPS[who]
    token = form_token(client, "127.0.0.1")
    data = {"csrf_token": token, "email": email, "password": WRONG}
    statuses = [client.post(path, data=data).status_code for _ in range(60)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429] * 50
    assert_page_rate_limited(client.post(path, data={**data, "password": STAFF_PASSWORD}))
    assert client.get(path).status_code == 200  # reading the page is never counted


@pytest.mark.parametrize("who", sorted(FURTHER_STEPS))
def test_sixty_wrong_codes_on_a_further_step_meet_the_limit(doors, clock, who):
    app = doors(DEFAULTS["RATE_LIMITS"])
    client = app.test_client()
    token = form_token(client, "127.0.0.1")
    email = FIRST_STEPS[who][1]
    statuses = []
    for guess in range(60):
        client.set_cookie(
            session_cookies.PENDING_COOKIE, start_session_of(app, clock, "pending", email)
        )
        answer = {"csrf_token": token, "field": "otp", "answer": f"{guess:06d}"}
        statuses.append(client.post(FURTHER_STEPS[who], data=answer).status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429] * 50
    client.set_cookie(
        session_cookies.PENDING_COOKIE, start_session_of(app, clock, "pending", email)
    )
    right = {"csrf_token": token, "field": "otp", "answer": "246810"}
    assert_page_rate_limited(client.post(FURTHER_STEPS[who], data=right))


def test_wrong_passwords_on_the_staff_page_use_up_the_apis_login_too(doors):
    app = doors("login=10/minute")
    client = app.test_client()
    data = {"csrf_token": form_token(client, "127.0.0.1"), "email": OWNER, "password": WRONG}
    for _ in range(10):
        assert client.post("/admin/salon/login", data=data).status_code == 401
    api_login = {"email": OWNER, "password": STAFF_PASSWORD}
    assert_rate_limited(client.post(f"{API}/auth/login", json=api_login))
    # ... and the other way round, from another address.
    other = {"REMOTE_ADDR": "192.0.2.10"}
    for _ in range(10):
        wrong = client.post(
            f"{API}/auth/login", json={**api_login, "password": WRONG}, environ_base=other
        )
        assert wrong.status_code == 401
    for path, email in FIRST_STEPS.values():
        refused = client.post(path, data={**data, "email": email}, environ_base=other)
        assert_page_rate_limited(refused)
    assert client.post("/admin/salon/login", data=data).status_code == 429  # still the first one
    assert (
        client.post(
            "/admin/salon/login", data=data, environ_base={"REMOTE_ADDR": "192.0.2.11"}
        ).status_code
        == 401
    )


# Every password and every one-time code is checked in one of these: the login path's password
# check (every attempt pays one argon2 verification, even for an unknown address) and its further
# steps (the guards that read a code).
LOGIN_PATH = ((passwords.Passwords, "verify"), (login, "finish"))
KNOWN_DOORS = {
    "tenant_auth_api.log_in",
    "auth_api.change_password",
    "admin_passwords.change",
    "admin_auth.login",
    "admin_auth.login_step",
    "support_auth.login",
    "support_auth.login_step",
    "client_accounts.login_page",
    "client_accounts.login_step",
}
PATH_VALUES = {"slug": "salon", "reference": "AAAA-BBBB-CCCC-DDDD"}


def post_rules(app):
    """Every route that takes a POST, with a URL for it (ids that name nothing)."""
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()):
            continue
        path = re.sub(
            r"<(?:(\w+):)?(\w+)>",
            lambda found: (
                "999999" if found.group(1) == "int" else PATH_VALUES.get(found.group(2), "x")
            ),
            rule.rule,
        )
        yield rule.endpoint, path


def attempts(path: str, token: str):
    """What a guesser sends: a password, or a code, in every shape a door accepts."""
    if path.startswith("/api/"):
        for body in (
            {"email": OWNER, "password": WRONG},
            {"email": OWNER, "password": WRONG, "otp": "123456"},
            {"current_password": WRONG, "new_password": "a brand new password"},
        ):
            yield {"json": body}
        return
    yield {
        "data": {
            "csrf_token": token,
            "email": OWNER,
            "password": WRONG,
            "current_password": WRONG,
            "new_password": "a brand new password",
            "confirm": "a brand new password",
            "field": "otp",
            "answer": "123456",
        }
    }


def test_every_door_that_takes_a_password_or_a_code_counts_against_one_login_limit(
    doors, clock, monkeypatch
):
    """Found, not listed: every POST route is tried, anonymous and signed in (a live session, a
    login waiting for its code), and those that check a password or a code are the doors. Then,
    with a login limit of exactly one try per door, each door is tried once (all let through)
    and again (all refused): each one counts, and all count in one bucket."""
    app = doors("off")
    doors_found: set[str] = set()
    for owner, name in LOGIN_PATH:
        checked = getattr(owner, name)

        def spy(*args, _checked=checked, **kwargs):
            if flask.has_request_context():
                doors_found.add(flask.request.endpoint)
            return _checked(*args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    client = app.test_client()
    token = form_token(client, "127.0.0.1")
    routes = list(post_rules(app))
    for signed_in in (False, True):
        for endpoint, path in routes:
            for attempt in attempts(path, token):
                client.set_cookie(
                    session_cookies.PENDING_COOKIE, start_session_of(app, clock, "pending")
                )
                headers = {}
                client.delete_cookie(session_cookies.COOKIE)
                if signed_in:
                    client.set_cookie(
                        session_cookies.COOKIE, start_session_of(app, clock, "browser")
                    )
                    headers["Authorization"] = f"Bearer {start_session_of(app, clock, 'api')}"
                response = client.post(path, headers=headers, **attempt)
                assert response.status_code < 500, (endpoint, response.text[:300])
    monkeypatch.undo()
    assert doors_found >= KNOWN_DOORS  # the search finds what is known: it does search
    unmarked = {
        endpoint
        for endpoint in doors_found
        if getattr(app.view_functions[endpoint], "rate_limit_category", None) != "login"
    }
    assert not unmarked, f"not counted against the login limit: {sorted(unmarked)}"

    limited = doors(f"login={len(doors_found)}/minute")
    guesser = limited.test_client()
    token = form_token(guesser, "192.0.2.50")
    at_doors = [
        (endpoint, path) for endpoint, path in post_rules(limited) if endpoint in doors_found
    ]
    assert {endpoint for endpoint, _ in at_doors} == doors_found
    ip = {"environ_base": {"REMOTE_ADDR": "192.0.2.50"}}
    for endpoint, path in at_doors:
        attempt = next(attempts(path, token))
        assert guesser.post(path, **attempt, **ip).status_code != 429, endpoint
    for endpoint, path in at_doors:
        attempt = next(attempts(path, token))
        refused = guesser.post(path, **attempt, **ip)
        if path.startswith("/api/"):
            assert_rate_limited(refused)
        else:
            assert_page_rate_limited(refused)


# --- without Redis: one count for every process, in the database ---------------------------------


def counters(app) -> dict[str, tuple[int, float]]:
    with db.engine_of(app).connect() as connection:
        rows = connection.execute(select(RateLimitCounter.__table__)).all()
    return {row.key: (row.hits, row.window_ends_at) for row in rows}


def test_without_redis_apps_on_one_database_share_one_count(make_app, business):
    """Two apps are two gunicorn workers: without Redis they count together in the database."""
    first = make_app(RATE_LIMITS="booking=3/minute").test_client()
    second = make_app(RATE_LIMITS="booking=3/minute").test_client()
    assert book(first, business, 0).status_code == 201
    assert book(second, business, 1).status_code == 201
    assert book(first, business, 2).status_code == 201
    assert_rate_limited(book(second, business, 3))
    assert_rate_limited(book(first, business, 3))
    assert booking_count(first.application) == 3
    (hits,) = [hits for key, (hits, _) in counters(first.application).items() if "booking" in key]
    assert hits == 5


def test_racing_hits_are_each_counted_once(make_app):
    """Eight threads on two apps' engines hit one key at once: every hit gets its own count."""
    apps = [make_app(RATE_LIMITS="login=1000/minute") for _ in range(2)]
    stores = [rate_counts.DatabaseCounts(engine=db.engine_of(app)) for app in apps]
    seen: list[int] = []
    start = threading.Barrier(8)

    def hammer(store):
        start.wait()
        for _ in range(10):
            seen.append(store.incr("race", 60))

    threads = [threading.Thread(target=hammer, args=(stores[index % 2],)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 81))
    assert stores[0].get("race") == stores[1].get("race") == 80


def test_a_window_that_has_ended_starts_again_and_its_row_is_swept_away(make_app):
    app = make_app(RATE_LIMITS="login=1000/minute")
    store = rate_counts.DatabaseCounts(engine=db.engine_of(app))
    assert [store.incr("mine", 60) for _ in range(3)] == [1, 2, 3]
    window_ends_at = store.get_expiry("mine")
    assert time.time() < window_ends_at <= time.time() + 60
    assert store.incr("mine", 60, amount=2) == 5 and store.get_expiry("mine") == window_ends_at
    ended = time.time() - 1
    with db.engine_of(app).begin() as connection:
        connection.execute(
            update(RateLimitCounter)
            .where(RateLimitCounter.key == "mine")
            .values(window_ends_at=ended)
        )
        connection.execute(
            insert(RateLimitCounter),
            [{"key": f"old/{n}", "hits": 9, "window_ends_at": ended - n} for n in range(50)],
        )
    assert store.get("mine") == 0 and store.get_expiry("mine") <= time.time()
    assert store.incr("mine", 60) == 1  # a new window, not the sixth hit of the old one
    assert len(counters(app)) == 51
    # A sweep comes at most once a minute per process: this store's first hit made one already.
    assert rate_counts.DatabaseCounts(engine=db.engine_of(app)).incr("other", 60) == 1
    assert set(counters(app)) == {"mine", "other"}
    store.clear("mine")
    assert set(counters(app)) == {"other"}
    assert store.check() is True
