"""Who opens which staff page, by role: owner, manager, staff working as a provider and staff
working as none, receptionist, platform support, another business's owner and nobody; then
what each reads there (a staff account only its provider's bookings), the client's record,
support's audited reading, and grants on one client opening only that client."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bookwell.core.testing import support_page_login

ANA_DAY = "2027-03-02"
LINKED, UNLINKED = "staff-with-provider", "staff"
ANONYMOUS, SUPPORT, OTHER = "anonymous", "support", "another-business"
CALLERS = ("owner", "manager", LINKED, UNLINKED, "receptionist", SUPPORT, OTHER, ANONYMOUS)
OK, LOGIN, FORBIDDEN, HIDDEN = 200, 302, 403, 404
STAFF_ROLES = ("owner", "manager", LINKED, UNLINKED, "receptionist")


def everyone(status_of_staff: int, *, support: int = LOGIN) -> dict[str, int]:
    return {
        **dict.fromkeys(STAFF_ROLES, status_of_staff),
        SUPPORT: support,
        OTHER: HIDDEN,
        ANONYMOUS: LOGIN,
    }


def only(*roles: str) -> dict[str, int]:
    return {**everyone(FORBIDDEN), **dict.fromkeys(roles, OK)}


# Each GET page (its path under /admin/salon) and what each caller gets. Ana's booking is of
# the provider the linked staff account works as; Ben's is not.
PAGES: dict[str, dict[str, int]] = {
    "/": everyone(OK, support=OK),
    f"/week?start={ANA_DAY}": everyone(OK, support=OK),
    "/bookings/{ana}": {**everyone(OK, support=OK), UNLINKED: FORBIDDEN},
    "/bookings/{ben}": {**everyone(OK, support=OK), UNLINKED: FORBIDDEN, LINKED: FORBIDDEN},
    "/clients/ann@example.com": everyone(OK, support=OK),
    "/bookings/new": everyone(OK),
    "/sessions": everyone(OK),
    "/services": only("owner", "manager"),
    "/providers": only("owner", "manager"),
    "/staff": only("owner", "manager"),
    "/business": only("owner"),
}


@pytest.fixture
def salon(app, tenant, staff_login, second_business, make_client, support_user, clock):
    """Every caller signed in to the pages, and two bookings of Ann: Ana's and Ben's."""
    browsers = {
        role: staff_login(role).pages for role in ("owner", "manager", "receptionist", "staff")
    }
    browsers[LINKED] = staff_login(
        "staff", email="linked@example.com", provider_id=tenant.provider_id
    ).pages
    browsers[SUPPORT] = support_user[1]
    browsers[OTHER] = staff_login("owner", business=second_business).pages
    browsers[ANONYMOUS] = app.test_client()
    ann = make_client("Ann")
    ana = ann.book(f"{ANA_DAY}T10:00:00+01:00")["reference"]
    ben = ann.book(f"{ANA_DAY}T11:00:00+01:00", provider_id=tenant.second_provider_id)
    return browsers, {"ana": ana, "ben": ben["reference"]}


@pytest.mark.parametrize("caller", CALLERS)
def test_each_staff_page_answers_each_role_as_the_table_says(salon, caller):
    browsers, references = salon
    problems = []
    for path, expected in PAGES.items():
        url = "/admin/salon" + path.format(**references)
        got = browsers[caller].get(url).status_code
        if got != expected[caller]:
            problems.append(f"{url} as {caller}: expected {expected[caller]}, got {got}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("caller", CALLERS)
def test_managing_a_booking_needs_to_read_it_and_bookings_manage(salon, caller, app):
    browsers, references = salon
    browser = browsers[caller]
    url = f"/admin/salon/bookings/{references['ben']}/cancel"
    answer = browser.post(url, data={"reason": "Closed"})  # no CSRF token: refused either way
    expected = {
        ANONYMOUS: LOGIN,
        SUPPORT: LOGIN,
        OTHER: HIDDEN,
        LINKED: FORBIDDEN,
        UNLINKED: FORBIDDEN,
    }.get(caller, 422)
    assert answer.status_code == expected


def test_a_staff_account_reads_only_its_providers_agenda(salon):
    browsers, references = salon
    day = browsers[LINKED].get(f"/admin/salon/?date={ANA_DAY}").text
    assert references["ana"] in day and references["ben"] not in day
    assert "Ana" in day and "<h2>Ben</h2>" not in day
    everyone_s = browsers["receptionist"].get(f"/admin/salon/?date={ANA_DAY}").text
    assert references["ana"] in everyone_s and references["ben"] in everyone_s
    week = browsers[LINKED].get(f"/admin/salon/week?start={ANA_DAY}").text
    assert references["ana"] in week and references["ben"] not in week


def test_a_staff_account_without_a_provider_sees_no_bookings_and_why(salon):
    browsers, references = salon
    for path in (f"/?date={ANA_DAY}", f"/week?start={ANA_DAY}", "/clients/ann@example.com"):
        page = browsers[UNLINKED].get("/admin/salon" + path).text
        assert "not linked to a provider" in page, path
        assert references["ana"] not in page and references["ben"] not in page, path
    book = browsers[UNLINKED].get("/admin/salon/bookings/new").text
    assert "not linked to a provider" in book and 'name="slot"' not in book


def test_the_clients_record_lists_what_the_viewer_may_read(salon, make_client):
    browsers, references = salon
    make_client("Bob").book(f"{ANA_DAY}T12:00:00+01:00")
    owner_s = browsers["owner"].get("/admin/salon/clients/ANN@example.com").text
    assert references["ana"] in owner_s and references["ben"] in owner_s
    assert "Bob" not in owner_s
    linked = browsers[LINKED].get("/admin/salon/clients/ann@example.com").text
    assert references["ana"] in linked and references["ben"] not in linked
    assert browsers["owner"].get("/admin/salon/clients/not-an-address").status_code == 404


def test_the_booking_page_links_to_the_clients_record(salon):
    browsers, references = salon
    page = browsers["owner"].get(f"/admin/salon/bookings/{references['ana']}").text
    assert 'href="/admin/salon/clients/ann@example.com"' in page


def test_supports_reading_is_audited_and_a_guard_refusal_closes_it(
    salon, audit_trail, enable_plugin, app
):
    browsers, references = salon
    support = browsers[SUPPORT]
    assert support.get(f"/admin/salon/bookings/{references['ana']}").status_code == OK
    assert support.get("/admin/salon/clients/ann@example.com").status_code == OK
    scopes = [entry.subject for entry in audit_trail(action="support.access")]
    assert scopes == ["scope:booking", "scope:client"]
    cancel_form = f'action="/admin/salon/bookings/{references["ana"]}/cancel"'
    assert cancel_form not in support.get(f"/admin/salon/bookings/{references['ana']}").text
    assert cancel_form in browsers["owner"].get(f"/admin/salon/bookings/{references['ana']}").text


def test_a_staff_account_books_only_in_its_own_agenda(salon, tenant, staff_login):
    from bookwell.core.testing import csrf_token_of

    browsers, _ = salon
    linked = browsers[LINKED]
    page = linked.get(f"/admin/salon/bookings/new?service={tenant.service_id}&day=2027-03-03")
    assert f'value="{tenant.provider_id}-' in page.text
    assert f'value="{tenant.second_provider_id}-' not in page.text
    epoch = int(datetime(2027, 3, 3, 9, 0, tzinfo=UTC).timestamp())  # 10:00 in Paris, free
    answer = linked.post(
        "/admin/salon/bookings/new",
        data={
            "csrf_token": csrf_token_of(page),
            "service": str(tenant.service_id),
            "day": "2027-03-03",
            "slot": f"{tenant.second_provider_id}-{epoch}",
            "name": "Zoe",
            "email": "zoe@example.com",
        },
    )
    assert answer.status_code == FORBIDDEN
    assert "only in your own agenda" in answer.text


def test_support_browser_login_helper_signs_in(app, support_user):
    user_id, browser = support_user
    assert browser.get("/support/").status_code == OK
    again, _ = support_page_login(app, "help@bookwell.example", "wrong password entirely")
    assert again.status_code != 302


def test_a_grant_on_one_client_opens_that_clients_bookings_only(
    salon, plugin_context_for, staff_login, make_client, audit_trail
):
    browsers, references = salon
    bob = make_client("Bob").book(f"{ANA_DAY}T12:00:00+01:00")["reference"]
    unlinked = browsers[UNLINKED]
    assert unlinked.get(f"/admin/salon/bookings/{references['ben']}").status_code == FORBIDDEN
    with plugin_context_for("reminders") as ctx:
        ctx.grants.give(
            permission="bookings.read",
            hours=1,
            reason="Emergency: Ann is in the waiting room",
            user_id=staff_login("staff").user_id,  # the unlinked account
            subject="client:ANN@example.com",
        )
    for reference in references.values():
        assert unlinked.get(f"/admin/salon/bookings/{reference}").status_code == OK
    assert unlinked.get(f"/admin/salon/bookings/{bob}").status_code == FORBIDDEN
    record = unlinked.get("/admin/salon/clients/ann@example.com").text
    assert references["ana"] in record and references["ben"] in record
    assert "not linked to a provider" not in record
    assert bob not in unlinked.get("/admin/salon/clients/bob@example.com").text
    # The agenda shows what the viewer reads: that client's bookings, nobody else's.
    day = unlinked.get(f"/admin/salon/?date={ANA_DAY}").text
    assert references["ana"] in day and references["ben"] in day and bob not in day
    [granted] = audit_trail(action="access.granted")
    # The trail names the client by pseudonym; its side table says who that is.
    subject = granted.details["subject"]
    assert subject.startswith("client:person:")
    assert granted.people[subject.removeprefix("client:")] == "ann@example.com"


def test_an_owner_links_a_staff_account_to_its_provider_on_its_page(
    salon, owner, staff_login, tenant, second_business, audit_trail, app
):
    browsers, references = salon
    member = staff_login("staff")
    url = f"/admin/salon/staff/{member.user_id}"
    form = browsers["owner"].get(url).text
    assert 'name="provider_id"' in form and ">Ana</option>" in form
    with app.app_context():
        from sqlalchemy import select

        from bookwell.core.storage import db
        from bookwell.core.storage.models import Provider

        spa_provider = db.session().scalar(
            select(Provider.id).where(Provider.tenant_id == second_business.tenant_id)
        )
    elsewhere = owner.submit(url, {"role": "staff", "active": "y", "provider_id": spa_provider})
    assert elsewhere.status_code == 422 and "Choose a provider" in elsewhere.text
    assert references["ana"] not in browsers[UNLINKED].get(f"/admin/salon/?date={ANA_DAY}").text

    linked = owner.submit(url, {"role": "staff", "active": "y", "provider_id": tenant.provider_id})
    assert linked.status_code == 302
    day = browsers[UNLINKED].get(f"/admin/salon/?date={ANA_DAY}").text
    assert references["ana"] in day and references["ben"] not in day
    changed = audit_trail(action="user.changed")[-1]
    assert changed.details["after"]["provider_id"] == tenant.provider_id
    assert audit_trail(action="staff.role_changed") == []  # the role did not change

    promoted = owner.submit(url, {"role": "receptionist", "active": "y", "provider_id": ""})
    assert promoted.status_code == 302
    [role_change] = audit_trail(action="staff.role_changed")
    assert role_change.details == {"old": "staff", "new": "receptionist"}
    assert role_change.actor == f"user:{owner.user_id}"
    assert references["ben"] in browsers[UNLINKED].get(f"/admin/salon/?date={ANA_DAY}").text


def test_an_invitation_may_name_the_provider(owner, tenant, app, audit_trail):
    answer = owner.submit(
        "/admin/salon/staff/new",
        {"email": "new@example.com", "role": "staff", "provider_id": tenant.provider_id},
    )
    assert answer.status_code == 302
    [created] = [
        entry for entry in audit_trail(action="user.created") if entry.details.get("provider_id")
    ]
    assert created.details == {"role": "staff", "provider_id": tenant.provider_id}
    bad = owner.submit(
        "/admin/salon/staff/new",
        {"email": "other@example.com", "role": "staff", "provider_id": "999999"},
    )
    assert bad.status_code == 422 and "Choose a provider" in bad.text


def test_only_an_owner_gives_or_takes_the_owner_role(manager, owner, staff_login, audit_trail):
    member = staff_login("staff")
    url = f"/admin/salon/staff/{member.user_id}"
    assert ">Owner</option>" not in manager.pages.get(url).text
    refused = manager.submit(url, {"role": "owner", "active": "y"})
    assert refused.status_code == 422
    demote = manager.submit(
        f"/admin/salon/staff/{owner.user_id}", {"role": "manager", "active": "y"}
    )
    assert demote.status_code == 422
    assert audit_trail(action="staff.role_changed") == []
    assert owner.submit(url, {"role": "owner", "active": "y"}).status_code == 302
    [change] = audit_trail(action="staff.role_changed")
    assert change.details == {"old": "staff", "new": "owner"}


def test_a_grant_opens_a_record_to_read_never_to_cancel_or_move(
    salon, plugin_context_for, staff_login, tenant
):
    """Emergency access is a look at a record: the staff member working as Ana's provider reads
    Ben's booking of Ann under a grant, but cancels and moves it neither on the API nor on the
    pages; their own provider's booking stays theirs to manage."""
    _, references = salon
    linked = staff_login("staff", email="linked@example.com", provider_id=tenant.provider_id)
    with plugin_context_for("reminders") as ctx:
        ctx.grants.give(
            permission="bookings.read",
            hours=1,
            reason="Ann is in the waiting room",
            user_id=linked.user_id,
            subject="client:ann@example.com",
        )
    ben = references["ben"]
    assert linked.api.get(f"bookings/{ben}").status_code == OK
    cancelled = linked.api.post(f"bookings/{ben}/cancel", json={"reason": "no"})
    assert cancelled.status_code == FORBIDDEN
    assert cancelled.get_json()["error"]["code"] == "forbidden"
    moved = linked.api.post(
        f"bookings/{ben}/reschedule",
        json={"start": f"{ANA_DAY}T15:00:00+01:00", "provider_id": tenant.second_provider_id},
    )
    assert moved.status_code == FORBIDDEN
    assert linked.api.get(f"bookings/{ben}").get_json()["status"] == "confirmed"
    page = linked.pages.post(f"/admin/salon/bookings/{ben}/cancel", data={"reason": "no"})
    assert page.status_code == FORBIDDEN
    # Their own provider's booking of the same client they still cancel.
    own = linked.api.post(f"bookings/{references['ana']}/cancel", json={"reason": "ill"})
    assert own.status_code == OK and own.get_json()["status"] == "cancelled"
