"""Every answer, page or API, carries the security headers; no private answer may be kept by
a cache."""

import re

import pytest
from conftest import STAFF_PASSWORD, add_staff_and_a_rival, booking_body, log_in_staff
from sqlalchemy import func, select

from bookwell.core.access.users import create_user
from bookwell.core.storage import db
from bookwell.core.storage.models import AuthSession, Tenant, User
from bookwell.core.web.security_headers import SHARED


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/admin/salon/login",
        "/support/login",
        "/api/v1/tenants/salon/services",
        "/api/v1/nothing",
    ],
)
def test_every_answer_carries_a_strict_policy(client, business, path):
    headers = client.get(path).headers
    policy = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


# --- Cache-Control: no-store on every answer about whoever asks --------------------------------

CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
FORM_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def is_file(endpoint: str) -> bool:
    return endpoint == "static" or endpoint.endswith(".static")


def every_route(app):
    """(endpoint, method, path) of every route of the app, plugins' included; logouts last so
    that a signed-in walk stays signed in until its end."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule.rule))
    return sorted(found, key=lambda entry: ("log_out" in entry[0] or "logout" in entry[0], entry))


def fill(rule: str, values: dict[str, object]) -> str:
    return CONVERTER.sub(lambda match: str(values[match[1]]), rule)


@pytest.fixture
def walk(app, business, clock):
    """Values for every route's arguments: real ids of the business, a booking and a staff
    member signed in to the pages (``pages``) and to the API (``token``)."""
    add_staff_and_a_rival(app, business, clock(), ["owner"])
    api = app.test_client()
    booked = api.post(
        "/api/v1/tenants/salon/bookings", json=booking_body(business, "2027-03-02T10:00:00+01:00")
    )
    assert booked.status_code == 201, booked.json
    login = api.post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "owner@example.com", "password": STAFF_PASSWORD},
    )
    assert login.status_code == 200
    with db.fresh_session(app) as session:
        owner_id = session.scalar(select(User.id).where(User.email == "owner@example.com"))
        session_id = session.scalar(select(func.max(AuthSession.id)))
    return {
        "values": {
            "slug": "salon",
            "reference": booked.json["reference"],
            "service_id": business.service_id,
            "provider_id": business.provider_id,
            "user_id": owner_id,
            "session_id": session_id,
            "time_off_id": 1,
            "grant_id": 1,
            "callback_id": 1,
            "block_id": 1,
            "token": "not-a-token",
            "what": "verify",
            "name": "closed_days",
            "theme": "default",
            "filename": "bookwell.css",
            "number": 1,
            "email": "ann@example.com",
        },
        "booking": booked.json,
        "token": login.json["token"],
        "pages": log_in_staff(app, "owner@example.com"),
    }


def test_every_private_route_answers_no_store_to_anybody(app, business, walk):
    """Walked anonymously: every route but files and the few that answer everybody alike
    (even refusing, redirecting or failing) says no-store."""
    client = app.test_client()
    kept = []
    for endpoint, method, rule in every_route(app):
        if is_file(endpoint) or (endpoint in SHARED and method == "GET"):
            continue
        response = client.open(fill(rule, walk["values"]), method=method)
        if response.headers.get("Cache-Control") != "no-store":
            kept.append(f"{method} {rule} -> {response.status_code}")
    assert kept == []


def test_every_route_answers_no_store_to_whoever_is_signed_in(app, business, walk):
    """Walked with the staff's session cookie on the pages and their bearer on the API: every
    answer but files says no-store, the business's public pages and catalogue included."""
    pages, bearer = walk["pages"], {"Authorization": f"Bearer {walk['token']}"}
    kept, answered = [], set()
    for endpoint, method, rule in every_route(app):
        if is_file(endpoint):
            continue
        path = fill(rule, walk["values"])
        if rule.startswith("/api/"):
            response = app.test_client().open(path, method=method, headers=bearer)
        else:
            response = pages.open(path, method=method)
        answered.add(response.status_code)
        if response.headers.get("Cache-Control") != "no-store":
            kept.append(f"{method} {rule} -> {response.status_code}")
    assert kept == []
    assert 200 in answered


def test_the_private_answers_that_matter_say_no_store(app, business, walk):
    """Not only refusals: the answers that carry what is private."""
    booking, pages = walk["booking"], walk["pages"]
    bearer = {"Authorization": f"Bearer {walk['token']}"}
    anonymous = app.test_client()
    manage = f"/book/salon/manage/{booking['reference']}?token={booking['manage_token']}"
    answers = {
        "manage page": anonymous.get(manage),
        "booking for its client": anonymous.get(
            f"/api/v1/tenants/salon/bookings/{booking['reference']}?token={booking['manage_token']}"
        ),
        "a new booking's token": anonymous.post(
            "/api/v1/tenants/salon/bookings",
            json=booking_body(business, "2027-03-02T11:00:00+01:00"),
        ),
        "login token": anonymous.post(
            "/api/v1/tenants/salon/auth/login",
            json={"email": "owner@example.com", "password": STAFF_PASSWORD},
        ),
        "staff login page": anonymous.get("/admin/salon/login"),
        "support login page": anonymous.get("/support/login"),
        "staff day page": pages.get("/admin/salon/"),
        "staff booking page": pages.get(f"/admin/salon/bookings/{booking['reference']}"),
        "staff API": anonymous.get(
            "/api/v1/tenants/salon/bookings?from=2027-03-01&to=2027-03-07", headers=bearer
        ),
        "sessions": anonymous.get("/api/v1/auth/sessions", headers=bearer),
    }
    for what, response in answers.items():
        assert response.status_code in (200, 201), what
        assert response.headers["Cache-Control"] == "no-store", what


def test_a_signed_in_clients_account_pages_say_no_store(app, business, clock):
    with db.write_transaction(app) as writer:
        writer.get(Tenant, business.tenant_id).client_accounts = True
    with app.app_context():
        ann = create_user(
            app,
            tenant_id=business.tenant_id,
            email="ann@example.com",
            role="client",
            password=STAFF_PASSWORD,
            now=clock(),
        )
    with db.write_transaction(app) as writer:
        writer.get(User, ann.id).email_verified_at = clock()
    client = app.test_client()
    form = client.get("/book/salon/account/login")
    assert form.headers["Cache-Control"] == "no-store"
    signed_in = client.post(
        "/book/salon/account/login",
        data={
            "csrf_token": FORM_TOKEN.search(form.text).group(1),
            "email": "ann@example.com",
            "password": STAFF_PASSWORD,
        },
    )
    assert signed_in.status_code == 302
    assert signed_in.headers["Cache-Control"] == "no-store"
    for path in ("/book/salon/account/", "/book/salon/", "/api/v1/tenants/salon/services"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/openapi.json",
        "/api/v1/tenants/salon/services",
        "/book/salon/",
        "/book/salon/brand.css",
        "/static/bookwell.css",
    ],
)
def test_what_is_the_same_for_everybody_may_be_cached(client, business, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    with_bearer = client.get(path, headers={"Authorization": "Bearer bws_someone"})
    if not path.startswith("/static/"):
        assert with_bearer.headers["Cache-Control"] == "no-store"
