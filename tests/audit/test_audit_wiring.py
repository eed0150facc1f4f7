"""What core writes to the audit trail: bookings, refusals and plugin changes, never tokens."""

from __future__ import annotations

import json

from conftest import booking_body
from sqlalchemy import select

from bookwell.core import audit
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry
from bookwell.hooks import Manifest, Refusal, hookimpl

BOOKINGS = "/api/v1/tenants/salon/bookings"


class NoMondays:
    MANIFEST = Manifest("no-mondays", "No Mondays", "Refuse Mondays.", "1", "test", "tests")

    @hookimpl
    def before_reschedule(ctx, new_start):
        if new_start.weekday() == 0:
            return Refusal("Not on Mondays.", code="monday")


def entries(app, tenant_id):
    with db.engine_of(app).connect() as connection:
        return connection.execute(
            select(AuditEntry.action, AuditEntry.subject, AuditEntry.actor, AuditEntry.details)
            .where(AuditEntry.tenant_id == tenant_id)
            .order_by(AuditEntry.sequence)
        ).all()


def test_the_booking_lifecycle_and_plugin_changes_are_audited(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[NoMondays])
    client = app.test_client()
    created = client.post(BOOKINGS, json=booking_body(business, "2027-03-02T10:00:00+01:00")).json
    url = f"{BOOKINGS}/{created['reference']}"
    token = created["manage_token"]
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "no-mondays", {}, clock(), actor="user:7")
    refused = client.post(
        f"{url}/reschedule", json={"token": token, "start": "2027-03-08T10:00:00+01:00"}
    )
    assert refused.status_code == 403
    moved = client.post(
        f"{url}/reschedule", json={"token": token, "start": "2027-03-03T10:00:00+01:00"}
    )
    assert moved.status_code == 200
    assert client.post(f"{url}/cancel", json={"token": token}).status_code == 200

    trail = entries(app, business.tenant_id)
    assert [entry.action for entry in trail] == [
        "booking.created",
        "plugin.enabled",
        "booking.refused",
        "booking.rescheduled",
        "booking.cancelled",
    ]
    subject = f"booking:{created['reference']}"
    assert {entry.subject for entry in trail if entry.action.startswith("booking")} == {subject}
    assert trail[0].actor.startswith("client:person:")  # the client, by pseudonym
    with db.write_transaction(app) as session:
        shown = audit.listing(session, business.tenant_id)
    assert shown[0].actor_email == "ann@example.com"
    assert all("ann@example.com" not in str(entry) for entry in trail)
    assert trail[1].actor == "user:7"
    assert json.loads(trail[2].details)["refusals"] == [
        {"plugin": "no-mondays", "refusal": "monday"}
    ]
    assert all(token not in entry.details for entry in trail)
    with app.app_context():
        assert audit.verify(db.session(), business.tenant_id).ok
