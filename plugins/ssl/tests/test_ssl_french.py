"""The refusal of plain HTTP in French on a page (by the browser's preference), in English
through the JSON API; and the floor of HSTS's max-age explained in French on the
marketplace."""

from __future__ import annotations

import html

import pytest

import bookwell.plugins.ssl as ssl_plugin
from bookwell.core.testing import STAFF_PASSWORD, csrf_token_of

HTTP, HTTPS = "http://localhost", "https://localhost"
FRENCH = {"Accept-Language": "fr"}
REFUSED_IN_FRENCH = (
    "Cet établissement n’accepte que les connexions sécurisées (HTTPS) ; rien n’a été fait. "
    "Veuillez utiliser son adresse en https:// et réessayer."
)


@pytest.fixture
def https_only(owner, enable_plugin):
    return enable_plugin("ssl")


def test_a_login_form_over_plain_http_is_refused_in_french(https_only, app):
    browser = app.test_client()
    form = browser.get("/admin/salon/login", base_url=HTTPS, headers=FRENCH)
    answer = browser.post(
        "/admin/salon/login",
        data={
            "csrf_token": csrf_token_of(form),
            "email": "owner@example.com",
            "password": STAFF_PASSWORD,
        },
        base_url=HTTP,
        headers=FRENCH,
    )
    assert answer.status_code == 403 and answer.mimetype == "text/html"
    assert REFUSED_IN_FRENCH in html.unescape(answer.text)


def test_the_api_refuses_plain_http_in_english(https_only, app):
    answer = app.test_client().post(
        "/api/v1/tenants/salon/auth/login",
        json={"email": "owner@example.com", "password": STAFF_PASSWORD},
        base_url=HTTP,
        headers=FRENCH,
    )
    assert answer.status_code == 403
    assert answer.json["error"]["code"] == "https_required"
    assert answer.json["error"]["message"].startswith(
        "This business takes requests over a secure connection (HTTPS) only"
    )


def test_a_short_max_age_is_refused_in_french_on_the_marketplace(owner):
    market = "/admin/salon/marketplace"
    owner.pages.get(market, query_string={"lang": "fr"})
    refused = owner.submit(
        f"{market}/settings", {"plugin": "ssl", "setting-hsts_max_age": "60"}, form_on=market
    )
    assert refused.status_code == 422
    assert "La durée HSTS max-age doit être d’au moins 31536000 secondes (un an)" in html.unescape(
        refused.text
    )


def _boom(*args, **kwargs):
    raise RuntimeError("boom")


def test_a_failing_header_fails_closed_in_french_on_a_page(https_only, app, monkeypatch):
    monkeypatch.setattr(ssl_plugin, "hsts_header", _boom)
    page = app.test_client().get("/book/salon/", base_url=HTTPS, headers=FRENCH)
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "Une fonction de cet établissement ne marche pas ; veuillez réessayer plus tard." in (
        html.unescape(page.text)
    )
    api = app.test_client().get("/api/v1/tenants/salon/services", base_url=HTTPS, headers=FRENCH)
    assert api.status_code == 503 and api.json["error"]["code"] == "plugin_failed"
    assert api.json["error"]["message"] == (
        "A feature of this business is not working; please try later."
    )
