"""The language of a page: the switch (kept in a cookie), else the browser's preference among
the languages Bookwell speaks, else the business's default, else English; and the dates, times,
prices and form errors written in it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from booking_pages import csrf_of, details_url, form_key_of
from flask import render_template

from bookwell.core.foundation import text
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant
from bookwell.core.web import forms, i18n

HOME = "/book/salon/"


def speaking(app, business, language: str) -> None:
    with db.write_transaction(app) as session:
        session.get(Tenant, business.tenant_id).language = language


def page_language(page) -> str:
    return re.search(r'<html lang="([^"]+)">', page.text)[1]


def test_a_page_speaks_the_business_default_to_a_browser_without_preference(app, client, business):
    assert page_language(client.get(HOME)) == "en"
    speaking(app, business, "fr")
    assert page_language(client.get(HOME)) == "fr"


def test_the_browser_preference_overrides_the_business_default_both_ways(app, client, business):
    speaking(app, business, "fr")
    assert page_language(client.get(HOME, headers={"Accept-Language": "en-US,en;q=0.9"})) == "en"
    speaking(app, business, "en")
    assert page_language(client.get(HOME, headers={"Accept-Language": "fr-CA,fr;q=0.9"})) == "fr"


def test_a_browser_asking_for_languages_bookwell_lacks_gets_the_business_default(
    app, client, business
):
    speaking(app, business, "fr")
    german = {"Accept-Language": "de-DE,de;q=0.9,it;q=0.5"}
    assert page_language(client.get(HOME, headers=german)) == "fr"
    # Second choices count: a German browser that also reads English gets English.
    assert page_language(client.get(HOME, headers={"Accept-Language": "de, en;q=0.5"})) == "en"


def test_the_switch_sticks_through_its_cookie_over_the_browser(app, business):
    client = app.test_client()
    english = {"Accept-Language": "en"}
    switched = client.get(HOME + "?lang=fr", headers=english)
    assert page_language(switched) == "fr"
    cookie = client.get_cookie(i18n.COOKIE)
    assert cookie is not None and cookie.value == "fr" and cookie.http_only
    assert page_language(client.get(HOME, headers=english)) == "fr"
    assert page_language(client.get(HOME + "?lang=en", headers=english)) == "en"
    assert client.get_cookie(i18n.COOKIE).value == "en"


def test_an_unsupported_switch_is_ignored_and_sets_no_cookie(app, client, business):
    speaking(app, business, "fr")
    page = client.get(HOME + "?lang=xx", headers={"Accept-Language": "en"})
    assert page_language(page) == "en"
    assert client.get_cookie(i18n.COOKIE) is None
    assert "Accept-Language" in page.headers["Vary"]


def test_the_staff_login_follows_the_browser_then_the_business(app, client, business):
    speaking(app, business, "fr")
    assert page_language(client.get("/admin/salon/login")) == "fr"
    login = client.get("/admin/salon/login", headers={"Accept-Language": "en"})
    assert page_language(login) == "en"


def test_validation_messages_are_french_on_a_french_page(app, client, business):
    speaking(app, business, "fr")
    url = details_url(business, provider=business.provider_id)
    form = client.get(url)
    sent = {"csrf_token": csrf_of(form), "form_key": form_key_of(form), "email": "not an address"}
    refused = client.post(url, data={**sent, "name": ""})
    assert refused.status_code == 422
    assert "Veuillez saisir votre nom." in refused.text
    assert "Veuillez saisir une adresse e-mail valide." in refused.text
    assert "Please enter" not in refused.text
    with_nul = client.post(url, data={**sent, "name": "Ann\x00"})
    assert "Veuillez écrire sur une seule ligne, sans caractères de contrôle." in with_nul.text
    # The same form in English says it in English.
    english = client.post(url, data={**sent, "name": ""}, headers={"Accept-Language": "en"})
    assert "Please enter your name." in english.text


def test_the_french_details_page_writes_the_time_and_price_the_french_way(app, client, business):
    speaking(app, business, "fr")
    page = client.get(details_url(business, provider=business.provider_id))
    assert "mardi 2 mars 2027, 10:00" in page.text
    assert "30,00\xa0€" in client.get(HOME).text  # the services and their prices


def test_the_api_keeps_its_english_messages_for_a_french_browser(app, client, business):
    speaking(app, business, "fr")
    body = {
        "service_id": business.service_id,
        "provider_id": business.provider_id,
        "start": "2027-03-02T10:00:00+01:00",
        "client": {"name": "Ann\x00", "email": "ann@example.com"},
    }
    answer = client.post(
        "/api/v1/tenants/salon/bookings", json=body, headers={"Accept-Language": "fr"}
    )
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "invalid"
    assert answer.json["error"]["fields"]["client.name"] == text.SINGLE_LINE_MESSAGE


def test_the_forms_say_the_standard_in_the_apis_words_in_english():
    assert str(forms.SINGLE_LINE_MESSAGE) == text.SINGLE_LINE_MESSAGE
    assert str(forms.MULTI_LINE_MESSAGE) == text.MULTI_LINE_MESSAGE


def test_the_language_switch_links_this_page_in_each_language(app, business):
    with app.test_request_context(HOME + "?service=3&lang=en", headers={"Accept-Language": "fr"}):
        switch = render_template("lang_switch.html")
    assert '<nav class="lang-switch" aria-label="Language">' in switch
    assert 'href="/book/salon/?service=3&amp;lang=fr" lang="fr" hreflang="fr">Français<' in switch
    assert 'lang="en" hreflang="en" aria-current="true">English<' in switch
    with app.test_request_context(HOME + "?lang=fr"):
        assert 'aria-label="Langue"' in render_template("lang_switch.html")


@pytest.mark.parametrize(
    ("language", "day", "moment", "weekday", "month"),
    [
        ("fr", "lundi 30 novembre 2026", "lundi 30 novembre 2026, 14:05", "lundi", "novembre 2026"),
        (
            "en",
            "Monday 30 November 2026",
            "Monday 30 November 2026, 14:05",
            "Monday",
            "November 2026",
        ),
    ],
)
def test_the_filters_write_dates_in_the_pages_language_and_the_businesss_zone(
    app, business, language, day, moment, weekday, month
):
    instant = datetime(2026, 11, 30, 13, 5, tzinfo=UTC)  # 14:05 in Paris
    template = app.jinja_env.from_string(
        "{{ t|long_day }}|{{ t|clock_time }}|{{ t|long_moment }}|{{ t|weekday_name }}"
        "|{{ t.date()|month_label }}|{{ cents|money(currency) }}|{{ current_locale }}"
    )
    with app.test_request_context(f"{HOME}?lang={language}"):
        app.preprocess_request()  # finds the tenant, and with it the zone
        shown = template.render(t=instant, cents=3000, currency="EUR").split("|")
    price = "30,00\xa0€" if language == "fr" else "€30.00"
    assert shown == [day, "14:05", moment, weekday, month, price, language]


def test_the_api_answers_in_english_but_knows_the_clients_language(app, business):
    from bookwell.core.foundation import locales

    speaking(app, business, "fr")
    with app.test_request_context("/api/v1/tenants/salon/services"):
        app.preprocess_request()
        assert locales.current_language() == "en"  # its messages
        assert locales.reader_language() == "fr"  # the client's mail
    with app.test_request_context(HOME, headers={"Accept-Language": "en"}):
        app.preprocess_request()
        assert locales.current_language() == locales.reader_language() == "en"
