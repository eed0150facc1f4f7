"""Automatic logoff (45 CFR 164.312(a)(2)(iii)) for staff: the idle and the absolute timeout of
HIPAA mode, on the API and the pages, sessions started before it was switched on included;
clients keep the instance's limits."""

from __future__ import annotations

import hipaa_kit
import pytest
from hipaa_kit import fresh_token

from bookwell.core.testing import STAFF_PASSWORD, BearerClient, api_login, create_user

# The kit's fixtures: the app on HTTPS, HIPAA mode on with the owner enrolled.
app = hipaa_kit.app
hipaa = hipaa_kit.hipaa

CARLA = "carla@example.com"


def test_a_staff_session_ends_after_15_minutes_without_use(owner, hipaa, clock):
    clock.advance(minutes=14)
    assert owner.api.get("plugins").status_code == 200  # used: the idle time starts again
    clock.advance(minutes=14, seconds=59)
    assert owner.api.get("plugins").status_code == 200
    clock.advance(minutes=15)
    assert owner.api.get("plugins").status_code == 401
    page = owner.pages.get("/admin/salon/")
    assert page.status_code == 302 and "/admin/salon/login" in page.location


def test_a_shorter_idle_timeout_is_kept(owner, hipaa, enable_plugin, clock):
    enable_plugin("hipaa", idle_timeout_minutes=5)
    clock.advance(minutes=4)
    assert owner.api.get("plugins").status_code == 200
    clock.advance(minutes=5)
    assert owner.api.get("plugins").status_code == 401


def test_a_staff_session_ends_12_hours_after_its_login_however_busy(app, owner, hipaa, clock):
    token = fresh_token(app, owner, hipaa["owner_secret"], clock)
    api = BearerClient(app.test_client(), "salon", token)
    for _ in range(12 * 6 - 1):  # in use every 10 minutes, for 11 h 50 min
        clock.advance(minutes=10)
        assert api.get("plugins").status_code == 200
    clock.advance(minutes=10)
    assert api.get("plugins").status_code == 401


def test_a_session_longer_than_the_absolute_limit_ends_with_it(
    app, owner, hipaa, enable_plugin, clock
):
    enable_plugin("hipaa", absolute_timeout_hours=1)
    token = fresh_token(app, owner, hipaa["owner_secret"], clock)
    api = BearerClient(app.test_client(), "salon", token)
    for _ in range(5):
        clock.advance(minutes=10)
        assert api.get("plugins").status_code == 200
    clock.advance(minutes=11)
    assert api.get("plugins").status_code == 401


@pytest.fixture
def carla_token(app, tenant, clock, bookwell_cli) -> str:
    """Carla, a client with an account, logged in through the API."""
    assert bookwell_cli("tenants", "set", "salon", "--client-accounts").exit_code == 0
    with app.app_context():
        create_user(
            app,
            tenant_id=tenant.tenant_id,
            email=CARLA,
            role="client",
            password=STAFF_PASSWORD,
            now=clock(),
            name="Carla",
        )
    answer = api_login(app, CARLA)
    assert answer.status_code == 200, answer.json
    return answer.json["token"]


def test_clients_keep_the_instances_limits(app, carla_token, owner, hipaa, clock):
    me = BearerClient(app.test_client(), "salon", carla_token)
    clock.advance(minutes=25)  # past HIPAA's 15 minutes, within the instance's 30
    assert me.get("/api/v1/auth/sessions").status_code == 200
    clock.advance(minutes=31)
    assert me.get("/api/v1/auth/sessions").status_code == 401


def test_without_hipaa_mode_staff_keep_the_instances_30_minutes(owner, clock):
    clock.advance(minutes=25)
    assert owner.api.get("plugins").status_code == 200
