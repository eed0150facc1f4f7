"""Per-IP rate limits on booking and on every public write: 429 with Retry-After, set with
``BOOKWELL_RATE_LIMITS`` (config key ``RATE_LIMITS``), on by default, ``off`` turns them off, and
shared between processes through Redis when ``REDIS_URL`` is set."""

from __future__ import annotations

import os
import socket
import time
import uuid

import pytest
import redis
from conftest import booking_body
from redis_server import RedisServer, answers, free_port, wait_until
from sqlalchemy import func, select

from bookwell.core import create_app, schema
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking
from bookwell.core.web.ratelimits import RateLimitSettingError

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


def test_without_redis_each_app_counts_for_itself(make_app, business):
    """The contrast to the shared count: in-memory counts are per process."""
    first = make_app(RATE_LIMITS="booking=3/minute").test_client()
    second = make_app(RATE_LIMITS="booking=3/minute").test_client()
    for index in range(2):
        assert book(first, business, index).status_code == 201
    for index in range(2, 4):
        assert book(second, business, index).status_code == 201


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
