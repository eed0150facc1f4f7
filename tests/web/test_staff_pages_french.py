"""Every staff page reads in French: rendered by the real app for an owner with ``?lang=fr``, no
sentence of the English page is left. A page's visible text (its text nodes and the attributes a
person reads or hears) is compared with the same page in English: a text found in both, once the
business's own data (names, e-mail addresses, references, the zone), the plugins' and themes'
own words and the numbers are taken out, is English that no translation call produced. So a
template string left unmarked fails here, whatever the catalogue test's scan of the sources
sees."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from conftest import add_staff_and_a_rival, booking_body, csrf_token_of, log_in_staff
from sqlalchemy import select

from bookwell.core.booking import catalogue
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, User

READ_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label", "aria-description"}
WORD = re.compile(r"[^\W\d_]{2,}")
# Words spelled alike in both languages: a French text may keep them. None is a sentence, so an
# unmarked sentence still leaves other words behind.
SAME_IN_BOTH = {
    "Bookwell",
    "E-mail",
    "Client",
    "Clients",
    "Description",
    "Action",
    "Format",
    "Logo",
    "Menu",
    "Source",
    "Version",
    "Invitation",
    "Notifications",
    "min",
    "UTC",
    "API",
    "SHA",
    "JSON",
    "CSV",
    # The language switch names each language in itself, on every page.
    "English",
    "Français",
}
SHARED_WORDS = re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, SAME_IN_BOTH)) + r")(?![\w-])")
# Machine labels the audit trail shows as data: ``user:3``, ``booking:AB12CD``, ``cli``.
MACHINE_LABEL = re.compile(r"\b[a-z_]+(?::[\w@.+\-]+)+")
# Blocks of a staff page whose texts another test checks (none since the booking flow's calendar,
# drawn inside the reschedule page, is translated too).
FOREIGN_BLOCKS: set[str] = set()


class VisibleText(HTMLParser):
    """A page's text nodes and read attributes, in order; ``<script>``, ``<style>`` and
    ``<code>`` (codes, hashes, JSON: for machines) left out."""

    SKIPPED = ("script", "style", "code")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.lang: str | None = None
        self._skipping: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang")
        classes = set((attributes.get("class") or "").split())
        if self._skipping or tag in self.SKIPPED or classes & FOREIGN_BLOCKS:
            if tag not in ("br", "input", "img", "meta", "link"):
                self._skipping.append(tag)
            return
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value:
                self.texts.append(value.strip())
        if tag == "input" and attributes.get("type") in ("submit", "button"):
            self.texts.append((attributes.get("value") or "").strip())

    def handle_endtag(self, tag):
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data):
        text = " ".join(data.split())
        if text and not self._skipping:
            self.texts.append(text)


def visible(html: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(html)
    return parser


def plugin_and_theme_words(app) -> list[str]:
    """What the installed plugins and themes write about themselves (titles, descriptions,
    settings' labels): theirs to translate, not the staff pages'."""
    words: list[str] = []
    with app.app_context():
        for name, installed in host_of().installed.items():
            words.append(name)
            manifest = installed.manifest
            if manifest is None:
                continue
            words += [manifest.title, manifest.description, manifest.author, manifest.category]
            words += [str(need).replace("_", " ") for need in getattr(manifest, "needs", ())]
            words += [str(item).replace("_", " ") for item in getattr(manifest, "breaks", ())]
            for setting in manifest.settings:
                words += [setting.label, setting.help or ""]
                words += [setting.default] if isinstance(setting.default, str) else []
                words += [str(choice) for choice in setting.choices or ()]
        themes = (
            app.extensions["bookwell.themes"]["themes"]
            if "bookwell.themes" in (app.extensions)
            else {}
        )
        words += [theme.title for theme in themes.values()]
    return [str(word) for word in words if word]


def english_left(english: list[str], french: list[str], data: list[str]) -> list[str]:
    """The French page's texts that the English page has too, word for word, and that still
    hold a word once the data and the words both languages share are taken out."""
    same = set(english)
    longest_first = sorted({item for item in data if item}, key=len, reverse=True)
    left = []
    for text in french:
        if text not in same:
            continue
        rest = MACHINE_LABEL.sub(" ", text)
        for item in longest_first:
            rest = rest.replace(item, " ")
        rest = SHARED_WORDS.sub(" ", rest)
        if WORD.search(rest):
            left.append(text)
    return left


@pytest.fixture
def site(make_app, business, clock):
    app = make_app()
    add_staff_and_a_rival(app, business, clock(), ("owner",))
    return app


def book(app, business, start, **options) -> str:
    response = app.test_client().post(
        f"/api/v1/tenants/{business.slug}/bookings",
        json=booking_body(business, start, **options),
    )
    assert response.status_code == 201, response.json
    return response.json["reference"]


@pytest.fixture
def filled(site, business, clock):
    """A business with a past booking, one to come, one cancelled, time off, a staff member
    invited and the owner's session; the pages then have something to say in every part."""
    ann = {"name": "Ann", "email": "ann@example.com", "phone": "+33 6 12 34 56 78"}
    past = book(site, business, "2027-03-01T09:00:00+01:00", client=ann)
    coming = book(
        site, business, "2027-03-03T10:00:00+01:00", client={**ann, "notes": "Short, please"}
    )
    gone = book(site, business, "2027-03-01T15:00:00+01:00", name="Cyd")
    with site.app_context(), db.write_transaction(site) as session:
        session.scalar(select(Booking).where(Booking.reference == gone)).status = "cancelled"
    with site.app_context():
        catalogue.add_time_off(
            site,
            tenant_id=business.tenant_id,
            provider_id=business.second_provider_id,
            starts_at=datetime(2027, 3, 1, 13, 0, tzinfo=UTC),
            ends_at=datetime(2027, 3, 1, 14, 0, tzinfo=UTC),
            reason="Dentist",
            actor=None,
            now=clock(),
        )
    clock.advance(hours=2)  # 11:00 in Paris: the 09:00 booking is over, an outcome to mark
    owner = log_in_staff(site, "owner@example.com")
    invite = owner.get("/admin/salon/staff/new")
    sent = owner.post(
        "/admin/salon/staff/new?lang=fr",
        data={
            "csrf_token": csrf_token_of(invite),
            "name": "Dee",
            "email": "dee@example.com",
            "role": "staff",
            "provider_id": "",
        },
    )
    assert sent.status_code == 302, sent.text
    with site.app_context():
        invited = db.session().scalar(select(User).where(User.email == "dee@example.com")).id
    return owner, {"past": past, "coming": coming, "invited": invited}


def staff_pages(business, made) -> dict[str, str]:
    slug = business.slug
    return {
        "day": f"/admin/{slug}/?date=2027-03-01",
        "week": f"/admin/{slug}/week?start=2027-03-01",
        "month": f"/admin/{slug}/month?month=2027-03",
        "clients": f"/admin/{slug}/clients",
        "client search": f"/admin/{slug}/clients?q=Ann",
        "client": f"/admin/{slug}/clients/ann@example.com",
        "past booking": f"/admin/{slug}/bookings/{made['past']}",
        "coming booking": f"/admin/{slug}/bookings/{made['coming']}",
        "new booking": f"/admin/{slug}/bookings/new?day=2027-03-02",
        "providers": f"/admin/{slug}/providers",
        "provider": f"/admin/{slug}/providers/{business.second_provider_id}",
        "new provider": f"/admin/{slug}/providers/new",
        "services": f"/admin/{slug}/services",
        "service": f"/admin/{slug}/services/{business.service_id}",
        "staff": f"/admin/{slug}/staff",
        "new staff": f"/admin/{slug}/staff/new",
        "edit staff": f"/admin/{slug}/staff/{made['invited']}",
        "sessions": f"/admin/{slug}/sessions",
        "audit": f"/admin/{slug}/audit",
        "business": f"/admin/{slug}/business",
        "brand": f"/admin/{slug}/business/brand",
        "marketplace": f"/admin/{slug}/marketplace",
    }


def the_data(app, business, made) -> list[str]:
    """The business's own words on its pages, the same in every language."""
    data = ["Salon", "Cut", "A cut.", "Ana", "Ben", "Ann", "Cyd", "Dee", "Dentist"]
    data += ["Short, please", "Europe/Paris", "EUR", "werkzeug", "localhost", business.slug]
    data += [made["past"], made["coming"], "ann@example.com", "cyd@example.com"]
    data += ["owner@example.com", "dee@example.com"]
    # Who acted, as the audit trail stores it and its filter takes it: labels, not words.
    data += ["anonymous", "cli"]
    return data + plugin_and_theme_words(app)


def compare(client, url: str, data: list[str]) -> tuple[list[str], str | None]:
    joiner = "&" if "?" in url else "?"
    english = client.get(f"{url}{joiner}lang=en")
    french = client.get(f"{url}{joiner}lang=fr")
    assert english.status_code == french.status_code == 200, (url, french.status_code)
    english_page, french_page = visible(english.text), visible(french.text)
    assert english_page.lang == "en", url
    return english_left(english_page.texts, french_page.texts, data), french_page.lang


def test_every_staff_page_reads_in_french(site, business, filled):
    owner, made = filled
    data = the_data(site, business, made)
    found = {}
    for name, url in staff_pages(business, made).items():
        left, lang = compare(owner, url, data)
        assert lang == "fr", f"{name}: <html lang={lang!r}>"
        if left:
            found[name] = left
    assert not found, f"English left on the French staff pages: {found}"


def test_the_login_pages_read_in_french(site, business):
    left, lang = compare(site.test_client(), f"/admin/{business.slug}/login", ["Salon"])
    assert lang == "fr" and not left, left


def test_platform_supports_home_reads_in_french(site, business, clock):
    from conftest import STAFF_PASSWORD

    from bookwell.core.access.users import create_user

    with site.app_context():
        create_user(
            site,
            tenant_id=None,
            email="help@example.com",
            role="support",
            password=STAFF_PASSWORD,
            now=clock(),
        )
    support = site.test_client()
    page = support.get("/support/login")
    answer = support.post(
        "/support/login",
        data={
            "csrf_token": csrf_token_of(page),
            "email": "help@example.com",
            "password": STAFF_PASSWORD,
        },
    )
    assert answer.status_code == 302, answer.text
    data = ["help@example.com", "werkzeug", "localhost"]
    left, lang = compare(support, "/support/", data)
    assert lang == "fr" and not left, left


def test_a_flash_message_and_a_refused_form_read_in_french(site, business, filled):
    """What the pages say after a change, and a form sent back with its errors."""
    owner, made = filled
    assert "Invitation envoyée à dee@example.com" in owner.get("/admin/salon/staff?lang=fr").text
    page = owner.get("/admin/salon/services/new?lang=fr")
    refused = owner.post(
        "/admin/salon/services/new?lang=fr",
        data={"csrf_token": csrf_token_of(page), "name": "", "duration_minutes": "0"},
    )
    assert refused.status_code == 422
    french = visible(refused.text)
    assert "Veuillez corriger ce qui est signalé" in french.texts
    assert any(text.startswith("Erreur :") for text in french.texts)
    assert not [text for text in french.texts if "This field is required" in text]


def test_the_comparison_finds_a_sentence_left_in_english():
    """The check itself: a text both pages show fails unless only data and shared words remain."""
    english = ["Skip to the content", "Ann · Cut", "Clients", "Salon", "user:3"]
    french = ["Skip to the content", "Ann · Cut", "Clients", "Salon", "user:3", "Aller"]
    assert english_left(english, french, ["Ann", "Cut", "Salon"]) == ["Skip to the content"]
    assert visible('<p>Hi <code>booking.created</code></p><img alt="Logo here">').texts == [
        "Hi",
        "Logo here",
    ]


def test_an_unmarked_template_string_fails_the_comparison(site, business, filled, tmp_path):
    """A string left out of ``_()`` in a staff template is found: the page is rendered from a
    copy of the template with one text unmarked."""
    owner, made = filled
    loader = site.jinja_env.loader
    original = site.jinja_env.get_or_select_template("admin/services.html")
    source = open(original.filename).read()
    assert '{{ _("Add a service") }}' in source
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "services.html").write_text(
        source.replace('{{ _("Add a service") }}', "Add a service")
    )
    from jinja2 import ChoiceLoader, FileSystemLoader

    site.jinja_env.loader = ChoiceLoader([FileSystemLoader(str(tmp_path)), loader])
    site.jinja_env.cache.clear()
    try:
        left, _lang = compare(owner, "/admin/salon/services", the_data(site, business, made))
    finally:
        site.jinja_env.loader = loader
        site.jinja_env.cache.clear()
    assert left == ["Add a service"]


def test_the_agenda_grids_name_days_and_months_in_french(site, business, filled):
    owner, _made = filled
    month = visible(owner.get("/admin/salon/month?month=2027-03&lang=fr").text).texts
    assert "mars 2027" in month and "Lun." in month and "Dim." in month
    week = visible(owner.get("/admin/salon/week?start=2027-03-01&lang=fr").text).texts
    assert "lun. 1 mars" in week and "dim. 7 mars" in week
    day = visible(owner.get("/admin/salon/?date=2027-03-01&lang=fr").text).texts
    assert "lundi 1 mars 2027" in day and "Absence : Dentist" in day
    coming = visible(owner.get(f"/admin/salon/bookings/{_made['coming']}?lang=fr").text).texts
    assert "mercredi 3 mars 2027, 10:00–10:30 (Europe/Paris)" in coming
    assert "30,00 €" in coming  # the no-break space read as a space


def test_core_refusals_on_the_staff_pages_read_in_french_and_stay_english_on_the_api(
    site, business, filled
):
    """Core's own checks (the catalogue's, the brand's) answer in the page's language; the
    JSON API keeps its English."""
    owner, _made = filled
    brand = owner.get("/admin/salon/business/brand?lang=fr")
    refused = owner.post(
        "/admin/salon/business/brand?lang=fr",
        data={
            "csrf_token": csrf_token_of(brand),
            "theme": "default",
            "accent": "#ffee88",
            "description": "",
            "action": "save",
        },
    )
    assert refused.status_code == 422
    assert re.search(r"#ffee88 est trop pâle .* 4,5:1", refused.text)
    provider = f"/admin/salon/providers/{business.provider_id}"
    page = owner.get(f"{provider}?lang=fr")
    off = owner.post(
        f"{provider}/time-off?lang=fr",
        data={
            "csrf_token": csrf_token_of(page),
            "starts_at": "2027-03-05T12:00",
            "ends_at": "2027-03-05T11:00",
            "reason": "",
        },
    )
    assert off.status_code == 422 and "Doit être après le début." in off.text
    api = site.test_client().post(
        "/api/v1/tenants/salon/bookings",
        json=booking_body(business, "2027-03-05T10:00:00+01:00", name=""),
        headers={"Accept-Language": "fr"},
    )
    assert api.status_code == 422 and api.json["error"]["message"].isascii()
