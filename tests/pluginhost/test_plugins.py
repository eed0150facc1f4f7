"""The plugin runner: allow, refuse, several refusals, crash, hang, per-tenant, broken, settings."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from conftest import booking_body
from sqlalchemy import func, select

from bookwell.core.booking.tenants import create_tenant
from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, BookingConsent
from bookwell.hooks import Consent, Manifest, Redirect, Refusal, Setting, hookimpl

BOOKINGS = "/api/v1/tenants/salon/bookings"
SLOT = "2027-03-02T10:00:00+01:00"  # a Tuesday
released = threading.Event()


def manifest(name: str, *settings: Setting) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests", settings)


class Allow:
    MANIFEST = manifest("allow")
    seen: list = []

    @hookimpl
    def before_confirm(ctx, settings):
        Allow.seen.append((ctx.tenant.slug, ctx.booking.client_email, ctx.request.path))


class NoTuesdays:
    MANIFEST = manifest("no-tuesdays", Setting("message", "str", "Closed on Tuesdays.", "Message"))

    @hookimpl
    def before_confirm(ctx, settings):
        if ctx.booking.start.weekday() == 1:
            return Refusal(settings["message"], code="closed", field="start")


class Deposit:
    MANIFEST = manifest("deposit", Setting("max_cents", "int", 5000, "Maximum", min=0, max=10**6))

    @hookimpl
    def before_confirm(ctx, settings):
        if ctx.booking.service.price_cents > settings["max_cents"]:
            return Refusal("A deposit is needed.", code="deposit_needed", status=402)


class Crash:
    MANIFEST = manifest("crash")

    @hookimpl
    def before_confirm(ctx):
        raise RuntimeError("bug in a plugin")

    @hookimpl
    def after_confirm(ctx):
        raise RuntimeError("bug in an event")


class Hang:
    MANIFEST = manifest("hang")

    @hookimpl
    def before_confirm(ctx):
        released.wait(10)


class Terms:
    MANIFEST = manifest("terms")

    @hookimpl
    def booking_requirements(ctx, settings):
        return [Consent("terms", "I accept the terms", "The terms, version 3.", "3", "/terms")]


class Events:
    MANIFEST = manifest("events")
    heard: list = []

    @hookimpl
    def after_confirm(ctx):
        Events.heard.append(("confirm", ctx.booking.reference))

    @hookimpl
    def after_cancel(ctx):
        Events.heard.append(("cancel", ctx.booking.reference))


class Misspelled:
    MANIFEST = manifest("misspelled")

    @hookimpl
    def before_confrim(ctx):
        return None


class NoManifest:
    @hookimpl
    def before_confirm(ctx):
        return None


ALL = [Allow, NoTuesdays, Deposit, Crash, Hang, Terms, Events, Misspelled, NoManifest]


@pytest.fixture
def plugin_app(make_app):
    released.clear()
    app = make_app(EXTRA_PLUGINS=ALL, GUARD_TIMEOUT_SECONDS=0.3)
    yield app
    released.set()


@pytest.fixture
def enable(plugin_app, business, clock):
    def switch_on(name, tenant_id=None, **settings):
        with plugin_app.app_context():
            plugin_changes.enable(
                plugin_app, tenant_id or business.tenant_id, name, settings, clock()
            )

    return switch_on


def count_bookings(app):
    with db.engine_of(app).connect() as connection:
        return connection.scalar(select(func.count()).select_from(Booking))


def book(app, business, start=SLOT, **extra):
    return app.test_client().post(BOOKINGS, json=booking_body(business, start, **extra))


def test_a_plugin_that_allows_lets_the_booking_through(plugin_app, business, enable):
    enable("allow")
    Allow.seen.clear()
    assert book(plugin_app, business).status_code == 201
    assert Allow.seen == [("salon", "ann@example.com", BOOKINGS)]


def test_a_refusal_stops_the_booking_and_stores_nothing(plugin_app, business, enable):
    enable("no-tuesdays")
    response = book(plugin_app, business)
    assert response.status_code == 403
    error = response.json["error"]
    assert error["code"] == "closed"
    assert error["refusals"] == [
        {
            "plugin": "no-tuesdays",
            "code": "closed",
            "message": "Closed on Tuesdays.",
            "field": "start",
        }
    ]
    assert count_bookings(plugin_app) == 0
    assert book(plugin_app, business, "2027-03-03T10:00:00+01:00").status_code == 201


def test_every_refusal_is_reported_and_the_first_sets_the_status(plugin_app, business, enable):
    enable("no-tuesdays", message="Not today.")
    enable("deposit", max_cents=100)
    response = book(plugin_app, business)
    codes = [refusal["code"] for refusal in response.json["error"]["refusals"]]
    assert sorted(codes) == ["closed", "deposit_needed"]
    first = response.json["error"]["refusals"][0]
    assert response.json["error"]["code"] == first["code"]
    assert response.status_code == {"closed": 403, "deposit_needed": 402}[first["code"]]


def test_a_crashing_guard_fails_closed(plugin_app, business, enable, caplog):
    enable("crash")
    response = book(plugin_app, business)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "plugin_failed"
    assert "bug in a plugin" not in response.get_data(as_text=True)
    assert count_bookings(plugin_app) == 0
    assert any("crash" in record.getMessage() for record in caplog.records)


def test_a_hanging_guard_fails_closed_after_its_time_limit(plugin_app, business, enable):
    enable("hang")
    response = book(plugin_app, business)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "plugin_failed"
    assert count_bookings(plugin_app) == 0


def test_a_failing_event_is_isolated_and_the_booking_stands(plugin_app, business, enable):
    # Crash's guard would refuse, so only its event runs here: register its event alone.
    enable("events")
    Events.heard.clear()
    created = book(plugin_app, business)
    assert created.status_code == 201
    assert Events.heard == [("confirm", created.json["reference"])]
    cancel = plugin_app.test_client().post(
        f"{BOOKINGS}/{created.json['reference']}/cancel",
        json={"token": created.json["manage_token"]},
    )
    assert cancel.status_code == 200
    assert Events.heard[-1] == ("cancel", created.json["reference"])


def test_a_plugin_acts_only_for_the_tenant_that_enabled_it(plugin_app, business, enable, clock):
    with db.write_transaction(plugin_app) as session:
        other = create_tenant(session, "other", name="Other", timezone="UTC", now=clock())
        other_id = other.id
    enable("no-tuesdays", tenant_id=other_id)
    assert book(plugin_app, business).status_code == 201


def test_consents_are_required_listed_and_stored_with_proof(plugin_app, business, enable):
    enable("terms")
    client = plugin_app.test_client()
    listed = client.get("/api/v1/tenants/salon/booking-requirements").json
    assert listed == {"consents": [{"id": "terms", "label": "I accept the terms", "url": "/terms"}]}
    missing = book(plugin_app, business)
    assert missing.status_code == 422
    assert "consents" in missing.json["error"]["fields"]
    given = book(plugin_app, business, consents=["terms"])
    assert given.status_code == 201
    with db.engine_of(plugin_app).connect() as connection:
        proof = connection.execute(select(BookingConsent)).one()
    assert (proof.consent_id, proof.version, proof.plugin_name) == ("terms", "3", "terms")
    import hashlib

    assert proof.text_sha256 == hashlib.sha256(b"The terms, version 3.").hexdigest()


def test_broken_plugins_are_listed_with_their_reason_and_the_rest_runs(plugin_app):
    installed = host_of(plugin_app).installed
    assert installed["misspelled"].status == "broken"
    assert "before_confrim" in installed["misspelled"].error
    broken = [plugin for plugin in installed.values() if "MANIFEST" in (plugin.error or "")]
    assert len(broken) == 1
    assert installed["allow"].status == "ok"


def test_settings_are_validated_against_the_manifest(plugin_app, business, enable):
    from bookwell.core.pluginhost.settings import InvalidSettings

    with pytest.raises(InvalidSettings) as refused:
        enable("deposit", max_cents=-1)
    assert "at least 0" in refused.value.fields["max_cents"]
    with pytest.raises(InvalidSettings) as refused:
        enable("deposit", max_cents="10", colour="red")
    assert set(refused.value.fields) == {"max_cents", "colour"}


def test_a_change_in_another_process_reaches_the_cache(plugin_app, business, enable, make_app):
    second_process = make_app(EXTRA_PLUGINS=ALL)
    assert book(second_process, business).status_code == 201  # caches "nothing enabled"
    enable("no-tuesdays")  # through the first app
    assert book(second_process, business, "2027-03-09T10:00:00+01:00").status_code == 403


def test_a_third_party_package_loads_through_its_entry_point(app):
    plugin = host_of(app).installed.get("closed_days")
    assert plugin is not None, "pip install ./tests/packages/bookwell-closed-days first"
    assert plugin.source == "bookwell-closed-days"
    assert plugin.status == "ok"


def test_the_cli_lists_enables_and_disables(app, business, tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(*args):
        return CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), *args])

    listed = json.loads(run("plugins", "list", "--tenant", "salon", "--json").output)
    closed = next(entry for entry in listed if entry["name"] == "closed_days")
    assert closed["enabled"] is False and closed["settings"] == {"weekdays": ["sunday"]}
    assert set(closed) >= {
        "name",
        "title",
        "description",
        "category",
        "version",
        "source",
        "status",
    }
    enabled = run(
        "plugins",
        "enable",
        "closed_days",
        "--tenant",
        "salon",
        "--set",
        "weekdays=tuesday, wednesday",
    )
    assert enabled.exit_code == 0, enabled.output
    assert book(app, business).json["error"]["code"] == "closed_day"
    bad = run("plugins", "enable", "closed_days", "--tenant", "salon", "--set", "nope=1")
    assert bad.exit_code != 0 and "no setting" in bad.output
    assert run("plugins", "disable", "closed_days", "--tenant", "salon").exit_code == 0
    assert book(app, business).status_code == 201


def test_an_instance_can_block_a_plugin(make_app, monkeypatch):
    monkeypatch.setenv("BOOKWELL_DISABLED_PLUGINS", "closed_days")
    app = make_app()
    assert "closed_days" not in host_of(app).installed
    assert host_of(app).pm.is_blocked("closed_days")


def test_a_plugin_that_cannot_import_is_listed_as_broken_and_the_platform_starts(client):
    plugin = host_of(client.application).installed.get("broken_import")
    assert plugin is not None, "pip install ./tests/packages/bookwell-broken-import first"
    assert plugin.status == "broken"
    assert "bookwell_dependency_that_is_not_installed" in plugin.error
    assert client.get("/healthz").status_code == 200


class HttpsOnly:
    MANIFEST = manifest("https-only")

    @hookimpl
    def before_request(ctx):
        if ctx.request.scheme != "https":
            return Redirect("https://" + ctx.request.host + ctx.request.path)

    @hookimpl
    def response_headers(ctx):
        return {"Strict-Transport-Security": "max-age=63072000"}


class Maintenance:
    MANIFEST = manifest("maintenance")

    @hookimpl
    def before_request(ctx):
        return Refusal("Closed for maintenance.", code="maintenance", status=503)


class Nightly:
    MANIFEST = manifest("nightly")
    runs: list = []

    @hookimpl
    def on_schedule(ctx):
        Nightly.runs.append((ctx.tenant.slug, ctx.now, ctx.dry_run))


@pytest.fixture
def request_app(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[HttpsOnly, Maintenance, Nightly])

    def switch_on(name):
        with app.app_context():
            plugin_changes.enable(app, business.tenant_id, name, {}, clock())

    app.switch_on = switch_on
    return app


def test_before_request_may_redirect_and_headers_are_added(request_app):
    client = request_app.test_client()
    assert client.get("/api/v1/tenants/salon/services").status_code == 200
    request_app.switch_on("https-only")
    plain = client.get("/api/v1/tenants/salon/services")
    assert plain.status_code == 308
    assert plain.headers["Location"] == "https://localhost/api/v1/tenants/salon/services"
    secure = client.get("/api/v1/tenants/salon/services", base_url="https://localhost")
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == "max-age=63072000"
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


def test_before_request_may_refuse_before_any_view_runs(request_app, business):
    request_app.switch_on("maintenance")
    response = request_app.test_client().post(BOOKINGS, json=booking_body(business, SLOT))
    assert response.status_code == 503
    assert response.json["error"]["code"] == "maintenance"
    assert count_bookings(request_app) == 0


def test_tick_runs_on_schedule_for_tenants_that_enabled_it(
    request_app, business, tmp_path, database_url, monkeypatch
):
    request_app.switch_on("nightly")
    Nightly.runs.clear()
    from bookwell.core.scheduling.schedule import tick

    when = datetime(2027, 3, 2, 3, 0, tzinfo=UTC)
    with request_app.app_context():
        reports = tick(request_app, when, dry_run=True)
    assert Nightly.runs == [("salon", when, True)]
    assert [(report.tenant, report.plugins) for report in reports] == [("salon", ("nightly",))]


def test_tick_refuses_a_future_now_unless_asked(app, business, tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(*args):
        return CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), *args])

    future = "2999-01-01T00:00:00+00:00"
    refused = run("tick", "--now", future)
    assert refused.exit_code != 0 and "future" in refused.output
    assert run("tick", "--now", future, "--dry-run").exit_code == 0
    assert run("tick", "--now", future, "--allow-future").exit_code == 0
    assert run("tick", "--now", "yesterday").exit_code != 0
    ran = run("tick", "--tenant", "salon")
    assert ran.exit_code == 0 and "salon" in ran.output


def test_an_enabled_plugin_that_later_broke_fails_closed(app, business, clock):
    """A tenant enabled a plugin whose package then broke (say, a bad upgrade): its guards
    cannot be asked, so what they guard is refused rather than let through."""
    from sqlalchemy import update

    from bookwell.core.storage.models import Tenant, TenantPlugin

    with db.write_transaction(app) as session:
        session.add(
            TenantPlugin(
                tenant_id=business.tenant_id,
                plugin_name="broken_import",
                enabled=True,
                settings="{}",
                updated_at=clock(),
            )
        )
        session.execute(update(Tenant).values(plugins_version=Tenant.plugins_version + 1))
    response = book(app, business)
    assert response.status_code == 503
    assert response.json["error"]["refusals"][0]["plugin"] == "broken_import"
    assert count_bookings(app) == 0


class GiftCards:
    MANIFEST = manifest("gift-cards")

    @hookimpl
    def routes():
        from flask import Blueprint

        pages = Blueprint("gift_cards", __name__)

        @pages.get("/book/<slug>/gift-cards")
        def gift_cards(slug):
            return {"tenant": slug, "cards": []}

        @pages.get("/gift-cards-everywhere")
        def nameless():
            return {"leak": True}

        return pages


def test_a_plugins_pages_answer_only_for_tenants_that_enabled_it(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[GiftCards])
    client = app.test_client()
    assert client.get("/book/salon/gift-cards").status_code == 404
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "gift-cards", {}, clock())
    assert client.get("/book/salon/gift-cards").json == {"tenant": "salon", "cards": []}
    assert client.get("/book/nobody/gift-cards").status_code == 404
    assert client.get("/gift-cards-everywhere").status_code == 404
