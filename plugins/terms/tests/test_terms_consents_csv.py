"""The owner's page: every version, and the proof of consents as CSV (audited, spreadsheet-safe,
this business's only)."""

import csv
import hashlib
import io

import pytest

from bookwell.plugins.terms.versions import all_versions

TEXT = "Pay on the day.\n"
SLOT = "2027-03-02T10:00:00+01:00"
PAGE = "/admin/salon/terms/"
CSV = "/admin/salon/terms/consents.csv"


@pytest.fixture
def bookwell_settings():
    # The hooks' time limit is for slow plugins, not for a test machine shared by many runs: a
    # numbering that overran it would refuse a booking (or drop a link) these tests expect.
    return {"GUARD_TIMEOUT_SECONDS": 10}


@pytest.fixture
def terms(enable_plugin):
    return enable_plugin("terms", text=TEXT)


def rows_of(answer):
    assert answer.status_code == 200, answer.text[:500]
    assert answer.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(answer.text)))


def book_as(make_client, name, email, start, user_agent="Firefox/130"):
    client = make_client(name, email=email)
    answer = client.http.post(
        client.bookings_url,
        json={
            "service_id": client.business.service_id,
            "provider_id": client.business.provider_id,
            "start": start,
            "client": {"name": name, "email": email},
            "consents": ["terms"],
        },
        headers={"User-Agent": user_agent},
    )
    assert answer.status_code == 201, answer.json
    return answer.json


def test_the_owner_downloads_every_consent_as_csv(terms, make_client, owner, audit_trail):
    booking = book_as(make_client, "Ann", "ann@example.com", SLOT)
    rows = rows_of(owner.pages.get(CSV))
    assert rows == [
        [
            "booking reference",
            "client name",
            "client e-mail",
            "consent id",
            "version",
            "text_sha256",
            "given_at",
            "ip",
            "user_agent",
        ],
        [
            booking["reference"],
            "Ann",
            "ann@example.com",
            "terms",
            "1",
            hashlib.sha256(TEXT.encode()).hexdigest(),
            "2027-03-01T08:00:00+00:00",
            "127.0.0.1",
            "Firefox/130",
        ],
    ]
    (entry,) = audit_trail(action="plugin.terms.consents.downloaded")
    assert entry.details == {"from": "2000-01-01", "to": "2027-03-01", "rows": 1}
    assert entry.actor == f"user:{owner.user_id}"


def test_cells_a_spreadsheet_would_run_are_defused(terms, make_client, owner):
    book_as(make_client, "=HYPERLINK(1)", "eve@example.com", SLOT, user_agent="@SUM(A1)")
    book_as(make_client, "+Bob", "bob@example.com", "2027-03-02T11:00:00+01:00", "-cmd")
    rows = rows_of(owner.pages.get(CSV))[1:]
    assert [(row[1], row[8]) for row in rows] == [
        ("'=HYPERLINK(1)", "'@SUM(A1)"),
        ("'+Bob", "'-cmd"),
    ]


def test_the_download_covers_the_days_asked_for(terms, make_client, owner, clock):
    book_as(make_client, "Ann", "ann@example.com", SLOT)
    clock.advance(days=2)  # 3 March
    later = book_as(make_client, "Bob", "bob@example.com", "2027-03-05T10:00:00+01:00")
    owner.sign_in_again()  # two days idle: the session has ended
    rows = rows_of(owner.pages.get(f"{CSV}?from=2027-03-02&to=2027-03-03"))
    assert [row[0] for row in rows[1:]] == [later["reference"]]
    assert len(rows_of(owner.pages.get(CSV))) == 3


@pytest.mark.parametrize(
    "query", ["from=yesterday", "to=2027-13-01", "from=2027-03-05&to=2027-03-01", "from=20270301"]
)
def test_a_bad_day_is_explained_and_nothing_is_downloaded(terms, owner, audit_trail, query):
    answer = owner.pages.get(f"{CSV}?{query}")
    assert answer.status_code == 422
    assert "text/html" in answer.content_type and "must be" in answer.text
    assert audit_trail(action="plugin.terms.consents.downloaded") == []


def test_only_this_business_consents_are_downloaded(
    terms, enable_plugin, second_business, second_client, make_client, owner
):
    enable_plugin("terms", business=second_business, text="Spa rules.")
    second_client.book(SLOT, consents=["terms"])
    mine = book_as(make_client, "Ann", "ann@example.com", "2027-03-02T12:00:00+01:00")
    assert [row[0] for row in rows_of(owner.pages.get(CSV))[1:]] == [mine["reference"]]


def test_the_consents_go_to_who_may_export_data(terms, client, manager, staff_member, receptionist):
    client.book(SLOT, consents=["terms"])
    # The download is data.export (owners and managers); the page, the owner's.
    assert manager.pages.get(CSV).status_code == 200
    assert manager.pages.get(PAGE).status_code == 403
    for member in (staff_member, receptionist):
        assert member.pages.get(CSV).status_code == 403
        assert member.pages.get(PAGE).status_code == 403


def test_the_owners_page_lists_every_version_with_its_page(terms, enable_plugin, owner):
    home = owner.pages.get("/admin/salon/")
    assert 'href="/admin/salon/terms/"' in home.text
    enable_plugin("terms", text="Cancel a day ahead.\n")
    page = owner.pages.get(PAGE)
    assert page.status_code == 200
    assert '<a href="/book/salon/terms/1">Version 1</a>' in page.text
    assert '<a href="/book/salon/terms/2">Version 2</a> (current)' in page.text
    assert hashlib.sha256(b"Cancel a day ahead.\n").hexdigest() in page.text


def test_the_marketplace_refuses_to_switch_it_on_without_terms(owner, client):
    answer = owner.submit(
        "/admin/salon/marketplace/switch",
        {"plugin": "terms", "enabled": "on"},
        form_on="/admin/salon/marketplace",
    )
    assert answer.status_code == 422
    assert "Write your Terms &amp; Conditions: they cannot be empty." in answer.text
    assert client.book(SLOT)["status"] == "confirmed"  # still off: no terms asked


def test_a_text_saved_in_the_marketplace_is_numbered_at_once(
    terms, owner, client, plugin_context_for
):
    client.book(SLOT, consents=["terms"])  # version 1 asked for
    saved = owner.submit(
        "/admin/salon/marketplace/settings",
        {"plugin": "terms", "setting-text": "Version two.\r\n"},
        form_on="/admin/salon/marketplace",
    )
    assert saved.status_code in (302, 303), saved.text[:500]
    with plugin_context_for("terms") as ctx:
        assert [row["version"] for row in all_versions(ctx)] == [1]  # nobody has seen it yet
    owner.pages.get(saved.headers["Location"])  # the marketplace, as the browser shows it next
    with plugin_context_for("terms") as ctx:
        latest = all_versions(ctx)[0]
    # The text as the marketplace saved it (a browser sends CRLF; a text area keeps LF).
    assert (latest["version"], latest["text"]) == (2, "Version two.\n")
    assert latest["text_sha256"] == hashlib.sha256(b"Version two.\n").hexdigest()


def test_another_business_cannot_reach_this_page(terms, second_business, staff_login):
    spa_owner = staff_login("owner", business=second_business, email="spa@example.com")
    assert spa_owner.pages.get(CSV).status_code == 404
    assert spa_owner.pages.get("/admin/spa/terms/consents.csv").status_code == 404
