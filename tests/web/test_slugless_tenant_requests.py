"""The API's routes without a slug (``/api/v1/auth/...``) are the tenant's whose user the bearer
is: that tenant's ``before_request`` guards them and its ``response_headers`` mark them. No
bearer, a bad one, or one of another tenant's user: the tenant's plugins are not asked."""

from __future__ import annotations

import pytest
from conftest import STAFF_PASSWORD, add_staff_and_a_rival

from bookwell.core.access import sessions
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import User
from bookwell.hooks import Manifest, Refusal, hookimpl


class Gate:
    """Refuses every POST of the tenants that enabled it, and signs their answers."""

    MANIFEST = Manifest("gate", "Gate", "Refuses POSTs.", "1.0", "Tests", "tests")
    asked: list[tuple[str, str]] = []

    @hookimpl
    def before_request(ctx):
        Gate.asked.append((ctx.tenant.slug, ctx.request.path))
        if ctx.request.method == "POST":
            return Refusal("No changes today.", code="gated", status=403)
        return None

    @hookimpl
    def response_headers(ctx):
        return {"X-Gate": ctx.tenant.slug}


@pytest.fixture
def gated(make_app, clock):
    """Salon (its owner signed in through the API) with the gate on; spa without."""
    from bookwell.core.testing import open_business

    app = make_app(EXTRA_PLUGINS=[Gate])
    business = open_business(app, clock())
    add_staff_and_a_rival(app, business, clock(), ("owner",))
    app.salon_owner = bearer(app, "owner@example.com", "salon")  # before the gate refuses POSTs
    app.spa_owner = bearer(app, "spa@example.com", "spa")
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "gate", {}, clock())
    Gate.asked.clear()
    return app


def bearer(app, email: str, slug: str) -> dict[str, str]:
    answer = app.test_client().post(
        f"/api/v1/tenants/{slug}/auth/login", json={"email": email, "password": STAFF_PASSWORD}
    )
    assert answer.status_code == 200, answer.json
    return {"Authorization": f"Bearer {answer.json['token']}"}


def test_a_tenants_bearer_makes_a_slugless_route_the_tenants(gated):
    headers = gated.salon_owner
    http = gated.test_client()
    listed = http.get("/api/v1/auth/sessions", headers=headers)
    assert listed.status_code == 200 and listed.headers["X-Gate"] == "salon"
    assert Gate.asked == [("salon", "/api/v1/auth/sessions")]
    refused = http.post("/api/v1/auth/logout", headers=headers)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "gated"
    assert refused.headers["X-Gate"] == "salon"
    # Refused before the view: the session was not ended.
    assert http.get("/api/v1/auth/sessions", headers=headers).status_code == 200


def test_an_api_key_counts_as_its_users_tenant(gated, clock):
    with gated.app_context(), db.write_transaction(gated) as writer:
        user = writer.query(User).filter_by(email="owner@example.com").one()
        _, secret = sessions.create_api_key(writer, user, clock())
    answer = gated.test_client().post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {secret}"}
    )
    assert answer.status_code == 403 and answer.json["error"]["code"] == "gated"


def test_another_tenants_bearer_no_bearer_or_a_bad_one_asks_nobody(gated):
    http = gated.test_client()
    spa = gated.spa_owner
    assert http.get("/api/v1/auth/sessions", headers=spa).headers.get("X-Gate") is None
    assert http.post("/api/v1/auth/logout", headers=spa).status_code == 200
    bad = http.get("/api/v1/auth/sessions", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401 and bad.json["error"]["code"] == "unauthorized"
    assert http.get("/api/v1/openapi.json").status_code == 200
    assert http.post("/api/v1/auth/logout").status_code == 401
    assert Gate.asked == []
