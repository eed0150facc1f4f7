"""The ``ssl`` plugin on a business: plain-HTTP reads go to HTTPS, plain-HTTP changes are refused
unread (pages, API, logins, and the API's routes without a slug by the bearer's business), HTTPS
answers carry HSTS, other businesses are untouched, and a plugin that fails refuses."""

from __future__ import annotations

import pytest
from flask import Blueprint, jsonify, request

import bookwell.plugins.ssl as ssl_plugin
from bookwell.core.testing import STAFF_PASSWORD, api_login, csrf_token_of, page_login
from bookwell.hooks import Manifest, hookimpl

HTTP = "http://localhost"
HTTPS = "https://localhost"
SLOT = "2027-03-02T10:00:00+01:00"
ONE_YEAR = "max-age=31536000"
DAY = {"from": "2027-03-02", "to": "2027-03-02"}

# A plugin's API route taking every method that changes something, and noting each change it
# makes: core's own API has no PATCH or DELETE route to prove "never processed" with.
probe_api = Blueprint("ssl_probe", __name__, url_prefix="/api/v1/tenants/<slug>/ssl_probe")
CHANGES: list[str] = []


@probe_api.route("/thing", methods=["POST", "PUT", "PATCH", "DELETE"])
def change_thing(slug):
    CHANGES.append(request.method)
    return jsonify(changed=request.method)


class Probe:
    MANIFEST = Manifest("ssl_probe", "Probe", "Notes the changes asked.", "1.0", "Tests", "tests")

    @hookimpl
    def routes():
        return probe_api


@pytest.fixture
def bookwell_plugins():
    return [Probe]


@pytest.fixture
def https_only(owner, enable_plugin):
    """The owner is signed in (over plain HTTP, before), then the business turns ``ssl`` on."""
    CHANGES.clear()
    enable_plugin("ssl_probe")
    return enable_plugin("ssl")


def booking_body(business, name="Ann"):
    return {
        "service_id": business.service_id,
        "provider_id": business.provider_id,
        "start": SLOT,
        "client": {"name": name, "email": f"{name.lower()}@example.com"},
    }


def refused_unread(response):
    assert response.status_code == 403, (response.status_code, response.text[:300])
    error = response.json["error"]
    assert error["code"] == "https_required"
    assert "HTTPS" in error["message"]
    assert error["refusals"][0]["plugin"] == "ssl"
    assert "Strict-Transport-Security" not in response.headers  # never over plain HTTP
    return error


# --- allowed: HTTPS, with HSTS -------------------------------------------------------------------


def test_https_passes_with_hsts_of_one_year_by_default(https_only, client, owner):
    assert https_only["hsts_max_age"] == 31536000
    services = client.http.get("/api/v1/tenants/salon/services", base_url=HTTPS)
    assert services.status_code == 200
    assert services.headers["Strict-Transport-Security"] == ONE_YEAR
    page = client.http.get("/book/salon/", base_url=HTTPS)
    assert page.status_code == 200 and page.headers["Strict-Transport-Security"] == ONE_YEAR
    booked = client.http.post(
        "/api/v1/tenants/salon/bookings", json=booking_body(client.business), base_url=HTTPS
    )
    assert booked.status_code == 201, booked.json
    assert booked.headers["Strict-Transport-Security"] == ONE_YEAR
    staff_page = owner.pages.get("/admin/salon/", base_url=HTTPS)
    assert staff_page.status_code == 200
    assert staff_page.headers["Strict-Transport-Security"] == ONE_YEAR


def test_hsts_says_the_businesss_max_age(owner, enable_plugin, client):
    enable_plugin("ssl", hsts_max_age=63072000)
    answer = client.http.get("/api/v1/tenants/salon/services", base_url=HTTPS)
    assert answer.headers["Strict-Transport-Security"] == "max-age=63072000"


def test_without_the_plugin_plain_http_works_and_no_hsts_is_sent(client):
    answer = client.http.get("/api/v1/tenants/salon/services", base_url=HTTPS)
    assert answer.status_code == 200 and "Strict-Transport-Security" not in answer.headers
    assert client.try_book(SLOT).status_code == 201


# --- reads over plain HTTP: 308 to the same address over HTTPS -----------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tenants/salon/services?provider_id=1&x=a%20b",
        "/api/v1/tenants/salon/availability?service_id=1&from=2027-03-02&to=2027-03-02",
        "/book/salon/?day=2027-03-02",
        "/book/salon/",
        "/admin/salon/login",
    ],
)
def test_a_plain_read_is_sent_to_the_same_address_over_https(https_only, client, method, path):
    answer = client.http.open(path, method=method, base_url=HTTP)
    assert answer.status_code == 308
    assert answer.headers["Location"] == "https://localhost" + path
    assert "Strict-Transport-Security" not in answer.headers


def test_the_redirect_keeps_the_host_and_port_asked_for_but_drops_port_80(https_only, client):
    on_8080 = client.http.get("/book/salon/", base_url="http://shop.example:8080")
    assert on_8080.headers["Location"] == "https://shop.example:8080/book/salon/"
    on_80 = client.http.get("/book/salon/?a=1", base_url="http://shop.example:80")
    assert on_80.headers["Location"] == "https://shop.example/book/salon/?a=1"


# --- changes over plain HTTP: 403 https_required, never processed --------------------------------


def test_a_booking_posted_over_plain_http_is_refused_and_stores_nothing(https_only, client, owner):
    refused = client.http.post(
        "/api/v1/tenants/salon/bookings", json=booking_body(client.business), base_url=HTTP
    )
    error = refused_unread(refused)
    assert error["details"] == {"https_url": "https://localhost/api/v1/tenants/salon/bookings"}
    assert owner.api.get("bookings", query_string=DAY, base_url=HTTPS).json == []
    # The very same request over HTTPS is taken: only the scheme was wrong.
    booked = client.http.post(
        "/api/v1/tenants/salon/bookings", json=booking_body(client.business), base_url=HTTPS
    )
    assert booked.status_code == 201
    assert len(owner.api.get("bookings", query_string=DAY, base_url=HTTPS).json) == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_changing_method_over_plain_http_is_refused_unread(https_only, owner, method):
    refused_unread(owner.api.open(method, "ssl_probe/thing", json={}, base_url=HTTP))
    assert CHANGES == []
    done = owner.api.open(method, "ssl_probe/thing", json={}, base_url=HTTPS)
    assert done.status_code == 200 and CHANGES == [method]


def test_a_plugin_setting_put_over_plain_http_changes_nothing(https_only, owner):
    refused_unread(
        owner.api.put("plugins/ssl", json={"settings": {"hsts_max_age": 63072000}}, base_url=HTTP)
    )
    listed = owner.api.get("plugins", base_url=HTTPS).json
    assert next(p for p in listed if p["name"] == "ssl")["settings"]["hsts_max_age"] == 31536000


def test_a_login_over_plain_http_is_refused_before_the_password_is_read(https_only, app):
    http = app.test_client()
    for password in (STAFF_PASSWORD, "a wrong password"):
        answer = http.post(
            "/api/v1/tenants/salon/auth/login",
            json={"email": "owner@example.com", "password": password},
            base_url=HTTP,
        )
        error = refused_unread(answer)
        assert "token" not in answer.json and error["code"] == "https_required"
    secure = http.post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "owner@example.com", "password": STAFF_PASSWORD},
        base_url=HTTPS,
    )
    assert secure.status_code == 200 and secure.json["token"]
    assert secure.headers["Strict-Transport-Security"] == ONE_YEAR


def test_a_staff_login_form_over_plain_http_is_refused_with_a_page(https_only, app):
    browser = app.test_client()
    form = browser.get("/admin/salon/login", base_url=HTTPS)
    answer = browser.post(
        "/admin/salon/login",
        data={
            "csrf_token": csrf_token_of(form),
            "email": "owner@example.com",
            "password": STAFF_PASSWORD,
        },
        base_url=HTTP,
    )
    assert answer.status_code == 403
    assert answer.mimetype == "text/html"
    assert "secure connection (HTTPS)" in answer.text
    assert "Traceback" not in answer.text
    # Not signed in: the staff pages still ask for a login.
    assert browser.get("/admin/salon/", base_url=HTTPS).status_code == 302


def test_a_booking_form_over_plain_http_is_refused_with_the_businesss_page(
    https_only, client, owner
):
    business = client.business
    choice = {"service": business.service_id, "provider": business.provider_id, "start": SLOT}
    form = client.http.get("/book/salon/details", query_string=choice, base_url=HTTPS)
    assert form.status_code == 200
    answer = client.http.post(
        "/book/salon/details",
        query_string=choice,
        data={"csrf_token": csrf_token_of(form), "name": "Ann", "email": "ann@example.com"},
        base_url=HTTP,
    )
    assert answer.status_code == 403 and answer.mimetype == "text/html"
    assert "secure connection (HTTPS)" in answer.text
    assert "Salon" in answer.text  # the business's own page, not a bare error
    assert owner.api.get("bookings", query_string=DAY, base_url=HTTPS).json == []


# --- the API's routes without a slug count for the bearer's business -----------------------------


def test_routes_without_a_slug_follow_the_bearers_business(https_only, owner):
    listed = owner.api.get("/api/v1/auth/sessions", base_url=HTTP)
    assert listed.status_code == 308
    assert listed.headers["Location"] == "https://localhost/api/v1/auth/sessions"
    secure = owner.api.get("/api/v1/auth/sessions", base_url=HTTPS)
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == ONE_YEAR


def test_a_logout_over_plain_http_is_refused_and_the_token_lives_on(https_only, owner):
    refused_unread(owner.api.post("/api/v1/auth/logout", base_url=HTTP))
    assert owner.api.get("/api/v1/auth/sessions", base_url=HTTPS).status_code == 200


def test_a_password_change_over_plain_http_is_refused_and_changes_nothing(https_only, owner, app):
    change = {"current_password": STAFF_PASSWORD, "new_password": "a brand new passphrase 42"}
    refused_unread(owner.api.post("/api/v1/auth/password", json=change, base_url=HTTP))
    still = app.test_client().post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "owner@example.com", "password": STAFF_PASSWORD},
        base_url=HTTPS,
    )
    assert still.status_code == 200


def test_a_bad_bearer_on_a_route_without_a_slug_is_still_a_401(https_only, app):
    answer = app.test_client().get(
        "/api/v1/auth/sessions", headers={"Authorization": "Bearer nonsense"}, base_url=HTTP
    )
    assert answer.status_code == 401 and answer.json["error"]["code"] == "unauthorized"


# --- other businesses are untouched --------------------------------------------------------------


def test_a_business_without_the_plugin_keeps_plain_http(
    https_only, second_business, second_client, staff_login
):
    spa_owner = staff_login("owner", business=second_business)
    services = second_client.http.get("/api/v1/tenants/spa/services", base_url=HTTP)
    assert services.status_code == 200 and "Strict-Transport-Security" not in services.headers
    assert second_client.http.get("/book/spa/", base_url=HTTP).status_code == 200
    assert second_client.try_book(SLOT).status_code == 201
    assert spa_owner.api.get("/api/v1/auth/sessions", base_url=HTTP).status_code == 200
    assert spa_owner.api.post("/api/v1/auth/logout", base_url=HTTP).status_code == 200
    signed_in, _ = page_login(spa_owner.app, spa_owner.email, business="spa")
    assert signed_in.status_code == 302
    assert api_login(spa_owner.app, spa_owner.email, business="spa").status_code == 200


# --- a plugin that fails refuses -----------------------------------------------------------------


def _boom(*_arguments):
    raise RuntimeError("the plugin broke")


def test_a_failing_guard_refuses_reads_and_changes(https_only, client, owner, monkeypatch):
    monkeypatch.setattr(ssl_plugin, "https_twin", _boom)
    read = client.http.get("/book/salon/", base_url=HTTP)
    assert read.status_code == 503
    changed = client.try_book(SLOT)
    assert changed.status_code == 503 and changed.json["error"]["code"] == "plugin_failed"
    login = api_login(owner.app, owner.email)
    assert login.status_code == 503 and "token" not in login.json
    monkeypatch.undo()
    assert owner.api.get("bookings", query_string=DAY, base_url=HTTPS).json == []


def test_a_failing_hsts_header_refuses_rather_than_leave_it_out(https_only, client, monkeypatch):
    monkeypatch.setattr(ssl_plugin, "hsts_header", _boom)
    answer = client.http.get("/api/v1/tenants/salon/services", base_url=HTTPS)
    assert answer.status_code == 503 and answer.json["error"]["code"] == "plugin_failed"
