"""Refusals, complete: the API's ``error.details`` (the first refusal's, JSON-safe), ``fields``
from each refusal's ``field``, every ``refusals[i].details``; ``plugin_failed`` as 503 with
``Retry-After``; the ``after_refusal`` event every enabled plugin hears; and ``ctx.audit``
entries in the tenant's hash chain."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from enum import Enum

import pytest
from conftest import booking_body
from sqlalchemy import func, select

from bookwell.core import audit
from bookwell.core.access import users
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost.host import Refused, host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, Booking
from bookwell.hooks import Manifest, Refusal, hookimpl

BOOKINGS = "/api/v1/tenants/salon/bookings"
SLOT = "2027-03-02T10:00:00+01:00"


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


class Colour(Enum):
    RED = "red"


class FullDay:
    """Refuses with details a client can act on: instants (aware and naive), a set, an enum."""

    MANIFEST = manifest("full-day")

    @hookimpl
    def before_confirm(ctx):
        return Refusal(
            "That day is full.",
            code="day_full",
            status=409,
            field="start",
            details={
                "next_free": datetime(2027, 3, 3, 10, 0, tzinfo=timezone(timedelta(hours=1))),
                "checked_at": datetime(2027, 3, 1, 8, 0),  # naive: taken as UTC
                "providers": ("Ana", "Ben"),
                "colour": Colour.RED,
                "ratio": float("nan"),
            },
        )


class NeedsPhone:
    MANIFEST = manifest("needs-phone")

    @hookimpl
    def before_confirm(ctx):
        return Refusal(
            "A phone number is needed.",
            code="phone_needed",
            status=422,
            field="client.phone",
            details={"example": "+33 1 23 45 67 89"},
        )


class SameField:
    MANIFEST = manifest("same-field")

    @hookimpl
    def before_confirm(ctx):
        return Refusal("Not that time either.", code="not_then", field="start")


class Crash:
    MANIFEST = manifest("crash")

    @hookimpl
    def before_confirm(ctx):
        raise RuntimeError("bug in a booking guard")


class Listener:
    """Hears every refusal; audits it into the tenant's chain with ctx.audit."""

    MANIFEST = manifest("listener")
    heard: list = []
    lock = threading.Lock()

    @hookimpl
    def after_refusal(ctx, hook, code, plugin):
        with Listener.lock:
            Listener.heard.append((hook, code, plugin, ctx.tenant.slug if ctx.tenant else None))
        ctx.audit("refusal_seen", f"plugin:{plugin}", {"hook": hook, "refusal": code})


class BrokenListener:
    MANIFEST = manifest("broken-listener")

    @hookimpl
    def after_refusal(ctx, hook, code, plugin):
        raise RuntimeError("bug in a listener")


class Echo:
    """A listener whose own work runs a guard that refuses again (as a listener calling into
    something guarded might): that refusal must not be announced in turn, or it never ends."""

    MANIFEST = manifest("echo")
    echoes: list = []

    @hookimpl
    def after_refusal(ctx, hook, code):
        host = host_of()
        try:
            host.guard(hook, ctx, {"full-day": {}, "echo": {}, "listener": {}})
        except Refused as refused:
            Echo.echoes.append(refused.first.code)


class LoginNo:
    MANIFEST = manifest("login-no")

    @hookimpl
    def before_login(ctx):
        return Refusal("No logins today.", code="no_logins", details={"until": ctx.now})


PLUGINS = [FullDay, NeedsPhone, SameField, Crash, Listener, BrokenListener, Echo, LoginNo]


@pytest.fixture(autouse=True)
def fresh_listener():
    Listener.heard.clear()
    Echo.echoes.clear()


@pytest.fixture
def app(make_app):
    return make_app(EXTRA_PLUGINS=PLUGINS)


@pytest.fixture
def enable(app, business, clock):
    def switch_on(*names):
        with app.app_context():
            for name in names:
                plugin_changes.enable(app, business.tenant_id, name, {}, clock())

    return switch_on


def book(app, business):
    return app.test_client().post(BOOKINGS, json=booking_body(business, SLOT))


def count_bookings(app) -> int:
    with db.engine_of(app).connect() as connection:
        return connection.scalar(select(func.count()).select_from(Booking))


def test_error_details_are_the_first_refusals_and_json_safe(app, business, enable):
    enable("full-day")
    response = book(app, business)
    assert response.status_code == 409
    error = response.json["error"]
    assert error["code"] == "day_full"
    assert error["details"] == {
        "next_free": "2027-03-03T09:00:00+00:00",
        "checked_at": "2027-03-01T08:00:00+00:00",
        "providers": ["Ana", "Ben"],
        "colour": "red",
        "ratio": None,
    }
    assert error["fields"] == {"start": "That day is full."}
    assert error["refusals"][0]["details"] == error["details"]
    assert count_bookings(app) == 0


def test_each_refusal_carries_its_own_details_and_fields_name_every_input(app, business, enable):
    enable("full-day", "needs-phone", "same-field")
    error = book(app, business).json["error"]
    by_code = {refusal["code"]: refusal for refusal in error["refusals"]}
    assert set(by_code) == {"day_full", "phone_needed", "not_then"}
    assert by_code["phone_needed"]["details"] == {"example": "+33 1 23 45 67 89"}
    assert "details" not in by_code["not_then"]  # none given, none shown
    assert set(error["fields"]) == {"start", "client.phone"}
    assert error["fields"]["client.phone"] == "A phone number is needed."
    # The first refusal to name a field wins it; every refusal is still listed.
    first_on_start = next(r for r in error["refusals"] if r["field"] == "start")
    assert error["fields"]["start"] == first_on_start["message"]
    # The top-level details are the first refusal's (absent when it gave none).
    assert error.get("details") == error["refusals"][0].get("details")


def test_plugin_failed_is_503_with_retry_after(app, business, enable):
    enable("crash")
    response = book(app, business)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.json["error"]["code"] == "plugin_failed"
    assert "bug in" not in response.get_data(as_text=True)
    assert count_bookings(app) == 0


def test_every_enabled_plugin_hears_of_each_refusal(app, business, enable):
    enable("full-day", "needs-phone", "listener")
    assert book(app, business).status_code in (409, 422)  # the first refusal's
    assert sorted(Listener.heard) == [
        ("before_confirm", "day_full", "full-day", "salon"),
        ("before_confirm", "phone_needed", "needs-phone", "salon"),
    ]


def test_after_refusal_hears_plugin_failed_and_login_refusals(app, business, enable, clock):
    with app.app_context():
        users.create_user(
            app,
            tenant_id=business.tenant_id,
            email="owner@example.com",
            role="owner",
            password="correct horse battery",
            now=clock(),
        )
    enable("crash", "login-no", "listener")
    book(app, business)
    login = app.test_client().post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "owner@example.com", "password": "correct horse battery"},
    )
    assert login.status_code == 401
    assert login.json["error"]["details"] == {"until": "2027-03-01T08:00:00+00:00"}
    assert sorted(Listener.heard) == [
        ("before_confirm", "plugin_failed", "crash", "salon"),
        ("before_login", "no_logins", "login-no", "salon"),
    ]


def test_a_failing_listener_changes_nothing_but_the_log(app, business, enable, caplog):
    enable("full-day", "broken-listener", "listener")
    response = book(app, business)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "day_full"
    assert Listener.heard == [("before_confirm", "day_full", "full-day", "salon")]
    assert "broken-listener" in caplog.text


def test_a_refusal_inside_a_listener_is_not_announced_again(app, business, enable):
    enable("full-day", "echo", "listener")
    assert book(app, business).status_code == 409
    assert Echo.echoes == ["day_full"]  # the listener's own guard call refused, once
    assert Listener.heard == [("before_confirm", "day_full", "full-day", "salon")]


def test_ctx_audit_appends_to_the_tenants_chain_which_still_verifies(app, business, enable):
    enable("full-day", "listener")
    book(app, business)
    book(app, business)
    with db.fresh_session(app) as session:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "plugin.listener.refusal_seen")
            .order_by(AuditEntry.sequence)
        ).all()
        assert len(entries) == 2
        assert {entry.tenant_id for entry in entries} == {business.tenant_id}
        assert json.loads(entries[0].details) == {"hook": "before_confirm", "refusal": "day_full"}
        assert entries[0].subject == "plugin:full-day"
        result = audit.verify(session, business.tenant_id)
        assert result.ok, result.reason
        # Core's own entries of the same refusals share the chain with the plugin's.
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.tenant_id == business.tenant_id)
            .order_by(AuditEntry.sequence)
        ).all()
    assert actions.count("booking.refused") == 2
    assert result.checked == len(actions)
