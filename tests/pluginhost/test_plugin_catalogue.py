"""A third-party plugin's own catalogue (tests/packages/bookwell-rest-day, through
``bookwell.hooks.i18n.catalogue``): its refusal, manifest and page read in French where the page
does, and in English through the JSON API; Bookwell's catalogue is not involved."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from bookwell.core.pluginhost.host import host_of
from bookwell.core.testing import csrf_token_of

TUESDAY_TEN = "2027-03-02T10:00:00+01:00"
FRENCH = {"Accept-Language": "fr"}


@pytest.fixture
def rest_on_tuesdays(app, enable_plugin):
    plugin = host_of(app).installed.get("rest_day")
    assert plugin is not None, "pip install ./tests/packages/bookwell-rest-day first"
    assert (plugin.source, plugin.status) == ("bookwell-rest-day", "ok")
    return enable_plugin("rest_day", weekday="tuesday")


def test_its_refusal_reads_in_french_on_a_page_and_in_english_in_the_api(
    app, make_client, rest_on_tuesdays
):
    client = make_client()
    api = client.http.post(
        client.bookings_url,
        json={
            "service_id": client.business.service_id,
            "provider_id": client.business.provider_id,
            "start": TUESDAY_TEN,
            "client": {"name": "Ann", "email": "ann@example.com"},
        },
        headers=FRENCH,
    )
    assert api.status_code == 403
    assert api.json["error"]["code"] == "rest_day"
    assert api.json["error"]["message"] == "We rest on Tuesday: please choose another day."
    page = app.test_client().get("/book/salon/rest_day/", headers=FRENCH)
    assert page.status_code == 200
    assert '<p id="rest-day">Salon est fermé le mardi.</p>' in page.text
    english = app.test_client().get("/book/salon/rest_day/?lang=en")
    assert '<p id="rest-day">Salon rests on Tuesday.</p>' in english.text


def test_the_booking_page_refuses_in_french(app, make_client, rest_on_tuesdays):
    business = make_client().business
    browser = app.test_client()
    url = (
        f"/book/salon/details?service={business.service_id}&provider={business.provider_id}"
        "&start=2027-03-02T10:00:00%2B01:00"
    )
    form = browser.get(url, headers=FRENCH)
    assert form.status_code == 200
    key = form.text.split('name="form_key" value="', 1)[1].split('"', 1)[0]
    refused = browser.post(
        url,
        data={
            "csrf_token": csrf_token_of(form),
            "form_key": key,
            "name": "Ann",
            "email": "ann@example.com",
        },
        headers=FRENCH,
    )
    assert "Nous sommes fermés le mardi : veuillez choisir un autre jour." in unescape(refused.text)


def test_its_manifest_reads_in_french_on_the_marketplace(owner, rest_on_tuesdays):
    shown = unescape(owner.pages.get("/admin/salon/marketplace", headers=FRENCH).text)
    assert "<h3>Jour de repos " in shown
    assert "Aucun rendez-vous le jour de repos hebdomadaire de l’établissement." in shown
    assert "Le jour de la semaine où personne ne réserve." in shown
    listed = {entry["name"]: entry for entry in owner.api.get("plugins", headers=FRENCH).json}
    assert listed["rest_day"]["title"] == "Rest day"


def test_the_guides_example_is_the_packages_own_code():
    """docs/plugins.md shows the plugin these tests run: every line of its example, in order."""
    root = Path(__file__).resolve().parent.parent.parent
    guide = (root / "docs" / "plugins.md").read_text()
    (example,) = [
        block
        for block in re.findall(r"^```python\n(.*?)^```", guide, re.M | re.S)
        if "texts = catalogue(__name__)" in block
    ]
    source = iter(
        (root / "tests/packages/bookwell-rest-day/bookwell_rest_day/__init__.py")
        .read_text()
        .splitlines()
    )
    for line in filter(None, example.splitlines()):
        assert line in source, f"not in the package's code, or not in its order: {line!r}"
