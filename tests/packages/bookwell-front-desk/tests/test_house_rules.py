"""House rules: staff of the chosen roles get a token restricted to accepting them, until they
have; through the login API, core's staff API, the plugin's own API view and the operator's
command."""

import pytest
from conftest import RULES, bearer, log_in, log_in_on_the_page

ACCEPT = "/api/v1/tenants/salon/front_desk/house_rules"


@pytest.fixture
def front_desk(staff_member, receptionist, enable_plugin):
    # The staff fixtures log in before the rules apply; the tests log in again themselves.
    return enable_plugin("front_desk", rules_roles=["staff"], house_rules_url=RULES)


def restricted_token(app, email="staff@example.com", business="salon"):
    answer = log_in(app, email, business=business)
    assert answer.status_code == 200, answer.json
    assert answer.json["scope"] == "house_rules", answer.json
    return answer.json["token"]


def test_a_login_before_accepting_is_restricted_to_the_house_rules(app, front_desk):
    answer = log_in(app, "staff@example.com")
    assert answer.status_code == 200
    login = answer.json
    assert (login["scope"], login["code"], login["role"]) == (
        "house_rules",
        "house_rules_pending",
        "staff",
    )
    assert login["details"] == {"house_rules": RULES, "version": 1, "accept": ACCEPT}
    assert RULES in login["message"]


def test_the_restricted_token_is_refused_by_cores_staff_api(app, front_desk):
    http, token = app.test_client(), restricted_token(app)
    for path in ("/api/v1/tenants/salon/plugins", "/api/v1/tenants/salon/bookings"):
        answer = http.get(path, headers=bearer(token))
        assert answer.status_code == 403, path
        assert answer.json["error"]["code"] == "house_rules_pending"


def test_the_marked_view_accepts_it_and_the_next_login_is_full(app, front_desk, audit_trail):
    http, token = app.test_client(), restricted_token(app)
    answer = http.post(ACCEPT, headers=bearer(token))
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "accepted" and answer.json["version"] == 1
    [entry] = audit_trail(action="plugin.front_desk.house_rules.accepted")
    # The address by pseudonym (the trail keeps the address itself where it can be erased).
    assert entry.details == {"email": entry.details["email"], "version": 1}
    assert entry.people == {entry.details["email"]: "staff@example.com"}
    # The restriction ends at the next login, not on the token that had it.
    assert http.get("/api/v1/tenants/salon/plugins", headers=bearer(token)).status_code == 403
    login = log_in(app, "staff@example.com").json
    assert login["scope"] == "tenant:salon" and "code" not in login
    assert (
        http.get("/api/v1/tenants/salon/plugins", headers=bearer(login["token"])).status_code == 200
    )


def test_accepting_twice_records_it_once(app, front_desk, owner, audit_trail):
    http, token = app.test_client(), restricted_token(app)
    assert http.post(ACCEPT, headers=bearer(token)).status_code == 200
    again = http.post(ACCEPT, headers=bearer(token))
    assert again.status_code == 409
    assert again.json["error"]["code"] == "nothing_to_accept"
    assert len(audit_trail(action="plugin.front_desk.house_rules.accepted")) == 1
    page = owner.pages.get("/admin/salon/front_desk/").get_data(as_text=True)
    assert page.count("<td>staff@example.com</td><td>1</td>") == 1
    assert "<td>staff@example.com</td><td>1</td><td>2027-03-01 09:00</td>" in page  # Paris time


def test_the_staff_login_page_says_what_to_do_and_signs_nobody_in(app, front_desk):
    answer, browser = log_in_on_the_page(app, "staff@example.com")
    assert answer.status_code == 403
    assert f"house rules of Salon (version 1, {RULES})" in answer.get_data(as_text=True)
    assert browser.get("/admin/salon/front_desk/").status_code == 302  # to the login page


def test_roles_that_need_not_accept_log_in_fully(app, front_desk, owner, manager):
    for email in ("receptionist@example.com", "owner@example.com", "manager@example.com"):
        assert log_in(app, email).json["scope"] == "tenant:salon"


def test_the_view_wants_a_bearer_of_this_business(app, front_desk, second_business, staff_login):
    http = app.test_client()
    assert http.post(ACCEPT).status_code == 401
    spa_staff = staff_login("staff", business=second_business)
    assert http.post(ACCEPT, headers=bearer(spa_staff.token)).status_code == 404


def test_a_new_version_of_the_rules_asks_everyone_again(app, front_desk, enable_plugin, owner):
    http = app.test_client()
    assert http.post(ACCEPT, headers=bearer(restricted_token(app))).status_code == 200
    enable_plugin("front_desk", rules_version=2)
    token = restricted_token(app)
    assert http.post(ACCEPT, headers=bearer(token)).json["version"] == 2
    assert log_in(app, "staff@example.com").json["scope"] == "tenant:salon"
    page = owner.pages.get("/admin/salon/front_desk/").get_data(as_text=True)
    assert "<td>staff@example.com</td><td>2</td>" in page
    assert "<td>staff@example.com</td><td>1</td>" in page


def test_accepting_at_one_business_does_not_count_at_another(
    app, front_desk, enable_plugin, second_business, staff_login
):
    staff_login("staff", business=second_business)  # staff@example.com at the spa too
    enable_plugin(
        "front_desk", business=second_business, rules_roles=["staff"], house_rules_url=RULES
    )
    assert app.test_client().post(ACCEPT, headers=bearer(restricted_token(app))).status_code == 200
    assert log_in(app, "staff@example.com").json["scope"] == "tenant:salon"
    spa = log_in(app, "staff@example.com", business="spa").json
    assert (spa["scope"], spa["code"]) == ("house_rules", "house_rules_pending")
    assert spa["details"]["accept"] == "/api/v1/tenants/spa/front_desk/house_rules"


def test_a_business_that_has_not_enabled_it_sees_no_difference(app, staff_member):
    answer = log_in(app, "staff@example.com").json
    assert answer["scope"] == "tenant:salon"
    http = app.test_client()
    assert http.post(ACCEPT, headers=bearer(answer["token"])).status_code == 404


def test_the_operator_revokes_an_acceptance(app, front_desk, bookwell_command, audit_trail):
    assert app.test_client().post(ACCEPT, headers=bearer(restricted_token(app))).status_code == 200
    done = bookwell_command(
        "front_desk", "revoke", "--tenant", "salon", "--email", "Staff@Example.com"
    )
    assert done.returncode == 0, done.stderr
    assert "staff@example.com will accept the house rules of Salon again" in done.stdout
    [entry] = audit_trail(action="plugin.front_desk.house_rules.revoked")
    assert entry.subject.startswith("staff:person:")
    assert entry.subject_email == "staff@example.com"
    restricted_token(app)  # asked again

    done = bookwell_command(
        "front_desk", "revoke", "--tenant", "salon", "--email", "staff@example.com"
    )
    assert done.returncode == 0 and "has accepted no house rules" in done.stdout
    done = bookwell_command("front_desk", "revoke", "--tenant", "nowhere", "--email", "a@b.example")
    assert done.returncode != 0 and "nowhere" in done.stderr
