"""Each consent given keeps its proof: the version and SHA-256 of the text, when, and the address
and user agent it came from; staff read it on the API, plugins through ``ctx.data.consents``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from conftest import booking_body
from sqlalchemy import select

from bookwell.core.booking import lifecycle
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import BookingConsent
from bookwell.hooks import Consent, GivenConsent, Manifest, hookimpl

RULES_TEXT = "No dogs. Arrive five minutes early."
SLOT = "2027-03-02T10:00:00+01:00"


class HouseRules:
    MANIFEST = Manifest("house_rules", "House rules", "Asks for the rules.", "1", "test", "t")

    @hookimpl
    def booking_requirements(ctx, settings):
        return [Consent("house_rules", "I accept the house rules", RULES_TEXT, "7", "/rules/7")]


@pytest.fixture
def app(make_app):
    """The test kit's app, with the house rules plugin: ``tenant`` is "salon" on it."""
    return make_app(EXTRA_PLUGINS=[HouseRules])


@pytest.fixture
def rules_app(app, tenant, second_business, clock):
    with app.app_context():
        for business in (tenant, second_business):
            plugin_changes.enable(app, business.tenant_id, "house_rules", {}, clock())
    return app, tenant, second_business


def book(app, business, start=SLOT, *, name="Ann", user_agent="Firefox/130", ip="203.0.113.9"):
    answer = app.test_client().post(
        f"/api/v1/tenants/{business.slug}/bookings",
        json=booking_body(business, start, name=name, consents=["house_rules"]),
        headers={"User-Agent": user_agent},
        environ_base={"REMOTE_ADDR": ip},
    )
    assert answer.status_code == 201, answer.json
    return answer.json


def stored_consents(app):
    with db.fresh_session(app) as session:
        return list(session.scalars(select(BookingConsent).order_by(BookingConsent.id)))


def test_a_consent_keeps_the_address_and_user_agent_it_came_from(rules_app):
    app, salon, _ = rules_app
    book(app, salon, ip="2001:db8::1", user_agent="Mozilla/5.0 (X11; Linux) Firefox/130")
    (proof,) = stored_consents(app)
    assert (proof.ip, proof.user_agent) == ("2001:db8::1", "Mozilla/5.0 (X11; Linux) Firefox/130")
    assert proof.text_sha256 == hashlib.sha256(RULES_TEXT.encode()).hexdigest()


def test_a_long_user_agent_is_cut_to_300_characters(rules_app):
    app, salon, _ = rules_app
    book(app, salon, user_agent="A" * 299 + "BCDEFGH" * 100)
    (proof,) = stored_consents(app)
    assert proof.user_agent == "A" * 299 + "B"


def test_a_consent_given_outside_a_request_has_no_address(rules_app, clock):
    app, salon, _ = rules_app
    with app.app_context():
        lifecycle.create_booking(
            app,
            tenant_id=salon.tenant_id,
            service_id=salon.service_id,
            provider_id=salon.provider_id,
            start=datetime.fromisoformat(SLOT),
            client=lifecycle.ClientDetails("Ann", "ann@example.com"),
            now=clock(),
            consents=("house_rules",),
        )
    (proof,) = stored_consents(app)
    assert (proof.ip, proof.user_agent) == (None, None)


def test_the_staff_api_shows_each_consents_proof(rules_app, staff_login):
    app, salon, _ = rules_app
    booking = book(app, salon)
    owner = staff_login("owner", business=salon)
    shown = owner.api.get(f"bookings/{booking['reference']}").json
    listed = owner.api.get("bookings?from=2027-03-02&to=2027-03-02").json
    expected = [
        {
            "id": "house_rules",
            "version": "7",
            "text_sha256": hashlib.sha256(RULES_TEXT.encode()).hexdigest(),
            "given_at": "2027-03-01T08:00:00+00:00",
            "ip": "203.0.113.9",
            "user_agent": "Firefox/130",
        }
    ]
    assert shown["consents"] == expected and listed[0]["consents"] == expected


def test_plugins_read_the_proof_of_their_businesss_consents(rules_app, clock, plugin_context_for):
    app, salon, spa = rules_app
    first = book(app, salon)
    book(app, spa, name="Spa")
    clock.advance(hours=1)
    second = book(app, salon, "2027-03-02T11:00:00+01:00", name="Bob", ip="198.51.100.2")
    given_at = clock()
    with plugin_context_for("house_rules", business=salon) as ctx:
        every = ctx.data.consents(
            given_from=given_at - timedelta(days=1), given_before=given_at + timedelta(seconds=1)
        )
        later = ctx.data.consents(given_from=given_at, given_before=given_at + timedelta(days=1))
        others = ctx.data.consents(
            given_from=given_at - timedelta(days=1),
            given_before=given_at + timedelta(days=1),
            consent_id="terms",
        )
        with pytest.raises(ValueError):
            ctx.data.consents(given_from=datetime(2027, 3, 1), given_before=given_at)
    assert [item.booking_reference for item in every] == [first["reference"], second["reference"]]
    assert later == [
        GivenConsent(
            booking_reference=second["reference"],
            client_name="Bob",
            client_email="bob@example.com",
            id="house_rules",
            plugin="house_rules",
            version="7",
            text_sha256=hashlib.sha256(RULES_TEXT.encode()).hexdigest(),
            given_at=given_at.astimezone(UTC),
            ip="198.51.100.2",
            user_agent="Firefox/130",
        )
    ]
    assert others == []
