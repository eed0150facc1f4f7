"""Refunds of prepaid bookings: staff record what was paid when they book for a client, and a
cancellation records the refund due by the policy's rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import bookwell.plugins.cancellation_policy as plugin

# The fixtures this folder shares (a conftest.py here would clash with the suite's own).
pytest_plugins = ["cancellation_policy_kit"]
TUESDAY_TEN = "2027-03-02T10:00:00+01:00"
TUESDAY_TEN_UTC = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
DEADLINE = TUESDAY_TEN_UTC - timedelta(hours=24)


def staff_booking(member, tenant, prepaid_cents, start=TUESDAY_TEN, **extra):
    return member.api.post(
        f"/api/v1/tenants/{tenant.slug}/bookings",
        json={
            "service_id": tenant.service_id,
            "provider_id": tenant.provider_id,
            "start": start,
            "client": {"name": "Ann", "email": "ann@example.com"},
            "consents": ["cancellation_policy"],
            "prepaid_cents": prepaid_cents,
            **extra,
        },
    )


def test_staff_record_a_prepaid_amount_through_the_api(owner, tenant, client, policy_on):
    answer = staff_booking(owner, tenant, 1500)
    assert answer.status_code == 201, answer.json
    assert answer.json["prepaid_cents"] == 1500
    assert answer.json["refund_due_cents"] is None
    assert "manage_token" not in answer.json
    # The answer carries the consents just given, as the booking's later reads do.
    assert [consent["id"] for consent in answer.json["consents"]] == ["cancellation_policy"]
    assert client.stored(answer.json).prepaid_cents == 1500


@pytest.mark.parametrize("amount", [-1, 3001, "10", 1.5])
def test_a_prepaid_amount_out_of_bounds_is_refused_and_nothing_is_booked(
    owner, tenant, policy_on, amount, audit_trail
):
    answer = staff_booking(owner, tenant, amount)
    assert answer.status_code == 422, answer.json
    assert "prepaid_cents" in answer.json["error"]["fields"]
    assert audit_trail(action="booking.created") == []


def test_a_client_cannot_say_it_prepaid(client, policy_on):
    answer = client.try_book(TUESDAY_TEN, consents=["cancellation_policy"], prepaid_cents=3000)
    assert answer.status_code == 422
    assert "prepaid_cents" in answer.json["error"]["fields"]


def test_another_business_bearer_books_as_a_client_and_cannot_say_it_prepaid(
    staff_login, second_business, tenant, policy_on, client
):
    stranger = staff_login("owner", business=second_business, email="boss@spa.example")
    refused = staff_booking(stranger, tenant, 1000)
    assert refused.status_code == 422
    assert "prepaid_cents" in refused.json["error"]["fields"]  # not a field of a client's body
    booked = stranger.api.post(
        f"/api/v1/tenants/{tenant.slug}/bookings",
        json={
            "service_id": tenant.service_id,
            "provider_id": tenant.provider_id,
            "start": TUESDAY_TEN,
            "client": {"name": "Ann", "email": "ann@example.com"},
            "consents": ["cancellation_policy"],
        },
    )
    assert booked.status_code == 201
    assert "manage_token" in booked.json  # a client's booking, not the staff's
    assert client.stored(booked.json).prepaid_cents == 0


def test_staff_record_a_prepaid_amount_on_the_book_for_a_client_page(
    owner, tenant, client, policy_on
):
    slot = f"{tenant.provider_id}-{int(TUESDAY_TEN_UTC.timestamp())}"
    form = {
        "service": str(tenant.service_id),
        "day": "2027-03-02",
        "slot": slot,
        "name": "Ann",
        "email": "ann@example.com",
        "consents": "cancellation_policy",
        "prepaid_cents": "2000",
    }
    new = f"/admin/salon/bookings/new?service={tenant.service_id}&day=2027-03-02"
    too_much = owner.submit(
        "/admin/salon/bookings/new", {**form, "prepaid_cents": "3001"}, form_on=new
    )
    assert too_much.status_code == 422
    assert "between 0 and the price" in too_much.text
    negative = owner.submit(
        "/admin/salon/bookings/new", {**form, "prepaid_cents": "-5"}, form_on=new
    )
    assert negative.status_code == 422
    made = owner.submit("/admin/salon/bookings/new", form, form_on=new)
    assert made.status_code == 302, made.text[:500]
    reference = made.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    page = owner.pages.get(f"/admin/salon/bookings/{reference}")
    assert "Prepaid" in page.text and "20.00" in page.text


def test_a_client_cancelling_in_time_is_due_the_before_percentage(
    owner, tenant, client, policy_on, clock, outbox
):
    policy_on(refund_percent_before=75)
    booking = staff_booking(owner, tenant, 1999).json
    # The client cancels with the manage link the e-mail brought them.
    token = _token_from_mail(outbox, booking["reference"])
    clock.set(DEADLINE)
    answer = client.post(f"/{booking['reference']}/cancel", token=token)
    assert answer.status_code == 200, answer.json
    assert answer.json["refund_due_cents"] == 1499  # 1999 x 75 / 100, rounded down
    assert client.stored(booking).refund_due_cents == 1499
    mail = [m for m in outbox(kind="booking.cancelled") if m.booking == booking["reference"]]
    assert mail and "Refund due: €14.99" in mail[-1].text
    manage = client.http.get(
        f"/book/salon/manage/{booking['reference']}", query_string={"token": token}
    )
    assert "Refund due" in manage.text and "14.99" in manage.text


def test_staff_cancelling_late_record_the_after_percentage(owner, tenant, client, policy_on, clock):
    policy_on(refund_percent_after=30)
    booking = staff_booking(owner, tenant, 3000).json
    clock.set(DEADLINE + timedelta(seconds=1))
    owner.sign_in_again()
    answer = owner.api.post(
        f"bookings/{booking['reference']}/cancel", json={"reason": "No-call, asked to cancel"}
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["refund_due_cents"] == 900
    page = owner.pages.get(f"/admin/salon/bookings/{booking['reference']}")
    assert "Refund due" in page.text and "9.00" in page.text


def test_nothing_prepaid_means_no_refund_recorded(client, book, policy_on):
    booking = book()
    assert client.cancel(booking)["refund_due_cents"] is None


def test_without_the_policy_no_refund_rule_applies(owner, tenant, client):
    answer = owner.api.post(
        "bookings",
        json={
            "service_id": tenant.service_id,
            "provider_id": tenant.provider_id,
            "start": TUESDAY_TEN,
            "client": {"name": "Ann", "email": "ann@example.com"},
            "prepaid_cents": 1000,
        },
    )
    assert answer.status_code == 201
    cancelled = owner.api.post(f"bookings/{answer.json['reference']}/cancel", json={})
    assert cancelled.json["refund_due_cents"] is None


def test_a_crashing_refund_rule_refuses_the_cancellation(
    owner, tenant, client, policy_on, monkeypatch
):
    booking = staff_booking(owner, tenant, 1000).json

    def broken(*args, **kwargs):
        raise RuntimeError("the refund rule is broken")

    monkeypatch.setattr(plugin.policy, "refund_percent", broken)
    answer = owner.api.post(f"bookings/{booking['reference']}/cancel", json={"reason": "x"})
    assert answer.status_code == 503
    assert answer.json["error"]["code"] == "plugin_failed"
    stored = client.stored(booking)
    assert stored.status == "confirmed" and stored.refund_due_cents is None


def _token_from_mail(outbox, reference):
    mail = next(m for m in outbox(kind="booking.confirmed") if m.booking == reference)
    link = next(word for word in mail.text.split() if "/manage/" in word)
    return link.split("token=", 1)[1]


def test_moving_a_booking_after_its_cancellation_limit_does_not_reopen_it(
    owner, tenant, client, policy_on, clock, outbox
):
    # Moves are allowed until 12 hours before, cancellations only until 72: a client past the
    # cancellation limit moves the booking three weeks on, then tries to cancel it for a full
    # refund.
    policy_on(cancel_limit_hours=72, reschedule_limit_hours=12, refund_percent_after=0)
    booking = staff_booking(owner, tenant, 3000).json
    token = _token_from_mail(outbox, booking["reference"])
    clock.set(TUESDAY_TEN_UTC - timedelta(hours=48))
    refused = client.post(f"/{booking['reference']}/cancel", token=token)
    assert refused.json["error"]["code"] == "cancellation_window_passed"
    moved = client.post(
        f"/{booking['reference']}/reschedule", token=token, start="2027-03-23T10:00:00+01:00"
    )
    assert moved.status_code == 200, moved.json
    again = client.post(f"/{booking['reference']}/cancel", token=token)
    assert again.status_code == 403
    assert again.json["error"]["code"] == "cancellation_window_passed"
    assert "before the booking was moved" in again.json["error"]["message"]
    # Staff may still cancel it, and the refund is the late one.
    owner.sign_in_again()
    done = owner.api.post(
        f"bookings/{booking['reference']}/cancel", json={"reason": "Asked by phone"}
    )
    assert done.status_code == 200 and done.json["refund_due_cents"] == 0


def test_a_move_within_the_cancellation_limit_leaves_it_open(
    owner, tenant, client, policy_on, clock, outbox
):
    policy_on(cancel_limit_hours=72, reschedule_limit_hours=12)
    booking = staff_booking(owner, tenant, 3000).json
    token = _token_from_mail(outbox, booking["reference"])
    clock.set(TUESDAY_TEN_UTC - timedelta(hours=96))
    moved = client.post(
        f"/{booking['reference']}/reschedule", token=token, start="2027-03-23T10:00:00+01:00"
    )
    assert moved.status_code == 200, moved.json
    cancelled = client.post(f"/{booking['reference']}/cancel", token=token)
    assert cancelled.status_code == 200 and cancelled.json["refund_due_cents"] == 3000
