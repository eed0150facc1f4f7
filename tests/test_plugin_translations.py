"""The built-in plugins' manifests in French on the marketplace page: their titles,
descriptions, settings' labels and help, as ``lazy_gettext`` leaves them to be read in the
page's language; the JSON API and ``plugins list --json`` list the same in English."""

from __future__ import annotations

import json
from html import unescape

MARKET = "/admin/salon/marketplace"
FRENCH = {"Accept-Language": "fr"}
# Each built-in plugin's title, in French and in English.
TITLES = {
    "cancellation_policy": ("Conditions d’annulation", "Cancellation policy"),
    "hipaa": ("Mode HIPAA", "HIPAA mode"),
    "history_cleanup": ("Nettoyage de l’historique", "History cleanup"),
    "password_policy": ("Règles des mots de passe", "Password policy"),
    "reminders": ("Rappels de rendez-vous", "Appointment reminders"),
    "ssl": ("HTTPS obligatoire", "SSL enforcement"),
    "terms": ("Conditions générales", "Terms & Conditions"),
    "two_factor": (
        "Connexion en deux étapes (Google Authenticator)",
        "Two-step login (Google Authenticator)",
    ),
}


def test_the_marketplace_shows_the_built_in_plugins_in_french(owner):
    page = owner.pages.get(MARKET, headers=FRENCH)
    assert page.status_code == 200
    shown = unescape(page.text)
    for french, english in TITLES.values():
        assert f"<h3>{french} " in shown, french
        assert f"<h3>{english} " not in shown
    # A description, settings' labels and their help.
    assert "Des mots de passe longs, jamais un mot de passe courant" in shown
    assert "Longueur minimale" in shown and "Garder les archives pendant (jours)" in shown
    assert "Les archives plus anciennes sont supprimées : téléchargez" in shown
    english = unescape(owner.pages.get(MARKET, query_string={"lang": "en"}).text)
    assert "Minimum length" in english and "Keep archives for (days)" in english


def test_a_settings_list_of_roles_names_them_in_the_pages_language(owner):
    """password_policy's and two_factor's role lists: the stored values stay the role keys."""
    shown = unescape(owner.pages.get(MARKET, headers=FRENCH).text)
    assert 'value="owner"' in shown and 'value="receptionist"' in shown
    assert "> Propriétaire</label>" in shown and "> Réceptionniste</label>" in shown
    assert "> owner</label>" not in shown
    english = unescape(owner.pages.get(MARKET, query_string={"lang": "en"}).text)
    assert "> Owner</label>" in english and "> Receptionist</label>" in english


def test_the_api_and_the_command_line_list_them_in_english(owner, bookwell_cli):
    answer = owner.api.get("plugins", headers=FRENCH)
    assert answer.status_code == 200
    listed = {entry["name"]: entry for entry in answer.json}
    for name, (_french, english) in TITLES.items():
        assert listed[name]["title"] == english
    labels = [setting["label"] for setting in listed["password_policy"]["settings_schema"]]
    assert labels[0] == "Minimum length"
    result = bookwell_cli("plugins", "list", "--json")
    assert result.exit_code == 0, result.output
    printed = {entry["name"]: entry for entry in json.loads(result.output)}
    assert printed["history_cleanup"]["settings_schema"][0]["help"] == (
        "Bookings that ended longer ago are archived, then deleted (30 days at least)."
    )


def test_a_plugins_check_of_its_settings_answers_in_french_on_the_page(owner):
    owner.pages.get(MARKET, query_string={"lang": "fr"})
    refused = owner.submit(
        f"{MARKET}/settings", {"plugin": "terms", "setting-text": "  "}, form_on=MARKET
    )
    assert refused.status_code == 422
    assert "Rédigez vos conditions générales : elles ne peuvent pas être vides." in unescape(
        refused.text
    )
    api = owner.api.put("plugins/terms", json={"enabled": True, "settings": {"text": " "}})
    assert api.status_code == 422, api.json
    assert "Write your Terms & Conditions: they cannot be empty." in json.dumps(api.json)


def test_core_bounds_a_setting_in_french_on_the_page_and_in_english_in_the_api(owner):
    owner.pages.get(MARKET, query_string={"lang": "fr"})
    refused = owner.submit(
        f"{MARKET}/settings",
        {
            "plugin": "password_policy",
            "setting-min_length": "5",
            "setting-max_attempts": "5",
            "setting-lockout_minutes": "15",
            "setting-roles": "owner",
        },
        form_on=MARKET,
    )
    assert refused.status_code == 422
    assert "Longueur minimale doit être au moins 8" in unescape(refused.text)
    api = owner.api.put(
        "plugins/password_policy",
        json={"enabled": True, "settings": {"min_length": 5}},
        headers=FRENCH,
    )
    assert api.status_code == 422, api.json
    assert "Minimum length must be at least 8" in json.dumps(api.json)
