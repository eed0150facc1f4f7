"""What policy plugins see: the outcome staff give a visit (``after_outcome``), the cancelling
staff member's reason (``before_cancel``/``after_cancel``), how often a booking was moved
(``BookingInfo.reschedule_count``), and how to reach the business and in which language
(``TenantInfo``), from every door that changes them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import (
    STAFF_PASSWORD,
    add_staff_and_a_rival,
    booking_body,
    csrf_token_of,
    log_in_staff,
)
from sqlalchemy import select

from bookwell.core.booking import catalogue
from bookwell.core.booking.lifecycle import NotChangeable
from bookwell.core.booking.outcomes import mark_outcome
from bookwell.core.context import make_context
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, Booking, Tenant, User
from bookwell.hooks import Manifest, hookimpl

SALON = "/api/v1/tenants/salon"
TUESDAY_10 = "2027-03-02T10:00:00+01:00"
THURSDAY_10 = "2027-03-04T10:00:00+01:00"
FRIDAY_10 = "2027-03-05T10:00:00+01:00"


class Watching:
    """Writes down what each hook it implements was shown."""

    MANIFEST = Manifest("watching", "Watching", "Watches.", "1", "test", "tests")
    seen: list[tuple] = []

    @hookimpl
    def after_outcome(ctx, outcome):
        actor = ctx.actor.email if ctx.actor else None
        Watching.seen.append(
            ("after_outcome", ctx.booking.reference, ctx.booking.status, outcome, actor)
        )

    @hookimpl
    def before_cancel(ctx, reason):
        Watching.seen.append(("before_cancel", ctx.booking.reference, reason))

    @hookimpl
    def after_cancel(ctx, reason):
        Watching.seen.append(("after_cancel", ctx.booking.reference, reason))

    @hookimpl
    def before_reschedule(ctx):
        Watching.seen.append(
            ("before_reschedule", ctx.booking.reference, ctx.booking.reschedule_count)
        )

    @hookimpl
    def after_reschedule(ctx):
        Watching.seen.append(
            ("after_reschedule", ctx.booking.reference, ctx.booking.reschedule_count)
        )

    @hookimpl
    def before_confirm(ctx):
        Watching.seen.append(("before_confirm", ctx.tenant))


@pytest.fixture(autouse=True)
def nothing_seen_yet():
    Watching.seen.clear()


@pytest.fixture
def site(make_app, business, clock):
    app = make_app(EXTRA_PLUGINS=[Watching], MAIL_DELIVERY="manual")
    add_staff_and_a_rival(app, business, clock(), ("owner", "manager"))
    with app.app_context():
        plugin_changes.enable(app, business.tenant_id, "watching", {}, clock())
    return app


def seen(hook: str) -> list[tuple]:
    return [entry[1:] for entry in Watching.seen if entry[0] == hook]


def book(app, business, start: str, name: str = "Ann") -> dict:
    response = app.test_client().post(
        f"{SALON}/bookings", json=booking_body(business, start, name=name)
    )
    assert response.status_code == 201, response.json
    return response.json


def post_form(client, url: str, data: dict, page_url: str):
    return client.post(url, data={"csrf_token": csrf_token_of(client.get(page_url)), **data})


def bearer(app, email: str = "manager@example.com") -> dict[str, str]:
    answer = app.test_client().post(
        f"{SALON}/auth/login", json={"email": email, "password": STAFF_PASSWORD}
    )
    assert answer.status_code == 200, answer.json
    return {"Authorization": f"Bearer {answer.json['token']}"}


def stored(app, reference: str) -> Booking:
    with db.fresh_session(app) as session:
        return session.scalars(select(Booking).where(Booking.reference == reference)).one()


# --- after_outcome ---------------------------------------------------------------------------


def test_staff_marking_an_outcome_on_the_booking_page_tells_the_plugins(site, business, clock):
    visit = book(site, business, TUESDAY_10)
    missed = book(site, business, "2027-03-02T11:00:00+01:00", name="Bob")
    clock.set(datetime(2027, 3, 2, 11, 0, tzinfo=UTC))
    staff = log_in_staff(site, "manager@example.com")
    for booking, outcome in ((visit, "completed"), (missed, "no-show")):
        url = f"/admin/salon/bookings/{booking['reference']}"
        assert post_form(staff, f"{url}/outcome", {"outcome": outcome}, url).status_code == 302
    assert seen("after_outcome") == [
        (visit["reference"], "completed", "completed", "manager@example.com"),
        (missed["reference"], "no-show", "no-show", "manager@example.com"),
    ]


def test_an_outcome_refused_tells_nobody(site, business, clock):
    booking = book(site, business, TUESDAY_10)
    with site.app_context(), pytest.raises(NotChangeable):  # it has not started yet
        mark_outcome(
            site,
            tenant_id=business.tenant_id,
            reference=booking["reference"],
            outcome="completed",
            now=clock(),
            actor="staff:tests",
        )
    assert seen("after_outcome") == []


def test_an_outcome_marked_by_name_only_reaches_plugins_without_an_actor(site, business, clock):
    booking = book(site, business, TUESDAY_10)
    clock.set(datetime(2027, 3, 2, 10, 0, tzinfo=UTC))
    with site.app_context():
        mark_outcome(
            site,
            tenant_id=business.tenant_id,
            reference=booking["reference"],
            outcome="no-show",
            now=clock(),
            actor="staff:tests",  # the test kit's client.complete() names no account
        )
    assert seen("after_outcome") == [(booking["reference"], "no-show", "no-show", None)]


# --- the reason for a cancellation ---------------------------------------------------------------


def test_a_staff_members_reason_reaches_both_cancel_hooks_from_the_api(site, business):
    booking = book(site, business, TUESDAY_10)
    answer = site.test_client().post(
        f"{SALON}/bookings/{booking['reference']}/cancel",
        json={"reason": "The salon is closed for a funeral."},
        headers=bearer(site),
    )
    assert answer.status_code == 200, answer.json
    expected = [(booking["reference"], "The salon is closed for a funeral.")]
    assert seen("before_cancel") == expected and seen("after_cancel") == expected
    assert answer.json["cancellation_reason"] == "The salon is closed for a funeral."


def test_staff_who_give_no_reason_pass_none_and_the_booking_says_who_cancelled(site, business):
    booking = book(site, business, TUESDAY_10)
    answer = site.test_client().post(
        f"{SALON}/bookings/{booking['reference']}/cancel", json={}, headers=bearer(site)
    )
    assert answer.status_code == 200, answer.json
    assert seen("before_cancel") == seen("after_cancel") == [(booking["reference"], None)]
    assert stored(site, booking["reference"]).cancellation_reason == "cancelled by the business"


def test_a_staff_members_reason_reaches_the_hooks_from_the_booking_page(site, business):
    booking = book(site, business, TUESDAY_10)
    staff = log_in_staff(site, "manager@example.com")
    url = f"/admin/salon/bookings/{booking['reference']}"
    assert post_form(staff, f"{url}/cancel", {"reason": "Ana is ill"}, url).status_code == 302
    assert seen("before_cancel") == seen("after_cancel") == [(booking["reference"], "Ana is ill")]


def test_a_clients_cancellation_carries_no_reason(site, business):
    booking = book(site, business, TUESDAY_10)
    answer = site.test_client().post(
        f"{SALON}/bookings/{booking['reference']}/cancel", json={"token": booking["manage_token"]}
    )
    assert answer.status_code == 200, answer.json
    assert seen("before_cancel") == seen("after_cancel") == [(booking["reference"], None)]
    row = stored(site, booking["reference"])
    assert row.status == "cancelled" and row.cancellation_reason == "cancelled by the client"
    with db.fresh_session(site) as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "booking.cancelled")
        ).one()
    assert '"reason":"cancelled by the client"' in entry.details


# --- reschedule_count ----------------------------------------------------------------------------


def test_reschedule_guards_see_the_count_before_the_move_and_events_after(site, business, clock):
    booking = book(site, business, TUESDAY_10)
    client = site.test_client()
    for start in (THURSDAY_10, FRIDAY_10):
        answer = client.post(
            f"{SALON}/bookings/{booking['reference']}/reschedule",
            json={"token": booking["manage_token"], "start": start},
        )
        assert answer.status_code == 200, answer.json
    reference = booking["reference"]
    assert seen("before_reschedule") == [(reference, 0), (reference, 1)]
    assert seen("after_reschedule") == [(reference, 1), (reference, 2)]
    assert stored(site, reference).reschedule_count == 2
    with site.app_context():
        tenant = db.session().get(Tenant, business.tenant_id)
        [info] = make_context(tenant, clock()).data.client_bookings("ann@example.com")
    assert info.reschedule_count == 2


def test_a_reschedule_refused_counts_nothing(site, business):
    booking = book(site, business, TUESDAY_10)
    book(site, business, THURSDAY_10, name="Bob")  # takes the time Ann asks for
    answer = site.test_client().post(
        f"{SALON}/bookings/{booking['reference']}/reschedule",
        json={"token": booking["manage_token"], "start": THURSDAY_10},
    )
    assert answer.status_code == 409
    assert stored(site, booking["reference"]).reschedule_count == 0
    assert seen("after_reschedule") == []


# --- the business: contact details and language --------------------------------------------------


def owner_of(app) -> User:
    with db.fresh_session(app) as session:
        return session.scalars(select(User).where(User.email == "owner@example.com")).one()


def test_the_businesss_contact_details_and_language_reach_the_plugins(site, business, clock):
    book(site, business, TUESDAY_10)
    [(first,)] = seen("before_confirm")
    assert (first.email, first.phone, first.address, first.language) == (None, None, None, "en")
    with site.app_context():
        catalogue.update_business(
            site,
            tenant_id=business.tenant_id,
            name="Salon",
            contact_email="hello@salon.example",
            phone="+33 1 23 45 67 89",
            address="1 rue de Paris",
            language="fr-ch",
            actor=owner_of(site),
            now=clock(),
        )
    book(site, business, THURSDAY_10)
    [_, (then,)] = seen("before_confirm")
    assert (then.email, then.phone, then.address, then.language) == (
        "hello@salon.example",
        "+33 1 23 45 67 89",
        "1 rue de Paris",
        "fr-CH",
    )


@pytest.mark.parametrize(
    ("given", "kept"),
    [("de-ch", "de-CH"), ("FR", "fr"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419")],
)
def test_a_language_tag_is_kept_in_its_usual_case(given, kept):
    assert catalogue.check_language(given) == kept


@pytest.mark.parametrize("given", ["", "xx", "english", "en_US", "de-CH-1996", "fr-", "e1"])
def test_what_is_not_a_language_tag_is_refused(given):
    with pytest.raises(ValueError, match="not a language tag"):
        catalogue.check_language(given)


def test_the_owner_sets_the_language_on_the_business_page(site, business):
    owner = log_in_staff(site, "owner@example.com")
    page = "/admin/salon/business"
    details = {"name": "Salon", "contact_email": "", "phone": "", "address": ""}
    refused = post_form(owner, page, {**details, "language": "klingon"}, page)
    assert refused.status_code == 422 and "not a language tag" in refused.text
    assert language_of(site, business) == "en"
    assert post_form(owner, page, {**details, "language": "de-ch"}, page).status_code == 302
    assert language_of(site, business) == "de-CH"
    assert 'value="de-CH"' in owner.get(page).text
    # Left empty, it is kept (as the currency is).
    assert post_form(owner, page, {**details, "language": ""}, page).status_code == 302
    assert language_of(site, business) == "de-CH"
    with db.fresh_session(site) as session:
        changes = session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == "business.updated")
        ).all()
    assert ['"language":"de-CH"' in change for change in changes] == [True, False]


def test_a_bad_language_changes_nothing_else(site, business, clock):
    with site.app_context(), pytest.raises(catalogue.CatalogueError) as refused:
        catalogue.update_business(
            site,
            tenant_id=business.tenant_id,
            name="Renamed",
            contact_email=None,
            phone=None,
            address=None,
            language="not a tag",
            actor=owner_of(site),
            now=clock(),
        )
    assert list(refused.value.fields) == ["language"]
    with db.fresh_session(site) as session:
        tenant = session.get(Tenant, business.tenant_id)
        assert (tenant.name, tenant.language) == ("Salon", "en")


def language_of(app, business) -> str:
    with db.fresh_session(app) as session:
        return session.get(Tenant, business.tenant_id).language
