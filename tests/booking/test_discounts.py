"""Discounts (the ``booking_discount`` hook): the largest offer wins, in whole cents within the
price; it is stored with the booking, kept on a reschedule, and shown in the API, the e-mail and
the pages. A failing discount plugin never stands between a client and a booking."""

from __future__ import annotations

import logging
import re

import pytest
from booking_pages import book_through_pages
from conftest import booking_body
from sqlalchemy import select

from bookwell.core.access.users import create_user
from bookwell.core.booking.lifecycle import cents_off
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, Booking, OutboxMessage
from bookwell.hooks import Discount, Manifest, hookimpl

BOOKINGS = "/api/v1/tenants/salon/bookings"
SLOT = "2027-03-02T10:00:00+01:00"  # the cut costs 30.00
PASSWORD = "correct horse battery"


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test discount {name}.", "1.0", "test", "tests")


class TenPercent:
    MANIFEST = manifest("ten-percent")

    @hookimpl
    def booking_discount(ctx):
        return Discount("Ten percent off", percent=10)


class FiveOff:
    MANIFEST = manifest("five-off")

    @hookimpl
    def booking_discount(ctx):
        return Discount("Five off", cents=500)


class Generous:
    MANIFEST = manifest("generous")

    @hookimpl
    def booking_discount(ctx):
        return Discount("On the house, and then some", cents=1_000_000)


class Negative:
    MANIFEST = manifest("negative")

    @hookimpl
    def booking_discount(ctx):
        return Discount("A surcharge in disguise", cents=-700)


class Broken:
    MANIFEST = manifest("broken-discount")

    @hookimpl
    def booking_discount(ctx):
        raise RuntimeError("bug in a discount")


class Nonsense:
    MANIFEST = manifest("nonsense")

    @hookimpl
    def booking_discount(ctx):
        return "50%"


class FirstVisit:
    """Sees the booking being made: a discount only for Ann."""

    MANIFEST = manifest("first-visit")
    seen: list = []

    @hookimpl
    def booking_discount(ctx, settings):
        FirstVisit.seen.append((ctx.booking.reference, ctx.booking.service.price_cents))
        if ctx.booking.client_name == "Ann":
            return Discount("Welcome", percent=20)
        return None


ALL = [TenPercent, FiveOff, Generous, Negative, Broken, Nonsense, FirstVisit]


@pytest.fixture
def discount_app(make_app):
    return make_app(EXTRA_PLUGINS=ALL)


@pytest.fixture
def enable(discount_app, business, clock):
    def switch_on(*names):
        with discount_app.app_context():
            for name in names:
                plugin_changes.enable(discount_app, business.tenant_id, name, {}, clock())

    return switch_on


def book(app, business, start=SLOT, **extra):
    response = app.test_client().post(BOOKINGS, json=booking_body(business, start, **extra))
    assert response.status_code == 201, response.json
    return response.json


def stored(app, reference) -> Booking:
    with db.fresh_session(app) as session:
        return session.scalars(select(Booking).where(Booking.reference == reference)).one()


# --- what core keeps -----------------------------------------------------------------------------


def test_without_discount_plugins_the_client_pays_the_price(discount_app, business):
    made = book(discount_app, business)
    assert (made["price_cents"], made["discount_cents"], made["discount_label"]) == (3000, 0, None)
    assert made["total_cents"] == 3000


def test_a_percent_discount_is_taken_off_the_price(discount_app, business, enable):
    enable("ten-percent")
    made = book(discount_app, business)
    assert made["discount_cents"] == 300
    assert made["discount_label"] == "Ten percent off"
    assert made["total_cents"] == 2700
    row = stored(discount_app, made["reference"])
    assert (row.discount_cents, row.discount_label) == (300, "Ten percent off")


def test_the_largest_discount_wins_whether_percent_or_cents(discount_app, business, enable):
    enable("ten-percent", "five-off")
    made = book(discount_app, business)
    assert (made["discount_cents"], made["discount_label"]) == (500, "Five off")


def test_a_discount_never_exceeds_the_price(discount_app, business, enable):
    enable("generous", "ten-percent")
    made = book(discount_app, business)
    assert (made["discount_cents"], made["total_cents"]) == (3000, 0)


def test_a_negative_discount_is_no_discount(discount_app, business, enable):
    enable("negative")
    made = book(discount_app, business)
    assert (made["discount_cents"], made["discount_label"], made["total_cents"]) == (0, None, 3000)


def test_percent_rounds_down_to_whole_cents_and_stays_within_the_price():
    assert cents_off(Discount("x", percent=15), 999) == 149  # 149.85
    assert cents_off(Discount("x", percent=150), 999) == 999
    assert cents_off(Discount("x", percent=10, cents=50), 1000) == 150
    assert cents_off(Discount("x", cents=-1), 1000) == 0
    assert cents_off(Discount("x", percent=50), 0) == 0


def test_the_plugin_sees_the_booking_being_made(discount_app, business, enable):
    enable("first-visit")
    FirstVisit.seen.clear()
    assert book(discount_app, business)["discount_cents"] == 600
    assert FirstVisit.seen == [(None, 3000)]
    assert (
        book(discount_app, business, "2027-03-02T11:00:00+01:00", name="Bob")["discount_label"]
        is None
    )


def test_a_failing_discount_plugin_books_without_its_discount_and_is_logged(
    discount_app, business, enable, caplog
):
    enable("broken-discount", "nonsense", "ten-percent")
    with caplog.at_level(logging.WARNING):
        made = book(discount_app, business)
    # The others' offers still count; the failing ones' do not.
    assert (made["discount_cents"], made["discount_label"]) == (300, "Ten percent off")
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "broken-discount" in logged
    assert "nonsense" in logged


def test_a_failing_discount_plugin_alone_still_lets_the_booking_through(
    discount_app, business, enable
):
    enable("broken-discount")
    made = book(discount_app, business)
    assert (made["discount_cents"], made["total_cents"]) == (0, 3000)


def test_a_plugin_the_tenant_has_not_enabled_gives_nothing(discount_app, business, enable, clock):
    enable("five-off")
    with discount_app.app_context():
        plugin_changes.disable(discount_app, business.tenant_id, "five-off", clock())
    assert book(discount_app, business)["discount_cents"] == 0


def test_a_reschedule_keeps_the_discount(discount_app, business, enable, clock):
    enable("five-off")
    made = book(discount_app, business)
    with discount_app.app_context():
        plugin_changes.disable(discount_app, business.tenant_id, "five-off", clock())
    moved = discount_app.test_client().post(
        f"{BOOKINGS}/{made['reference']}/reschedule",
        json={"token": made["manage_token"], "start": "2027-03-03T14:00:00+01:00"},
    )
    assert moved.status_code == 200, moved.json
    assert (moved.json["discount_cents"], moved.json["discount_label"]) == (500, "Five off")
    assert stored(discount_app, made["reference"]).discount_cents == 500


def test_the_discount_is_audited_with_the_booking(discount_app, business, enable):
    enable("five-off")
    made = book(discount_app, business)
    with db.fresh_session(discount_app) as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.subject == f"booking:{made['reference']}",
                AuditEntry.action == "booking.created",
            )
        ).one()
    assert '"discount"' in entry.details and "Five off" in entry.details


# --- where the client and staff see it -----------------------------------------------------------


def test_the_confirmation_email_shows_the_discount_and_what_to_pay(discount_app, business, enable):
    enable("five-off")
    made = book(discount_app, business)
    with db.fresh_session(discount_app) as session:
        mail = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "booking.confirmed")
        ).one()
    assert re.search(r"Discount:\s+Five off, -€5\.00", mail.text_body)
    assert re.search(r"To pay:\s+€25\.00", mail.text_body)
    assert "Five off" in mail.html_body and "€25.00" in mail.html_body
    assert made["reference"] in mail.text_body


def test_an_email_without_a_discount_says_nothing_of_one(discount_app, business):
    book(discount_app, business)
    with db.fresh_session(discount_app) as session:
        mail = session.scalars(select(OutboxMessage)).first()
    assert "Discount" not in mail.text_body


def test_the_confirmation_and_manage_pages_show_the_discount(discount_app, business, enable):
    enable("ten-percent")
    client = discount_app.test_client()
    page, manage = book_through_pages(client, business)
    assert "Ten percent off" in page.text and "€27.00" in page.text
    again = client.get(manage)
    assert "Ten percent off" in again.text and "€27.00" in again.text


def test_staff_see_the_discount_on_the_booking_page_and_in_the_api(
    discount_app, business, enable, clock
):
    enable("five-off")
    made = book(discount_app, business)
    with discount_app.app_context():
        create_user(
            discount_app,
            tenant_id=business.tenant_id,
            email="owner@example.com",
            role="owner",
            password=PASSWORD,
            now=clock(),
        )
    client = discount_app.test_client()
    login = client.post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "owner@example.com", "password": PASSWORD},
    )
    assert login.status_code == 200, login.json
    bearer = {"Authorization": f"Bearer {login.json['token']}"}
    seen = client.get(f"{BOOKINGS}/{made['reference']}", headers=bearer)
    assert seen.status_code == 200, seen.json
    assert (seen.json["discount_cents"], seen.json["total_cents"]) == (500, 2500)

    pages = discount_app.test_client()
    form = pages.get("/admin/salon/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text).group(1)
    pages.post(
        "/admin/salon/login",
        data={"csrf_token": token, "email": "owner@example.com", "password": PASSWORD},
    )
    page = pages.get(f"/admin/salon/bookings/{made['reference']}")
    assert page.status_code == 200
    assert "Five off" in page.text and "€25.00" in page.text
