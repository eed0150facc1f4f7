"""Platform support in HIPAA mode: refused the business's data (403, audited) unless the owner
grants it access for 1 to 72 hours, with a reason, on the plugin's page, where the grant is
listed and can be revoked; it ends by itself when its time is up."""

from __future__ import annotations

import hipaa_kit
import pytest
from hipaa_kit import (
    add_support_user,
    enrol,
    pages_login,
)

import bookwell.plugins.hipaa.access as hipaa_access
from bookwell.core.testing import BearerClient, open_business

# The kit's fixtures: the app on HTTPS, HIPAA mode on with the owner enrolled.
app = hipaa_kit.app
hipaa = hipaa_kit.hipaa

PAGE = "/admin/salon/hipaa/support-access"
DAY = {"from": "2027-03-02", "to": "2027-03-02"}
REASON = "Ticket 4711: the calendar shows a booking twice"


@pytest.fixture
def support(app, clock, bookwell_cli) -> BearerClient:
    """Platform support's API, with an API key of a support account."""
    return BearerClient(app.test_client(), "salon", add_support_user(app, clock, bookwell_cli))


@pytest.fixture
def booked(client) -> dict:
    return client.book("2027-03-02T10:00:00+01:00")


def refused(answer) -> bool:
    return (
        answer.status_code == 403 and answer.json["error"]["code"] == "support_access_not_granted"
    )


def reads(support) -> bool:
    answer = support.get("bookings", query_string=DAY)
    return answer.status_code == 200 and len(answer.json) == 1


def grant(owner, hours="2", reason=REASON):
    return owner.submit(PAGE, {"hours": hours, "reason": reason})


def support_trail(audit_trail) -> list[str]:
    return [entry.action for entry in audit_trail() if entry.action.startswith("support.")]


def grant_ids(audit_trail) -> list[int]:
    return [int(e.subject.removeprefix("grant:")) for e in audit_trail(action="access.granted")]


def test_support_reads_a_business_that_is_not_in_hipaa_mode(support, booked):
    assert reads(support)


def test_support_is_refused_and_the_refusal_audited(support, booked, owner, hipaa, audit_trail):
    answer = support.get("bookings", query_string=DAY)
    assert refused(answer)
    assert answer.json["error"]["refusals"][0]["plugin"] == "hipaa"
    assert support.get(f"bookings/{booked['reference']}").status_code == 403
    assert support_trail(audit_trail) == ["support.access_refused"] * 2
    # The business's own staff read on.
    assert owner.api.get("bookings", query_string=DAY).status_code == 200


def test_the_owner_lets_support_in_until_the_grant_runs_out(
    app, support, booked, owner, hipaa, audit_trail, clock
):
    done = grant(owner, hours="2")
    assert done.status_code == 303 and done.location.endswith(f"{PAGE}?done=granted")
    listed = owner.pages.get(PAGE)
    assert REASON in listed.text and 'class="live-grant"' in listed.text

    assert reads(support)
    (granted,) = audit_trail(action="access.granted")
    assert granted.details["grantee"] == "role:support"
    assert granted.details["plugin"] == "hipaa"
    assert granted.details["reason"] == REASON
    assert granted.actor == f"user:{owner.user_id}"

    clock.advance(hours=1, minutes=59)
    assert reads(support)
    clock.advance(minutes=1)
    assert refused(support.get("bookings", query_string=DAY))
    assert support_trail(audit_trail) == [
        "support.access",
        "support.access",
        "support.access_refused",
    ]
    # The owner (whose session went idle meanwhile) finds it among the past grants.
    pages_login(app, owner, hipaa["owner_secret"], clock)
    page = owner.pages.get(PAGE)
    assert 'id="no-live-grant"' in page.text
    assert 'class="past-grant"' in page.text and "(expired)" in page.text


def test_the_owner_revokes_support_access(support, booked, owner, hipaa, audit_trail):
    grant(owner, hours="72")
    assert reads(support)
    (grant_id,) = grant_ids(audit_trail)
    revoked = owner.submit(f"{PAGE}/{grant_id}/revoke", form_on=PAGE)
    assert revoked.status_code == 303 and revoked.location.endswith("?done=revoked")
    assert refused(support.get("bookings", query_string=DAY))
    (entry,) = audit_trail(action="access.revoked")
    assert entry.actor == f"user:{owner.user_id}"
    assert "(revoked)" in owner.pages.get(PAGE).text
    # Revoked twice, or a grant that is not support's: nothing to revoke.
    assert owner.submit(f"{PAGE}/{grant_id}/revoke", form_on=PAGE).status_code == 404
    assert owner.submit(f"{PAGE}/999999/revoke", form_on=PAGE).status_code == 404


@pytest.mark.parametrize(
    ("hours", "reason", "field"),
    [
        ("0", REASON, "hours"),
        ("73", REASON, "hours"),
        ("two", REASON, "hours"),
        ("9" * 400, REASON, "hours"),  # NumberRange alone fails on it (a float): a 500
        ("", REASON, "hours"),
        ("2", "", "reason"),
        ("2", "short", "reason"),
        ("2", "A reason with a \x1b control character", "reason"),
        ("2", "x" * 1001, "reason"),
    ],
)
def test_a_bad_grant_is_refused_field_by_field_and_grants_nothing(
    support, booked, owner, hipaa, audit_trail, hours, reason, field
):
    answer = grant(owner, hours=hours, reason=reason)
    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.text
    assert audit_trail(action="access.granted") == []
    assert refused(support.get("bookings", query_string=DAY))


def test_only_the_owner_grants_support_access(manager, owner, hipaa, clock):
    enrol(manager, clock)
    assert manager.pages.get(PAGE).status_code == 403
    assert manager.pages.post(PAGE, data={"hours": "2", "reason": REASON}).status_code in (400, 403)


def test_a_grant_at_one_business_opens_nothing_at_another(
    app, support, booked, owner, hipaa, enable_plugin, clock, make_client
):
    spa = open_business(app, clock(), slug="spa", name="Spa")
    enable_plugin("hipaa", business=spa)
    make_client("Ann", business=spa).book("2027-03-02T10:00:00+01:00")
    grant(owner)
    assert reads(support)
    at_spa = BearerClient(app.test_client(), "spa", support.token)
    assert refused(at_spa.get("bookings", query_string=DAY))


def test_a_crash_of_the_check_refuses_support(support, booked, owner, hipaa, monkeypatch):
    grant(owner)

    def crash(ctx):
        raise RuntimeError("the grants could not be read")

    monkeypatch.setattr(hipaa_access, "support_let_in", crash)
    answer = support.get("bookings", query_string=DAY)
    assert answer.status_code == 503
    assert answer.json["error"]["code"] == "plugin_failed"
    # Staff are no concern of the check: the owner reads on.
    assert owner.api.get("bookings", query_string=DAY).status_code == 200
