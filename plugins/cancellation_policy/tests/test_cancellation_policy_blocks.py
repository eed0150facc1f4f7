"""The policy's consent, and blocking clients: by hand from the plugin's staff page, or after
a number of no-shows counted from the outcome event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select, text

import bookwell.plugins.cancellation_policy as plugin
from bookwell.plugins.cancellation_policy.blocks import blocks as blocks_table

# The fixtures this folder shares (a conftest.py here would clash with the suite's own).
pytest_plugins = ["cancellation_policy_kit"]
TUESDAY_TEN = "2027-03-02T10:00:00+01:00"
PAGE = "/admin/salon/cancellation_policy/"


def block(member, client, reason="Abusive on the phone"):
    return member.submit(
        "/admin/salon/cancellation_policy/blocks",
        {"client": client, "reason": reason},
        form_on=PAGE,
    )


def _code(response, status=403):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.json["error"]["code"]


# --- the consent --------------------------------------------------------------------------------


def test_the_policy_is_a_consent_every_booking_needs(client, policy_on, audit_trail):
    requirements = client.http.get("/api/v1/tenants/salon/booking-requirements").json
    consent = next(c for c in requirements["consents"] if c["id"] == "cancellation_policy")
    assert "24 hours" in consent["label"]
    assert consent["url"].endswith("/book/salon/cancellation_policy/")
    refused = client.try_book(TUESDAY_TEN)
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "invalid"
    assert "consents" in refused.json["error"]["fields"]
    assert audit_trail(action="booking.created") == []
    booking = client.book(TUESDAY_TEN, consents=["cancellation_policy"])
    assert client.stored(booking).status == "confirmed"


def test_the_confirmation_step_shows_its_own_unticked_checkbox(client, policy_on, audit_trail):
    from bookwell.core.testing import csrf_token_of

    address = "/book/salon/details"
    query = {"service": client.business.service_id, "start": TUESDAY_TEN}
    page = client.http.get(address, query_string=query)
    assert page.status_code == 200
    assert 'name="consents" value="cancellation_policy">' in page.text  # not checked
    assert "/book/salon/cancellation_policy/" in page.text  # where to read it
    unticked = client.http.post(
        address,
        query_string=query,
        data={"csrf_token": csrf_token_of(page), "name": "Ann", "email": "ann@example.com"},
    )
    assert unticked.status_code == 422
    assert "Please tick this box" in unticked.text
    assert audit_trail(action="booking.created") == []


def test_the_policy_page_shows_the_text_and_the_rules(client, policy_on):
    policy_on(text="No refunds for <b>late</b> cancellations.", cancel_limit_hours=48)
    page = client.http.get("/book/salon/cancellation_policy/")
    assert page.status_code == 200
    assert "No refunds for &lt;b&gt;late&lt;/b&gt; cancellations." in page.text
    assert "48 hours" in page.text


def test_the_consent_proof_names_the_policy_text_accepted(client, policy_on, owner):
    import hashlib

    booking = client.book(TUESDAY_TEN, consents=["cancellation_policy"])
    shown = owner.api.get(f"bookings/{booking['reference']}").json
    proof = next(c for c in shown["consents"] if c["id"] == "cancellation_policy")
    text = plugin.policy.full_text(plugin_settings_defaults())
    assert proof["text_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert proof["version"] == plugin.policy.version(text)


def plugin_settings_defaults():
    return {setting.key: setting.default for setting in plugin.MANIFEST.settings}


# --- blocking by hand ---------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["ANN@Example.com", " ann@example.com "])
def test_a_client_blocked_by_email_cannot_book_whatever_the_case(
    make_client, policy_on, owner, audit_trail, typed
):
    assert block(owner, typed).status_code == 302
    ann = make_client("Ann", email="Ann@EXAMPLE.com")
    refused = ann.try_book(TUESDAY_TEN, consents=["cancellation_policy"])
    assert _code(refused) == "client_blocked"
    assert "We are sorry" in refused.json["error"]["message"]
    assert audit_trail(action="booking.created") == []
    entry = audit_trail(action="plugin.cancellation_policy.client.blocked")[-1]
    # The client by pseudonym: the address lives outside the hashed entry, where it can be erased.
    assert entry.subject.startswith("client:person:")
    assert entry.subject_email == "ann@example.com"
    assert entry.details["reason"] == "Abusive on the phone"


@pytest.mark.parametrize(
    "typed, booked_with",
    [
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033 6 12-34-56-78", "+33 (6) 12.34.56.78"),
        ("06 12 34 56 78", "0612345678"),
    ],
)
def test_a_client_blocked_by_phone_cannot_book_whatever_the_formatting(
    client, policy_on, owner, app, typed, booked_with, database_url
):
    assert block(owner, typed).status_code == 302
    refused = client.post(
        service_id=client.business.service_id,
        provider_id=client.business.provider_id,
        start=TUESDAY_TEN,
        consents=["cancellation_policy"],
        client={"name": "Ann", "email": "other@example.com", "phone": booked_with},
    )
    assert _code(refused) == "client_blocked"
    # The phone number itself is kept nowhere: only its keyed digest.
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(blocks_table)).mappings().all()
    engine.dispose()
    assert len(rows) == 1 and rows[0]["kind"] == "phone" and rows[0]["email"] is None
    digits = "".join(ch for ch in typed if ch.isdigit())
    assert digits[-8:] not in str(dict(rows[0]))


def test_a_blocked_client_cannot_cancel_or_move_online_but_staff_can(
    client, book, policy_on, owner, manage_cancel
):
    booking = book()
    # A manage page opened before the block, used after it.
    page = manage_cancel(booking, then=lambda: block(owner, "ann@example.com"))
    assert page.status_code == 403 and "We are sorry" in page.text
    shown = client.http.get(
        f"/book/salon/manage/{booking['reference']}",
        query_string={"token": booking["manage_token"]},
    )
    assert "We are sorry" in shown.text and "Cancel the booking" not in shown.text
    assert _code(client.post(f"/{booking['reference']}/cancel", token=booking["manage_token"])) == (
        "client_blocked"
    )
    moved = client.post(
        f"/{booking['reference']}/reschedule",
        token=booking["manage_token"],
        start="2027-03-02T11:00:00+01:00",
    )
    assert _code(moved) == "client_blocked"
    assert client.stored(booking).status == "confirmed"
    assert owner.api.post(f"bookings/{booking['reference']}/cancel", json={}).status_code == 200


def test_unblocking_lets_the_client_book_again(client, policy_on, owner, audit_trail):
    assert block(owner, "ann@example.com").status_code == 302
    page = owner.pages.get(PAGE)
    assert "ann@example.com" in page.text and "Abusive on the phone" in page.text
    import re

    block_id = re.search(r"/cancellation_policy/blocks/(\d+)/remove", page.text).group(1)
    removed = owner.submit(
        f"/admin/salon/cancellation_policy/blocks/{block_id}/remove",
        {"reason": "Apologised"},
        form_on=PAGE,
    )
    assert removed.status_code == 302
    assert client.try_book(TUESDAY_TEN, consents=["cancellation_policy"]).status_code == 201
    entry = audit_trail(action="plugin.cancellation_policy.client.unblocked")[-1]
    assert entry.details == {"kind": "email", "reason": "Apologised"}


def test_the_block_form_refuses_bad_input_and_keeps_nothing(policy_on, owner, audit_trail):
    assert block(owner, "12").status_code == 422
    assert block(owner, "not@an@address").status_code == 422
    assert block(owner, "ann@example.com", reason="").status_code == 422
    assert block(owner, "ann@example.com", reason="line\x00break").status_code == 422
    assert "Nobody is blocked" in owner.pages.get(PAGE).text
    assert audit_trail(action="plugin.cancellation_policy.client.blocked") == []
    assert block(owner, "ann@example.com").status_code == 302
    again = block(owner, "ANN@example.com")
    assert again.status_code == 422 and "already blocked" in again.text


def test_the_staff_page_is_for_the_business_staff_only(
    app, policy_on, staff_login, second_business
):
    nobody = app.test_client().get(PAGE)
    assert nobody.status_code in (302, 401)
    stranger = staff_login("owner", business=second_business, email="boss@spa.example")
    assert stranger.pages.get(PAGE).status_code == 404


# --- no-shows -----------------------------------------------------------------------------------


def test_clients_are_blocked_after_n_no_shows(client, book, policy_on, clock, audit_trail, app):
    policy_on(block_after_no_shows=2)
    first = book("2027-03-02T10:00:00+01:00")
    second = book("2027-03-03T10:00:00+01:00")
    clock.set(datetime(2027, 3, 2, 9, 30, tzinfo=UTC))
    client.complete(first, "no-show")
    assert (
        client.try_book("2027-03-05T10:00:00+01:00", consents=["cancellation_policy"]).status_code
        == 201
    )
    clock.set(datetime(2027, 3, 3, 9, 30, tzinfo=UTC))
    client.complete(second, "no-show")
    refused = client.try_book("2027-03-06T10:00:00+01:00", consents=["cancellation_policy"])
    assert _code(refused) == "client_blocked"
    blocked = audit_trail(action="plugin.cancellation_policy.client.blocked")
    assert [entry.details for entry in blocked] == [{"automatic": True, "no_shows": 2}]


def test_no_shows_are_kept_by_the_plugin_not_read_from_bookings(
    client, book, policy_on, clock, plugin_context_for, database_url
):
    policy_on(block_after_no_shows=3)
    booking = book()
    clock.set(datetime(2027, 3, 2, 9, 30, tzinfo=UTC))
    client.complete(booking, "no-show")
    with plugin_context_for("cancellation_policy") as ctx:
        key = "no_shows:" + plugin.blocks.email_digest(ctx, "ANN@example.com")
        assert ctx.store.get(key) == 1
    # The count lives in the plugin's store, whatever happens to the booking rows.
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM booking_consents"))
        connection.execute(text("UPDATE outbox_messages SET booking_id = NULL"))
        assert connection.execute(text("DELETE FROM bookings")).rowcount == 1
    engine.dispose()
    with plugin_context_for("cancellation_policy") as ctx:
        assert ctx.store.get(key) == 1


def test_no_shows_off_by_default_never_block(client, book, policy_on, clock):
    booking = book()
    clock.set(datetime(2027, 3, 2, 9, 30, tzinfo=UTC))
    client.complete(booking, "no-show")
    assert (
        client.try_book("2027-03-05T10:00:00+01:00", consents=["cancellation_policy"]).status_code
        == 201
    )


# --- fail closed, walled off --------------------------------------------------------------------


def test_a_crash_of_the_block_list_refuses_the_booking_and_stores_nothing(
    client, policy_on, monkeypatch, audit_trail
):
    def broken(*args, **kwargs):
        raise RuntimeError("the block list cannot be read")

    monkeypatch.setattr(plugin.blocks, "is_blocked", broken)
    refused = client.try_book(TUESDAY_TEN, consents=["cancellation_policy"])
    assert _code(refused, 503) == "plugin_failed"
    assert audit_trail(action="booking.created") == []


def test_a_block_at_one_business_does_not_reach_another(
    client, second_client, policy_on, enable_plugin, second_business, owner
):
    enable_plugin("cancellation_policy", business=second_business)
    assert block(owner, "ann@example.com").status_code == 302
    assert _code(client.try_book(TUESDAY_TEN, consents=["cancellation_policy"])) == "client_blocked"
    assert second_client.try_book(TUESDAY_TEN, consents=["cancellation_policy"]).status_code == 201


def test_staff_may_still_book_for_a_blocked_client(owner, tenant, policy_on):
    assert block(owner, "ann@example.com").status_code == 302
    answer = owner.api.post(
        "bookings",
        json={
            "service_id": tenant.service_id,
            "provider_id": tenant.provider_id,
            "start": TUESDAY_TEN,
            "client": {"name": "Ann", "email": "ann@example.com"},
            "consents": ["cancellation_policy"],
        },
    )
    assert answer.status_code == 201
