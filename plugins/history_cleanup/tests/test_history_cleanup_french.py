"""History cleanup's entry in the staff menu reads in the page's language: French with
``?lang=fr``, English otherwise (its manifest's texts are checked on the marketplace, in
tests/test_plugin_translations.py)."""

from __future__ import annotations

import html

MENU_LINK = 'href="/admin/salon/history_cleanup/"'


def menu_entry(page) -> str:
    text = html.unescape(page.text)
    start = text.index(MENU_LINK)
    return text[start : text.index("</a>", start)]


def test_the_menu_entry_reads_in_french(owner, enable_plugin):
    enable_plugin("history_cleanup")
    french = owner.pages.get("/admin/salon/", query_string={"lang": "fr"})
    assert french.status_code == 200
    assert menu_entry(french).endswith(">Nettoyage de l’historique")
    english = owner.pages.get("/admin/salon/", query_string={"lang": "en"})
    assert menu_entry(english).endswith(">History cleanup")
