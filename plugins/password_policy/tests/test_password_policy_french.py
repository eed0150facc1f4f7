"""The policy's words in French on the pages (``?lang=fr``, ``Accept-Language: fr``), and the
same refusals in English through the JSON API, whatever the browser prefers."""

from __future__ import annotations

import html

from bookwell.core.testing import STAFF_PASSWORD, csrf_token_of

PASSWORD_PAGE = "/admin/salon/password"
WRONG = "not the password at all"  # noqa: S105 - a wrong guess, on purpose
FRENCH = {"Accept-Language": "fr"}


def french_login(app, email, password):
    """The staff login page, in French by the browser's preference: the answer to its form."""
    browser = app.test_client()
    form = browser.get("/admin/salon/login", headers=FRENCH)
    data = {"csrf_token": csrf_token_of(form), "email": email, "password": password}
    return browser.post("/admin/salon/login", data=data, headers=FRENCH)


def test_a_too_short_password_is_refused_in_french_on_the_password_page(
    staff_member, enable_plugin
):
    enable_plugin("password_policy")
    page = staff_member.pages.get(PASSWORD_PAGE, query_string={"lang": "fr"})
    # The rules beside the field, before anyone types: core's, then the policy's.
    shown = html.unescape(page.text)
    assert "Au moins 8 caractères (au plus 1\u202f024) ;" in shown
    assert "Au moins 15 caractères ; les longues phrases de passe sont bienvenues" in shown
    assert "Sans votre adresse e-mail, votre nom ou le nom de l’établissement dedans." in shown
    short = "plum orchard"
    refused = staff_member.submit(
        PASSWORD_PAGE,
        {"current_password": STAFF_PASSWORD, "new_password": short, "confirm": short},
    )
    assert refused.status_code == 422
    assert "Ce mot de passe n’est pas accepté : Utilisez au moins 15 caractères." in html.unescape(
        refused.text
    )


def test_the_api_refuses_the_same_password_in_english(staff_member, enable_plugin):
    enable_plugin("password_policy")
    short = "plum orchard"
    answer = staff_member.api.post(
        "/api/v1/auth/password",
        json={"current_password": STAFF_PASSWORD, "new_password": short},
        headers=FRENCH,
    )
    assert answer.status_code == 422, answer.json
    assert answer.json["error"]["fields"]["new_password"] == [
        "This password is not accepted: Use at least 15 characters."
    ]


def test_a_lock_is_explained_in_french_on_the_login_page(app, staff_member, enable_plugin):
    enable_plugin("password_policy", max_attempts=3)
    for _ in range(3):
        wrong = french_login(app, "staff@example.com", WRONG)
        assert wrong.status_code == 401
        assert "L’e-mail ou le mot de passe n’est pas le bon." in html.unescape(wrong.text)
    locked = french_login(app, "staff@example.com", STAFF_PASSWORD)
    assert locked.status_code == 401
    assert (
        "Trop de tentatives échouées : la connexion est verrouillée jusqu’au "
        "2027-03-01 09:15 CET." in html.unescape(locked.text)
    )
    api = app.test_client().post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "staff@example.com", "password": STAFF_PASSWORD},
        headers=FRENCH,
    )
    assert api.status_code == 401 and api.json["error"]["code"] == "locked"
    assert api.json["error"]["message"].startswith(
        "Too many failed attempts: logging in is locked until 2027-03-01 09:15 CET."
    )
