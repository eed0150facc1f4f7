"""Two-step login in French on the pages (a wrong code, the login's further step, a check that
cannot run) and in English through the JSON API, whatever the browser prefers."""

from __future__ import annotations

import html
import re

from two_factor_kit import code_at, enrol

from bookwell.core.testing import STAFF_PASSWORD, csrf_token_of

PAGE = "/admin/salon/two_factor/"
FRENCH = {"Accept-Language": "fr"}


def wrong_code(secret, clock) -> str:
    return f"{(int(code_at(secret, clock)) + 7) % 1_000_000:06d}"


def french_login(app, email):
    """The staff login page with ``?lang=fr`` (the switch, kept in a cookie): the answer to its
    form, and the browser."""
    browser = app.test_client()
    form = browser.get("/admin/salon/login", query_string={"lang": "fr"})
    data = {"csrf_token": csrf_token_of(form), "email": email, "password": STAFF_PASSWORD}
    return browser.post("/admin/salon/login", data=data), browser


def test_a_wrong_code_on_the_set_up_page_reads_in_french(staff_member, enable_plugin, clock):
    enable_plugin("two_factor")
    page = staff_member.pages.get(PAGE, query_string={"lang": "fr"})
    assert page.status_code == 200
    secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page.text).group(1)
    wrong = wrong_code(secret, clock)
    refused = staff_member.submit(f"{PAGE}confirm", {"code": wrong}, form_on=PAGE)
    assert refused.status_code == 422
    assert (
        "Ce code n’est pas le bon : saisissez le code que l’application affiche maintenant."
        in html.unescape(refused.text)
    )
    malformed = staff_member.submit(f"{PAGE}confirm", {"code": "12345x!"}, form_on=PAGE)
    assert "Un code est fait de chiffres (ou de lettres et d’un tiret)." in html.unescape(
        malformed.text
    )


def test_the_login_asks_for_the_code_in_french_and_the_api_in_english(
    app, staff_member, enable_plugin, clock
):
    enable_plugin("two_factor")
    secret, _codes = enrol(staff_member.api, clock)
    asked, browser = french_login(app, staff_member.email)
    assert asked.status_code == 200
    shown = html.unescape(asked.text)
    assert "Code à 6 chiffres de votre application d’authentification (ou un code de secours)" in (
        shown
    )
    wrong = browser.post(
        "/admin/salon/login/step",
        data={"csrf_token": csrf_token_of(asked), "answer": wrong_code(secret, clock)},
    )
    assert wrong.status_code == 401
    assert "Ce code n’est pas le bon, ou a déjà servi. Saisissez le code actuel." in (
        html.unescape(wrong.text)
    )
    api = app.test_client().post(
        "/api/v1/tenants/salon/auth/login",
        json={
            "email": staff_member.email,
            "password": STAFF_PASSWORD,
            "otp": wrong_code(secret, clock),
        },
        headers=FRENCH,
    )
    assert api.status_code == 401
    assert api.json["error"]["code"] == "otp_invalid"
    assert api.json["error"]["message"] == (
        "That code is not right, or was already used. Enter the current code."
    )
    assert api.json["error"]["challenge"]["label"] == (
        "6-digit code from your authenticator app (or a recovery code)"
    )


def test_a_check_that_cannot_run_refuses_the_login_in_french(
    app, staff_member, enable_plugin, clock, plugin_context_for
):
    enable_plugin("two_factor")
    secret, _ = enrol(staff_member.api, clock)
    asked, browser = french_login(app, staff_member.email)
    with plugin_context_for("two_factor") as ctx:
        ctx.store.set(f"secret:{staff_member.user_id}", "not-an-encrypted-secret")
    refused = browser.post(
        "/admin/salon/login/step",
        data={"csrf_token": csrf_token_of(asked), "answer": code_at(secret, clock)},
    )
    assert refused.status_code == 503
    assert (
        "Une vérification de sécurité (two_factor) a échoué : l’opération a donc été refusée."
        in html.unescape(refused.text)
    )
    api = app.test_client().post(
        "/api/v1/tenants/salon/auth/login",
        json={
            "email": staff_member.email,
            "password": STAFF_PASSWORD,
            "otp": code_at(secret, clock),
        },
        headers=FRENCH,
    )
    assert api.status_code == 503 and api.json["error"]["code"] == "plugin_failed"
    assert api.json["error"]["message"] == (
        "A safety check (two_factor) failed, so this was refused. Please try again later."
    )
