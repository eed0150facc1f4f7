"""The staff pages' client list (search by name, e-mail or phone; one business's clients only;
a page at a time) and each client's history (their bookings, coming and past)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from conftest import add_staff_and_a_rival, log_in_staff
from sqlalchemy import select, text

from bookwell.core import testing
from bookwell.core.context.protection import is_encrypted
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry
from bookwell.core.web.pages.admin_clients import PER_PAGE
from bookwell.hooks import DataProtection, Manifest, hookimpl


class Protects:
    MANIFEST = Manifest("protects", "Protects", "Encrypts and audits.", "1", "test", "t")

    @hookimpl
    def data_protection(ctx, settings):
        return DataProtection(audit_views=True, encrypt_client_fields=True)


@pytest.fixture
def site(make_app, business, clock):
    app = make_app(plugins=[Protects])
    add_staff_and_a_rival(app, business, clock(), ("owner", "staff"))
    with app.app_context():
        rival = testing.open_business(app, clock(), slug="rival", name="Rival")
        plugin_changes.enable(app, business.tenant_id, "protects", {}, clock())
    app.config["RIVAL"] = rival
    return app


def book(app, business, start, name, email, phone=None, provider_id=None):
    client = {"name": name, "email": email}
    if phone:
        client["phone"] = phone
    response = app.test_client().post(
        f"/api/v1/tenants/{business.slug}/bookings",
        json={
            "service_id": business.service_id,
            "provider_id": provider_id or business.provider_id,
            "start": start,
            "client": client,
        },
    )
    assert response.status_code == 201, response.json
    return response.json["reference"]


def listed(page) -> list[str]:
    """The e-mail addresses the list shows, in order."""
    return re.findall(r"<td>([^<@]+@[^<]+)</td>", page.text)


def some_clients(site, business):
    book(
        site,
        business,
        "2027-03-02T10:00:00+01:00",
        "Ann Martin",
        "ann@example.com",
        "+33 6 11 22 33 44",
    )
    book(
        site,
        business,
        "2027-03-02T11:00:00+01:00",
        "Bob Stone",
        "BOB@Example.com",
        "06 99 88 77 66",
    )
    book(
        site,
        business,
        "2027-03-02T12:00:00+01:00",
        "Cyd Martin",
        "cyd@example.org",
        provider_id=business.second_provider_id,
    )
    rival = site.config["RIVAL"]
    book(
        site,
        rival,
        "2027-03-02T10:00:00+01:00",
        "Ann Martin",
        "ann.rival@example.com",
        "+33 6 11 22 33 55",
    )


def test_the_client_list_finds_by_name_email_or_phone_and_only_this_businesss(site, business):
    some_clients(site, business)
    owner = log_in_staff(site, "owner@example.com")
    everyone = owner.get("/admin/salon/clients")
    assert everyone.status_code == 200
    assert sorted(listed(everyone)) == ["ann@example.com", "bob@example.com", "cyd@example.org"]
    assert "3 clients" in everyone.text
    assert listed(owner.get("/admin/salon/clients?q=martin")) == [
        "cyd@example.org",
        "ann@example.com",
    ]  # newest booking first
    assert listed(owner.get("/admin/salon/clients?q=EXAMPLE.org")) == ["cyd@example.org"]
    assert listed(owner.get("/admin/salon/clients?q=bob@example")) == ["bob@example.com"]
    # Phones are stored encrypted here (the plugin asks): matched on their digits in clear.
    with site.app_context():
        stored = db.session().scalar(
            text("SELECT client_phone FROM bookings WHERE client_email = 'ann@example.com'")
        )
    # Not a search for "33": the ciphertext's random base64 can hold it by chance.
    assert is_encrypted(stored) and "611223344" not in stored and "6 11 22" not in stored
    assert listed(owner.get("/admin/salon/clients?q=06 99 88")) == ["bob@example.com"]
    assert listed(owner.get("/admin/salon/clients?q=%2B33 6 11 22")) == ["ann@example.com"]
    # The other business's client of the same name and a close phone number never shows.
    assert "rival" not in owner.get("/admin/salon/clients?q=ann").text
    assert listed(owner.get("/admin/salon/clients?q=33 55")) == []
    assert listed(owner.get("/admin/salon/clients?q=%25")) == []  # a LIKE wildcard is literal
    nothing = owner.get("/admin/salon/clients?q=nobody")
    assert listed(nothing) == [] and "0 clients matching" in nothing.text
    # The rival's owner sees theirs, and cannot read the salon's list.
    rival_owner = log_in_staff(site, "spa@example.com", "spa")
    assert rival_owner.get("/admin/salon/clients").status_code == 404
    # The listing is audited as a view of those clients (the plugin asks for it).
    with site.app_context():
        entries = list(
            db.session().scalars(select(AuditEntry).where(AuditEntry.subject == "clients:martin"))
        )
    assert entries


def test_staff_find_only_the_clients_of_their_own_provider(site, business):
    some_clients(site, business)
    staff = log_in_staff(site, "staff@example.com")
    assert sorted(listed(staff.get("/admin/salon/clients"))) == [
        "ann@example.com",
        "bob@example.com",
    ]
    assert listed(staff.get("/admin/salon/clients?q=cyd")) == []


def test_the_client_list_comes_a_page_at_a_time(site, business):
    for number in range(PER_PAGE + 2):
        day, slot = divmod(number, 16)
        hour, half = divmod(slot, 2)
        start = f"2027-03-{2 + day:02d}T{9 + hour:02d}:{30 * half:02d}:00+01:00"
        book(site, business, start, f"Client {number}", f"client{number}@example.com")
    owner = log_in_staff(site, "owner@example.com")
    first = owner.get("/admin/salon/clients")
    assert len(listed(first)) == PER_PAGE and "page 1 of 2" in first.text
    assert "client26@example.com" in listed(first)  # the newest first
    second = owner.get("/admin/salon/clients?page=2")
    assert listed(second) == ["client1@example.com", "client0@example.com"]
    assert owner.get("/admin/salon/clients?page=3").status_code == 404
    assert owner.get("/admin/salon/clients?page=0").status_code == 404
    assert owner.get("/admin/salon/clients?page=x").status_code == 404
    assert "page=2" in owner.get("/admin/salon/clients?q=client").text


def test_a_search_of_bad_text_is_refused_beside_its_field(site, business):
    owner = log_in_staff(site, "owner@example.com")
    refused = owner.get("/admin/salon/clients?q=" + "x" * 201)
    assert refused.status_code == 422
    assert 'aria-invalid="true"' in refused.text and 'aria-describedby="q-error"' in refused.text
    assert "<title>Error: " in refused.text


def test_a_clients_history_lists_their_past_and_coming_bookings(site, business, clock):
    book(site, business, "2027-03-02T10:00:00+01:00", "Ann Martin", "ann@example.com", "0611223344")
    book(site, business, "2027-03-05T10:00:00+01:00", "Ann Martin", "Ann@Example.com")
    book(site, business, "2027-03-09T15:00:00+01:00", "Ann M.", "ann@example.com")
    book(site, business, "2027-03-02T11:00:00+01:00", "Bob Stone", "bob@example.com")
    clock.set(datetime(2027, 3, 4, 12, 0, tzinfo=UTC))
    owner = log_in_staff(site, "owner@example.com")
    clients = owner.get("/admin/salon/clients?q=ann")
    assert 'href="/admin/salon/clients/ann@example.com"' in clients.text
    assert ">Ann M.</a>" in clients.text  # the name of their latest booking
    page = owner.get("/admin/salon/clients/ann@example.com")
    assert page.status_code == 200
    coming, past = page.text.split('id="coming"')[1].split('id="past"')
    assert "Friday 5 March 2027, 10:00" in coming and "Tuesday 9 March 2027, 15:00" in coming
    assert coming.index("5 March") < coming.index("9 March")  # soonest first
    assert "Tuesday 2 March 2027, 10:00" in past and "5 March" not in past
    assert "Bob" not in page.text
    assert "0611223344" in page.text  # decrypted for the page
    assert "3 (2 coming, 1 past)" in page.text
