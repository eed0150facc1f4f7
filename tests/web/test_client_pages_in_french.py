"""Every page a client reads, in French: the booking flow in each built-in theme, the manage page
and its steps, the client account and password pages, the landing page and the error pages.

Each page is rendered twice by the real app, with ``?lang=en`` and with ``?lang=fr``, and every
text a person reads or hears (text nodes, the title, ``alt``/``title``/``aria-label``/
``placeholder``, the meta description) is compared: a French page holding a text identical to
its English twin left it untranslated. The business's own data (its name, services, people,
address, the booking's reference) is taken out first, and the few words French writes as English
does are listed in ``SAME_IN_BOTH``; anything else, a string left out of a template's ``_()`` or
a Python message left out of ``gettext``, fails the test with the page and the text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from booking_pages import BOOK, csrf_of, details_url, form_key_of, link_to, links
from client_signups import accounts_on, confirm, newest_link, sign_up

from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant
from bookwell.core.web.error_pages import error_page

PASSWORD = "a long enough password"
ADDRESS = "12 rue de la Paix, 75002 Paris"
PHONE = "+33 1 23 45 67 89"
# The business's own words (testing.open_business and the address above): the same in every
# language, as its owner wrote them.
BUSINESS_DATA = ("Salon", "A cut.", "Cut", "Ana", "Ben", ADDRESS, PHONE, "Europe/Paris")
# Words French writes as English does; whole text nodes only.
SAME_IN_BOTH = {"E-mail", "Contact", "English", "Français", "Bookwell", "Outlook"}
# A duration: French abbreviates minutes as English does.
MINUTES = re.compile(r"^\d+ min$")
READ_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label"}
WORD = re.compile(r"[^\W\d_]{2,}")
THEMES = ("default", "minimal", "clinic")


class _ReadText(HTMLParser):
    """What a person reads or hears on a page, one string per text node or read attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skipped = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "code"):  # code (an address's shape) is no language
            self._skipped += 1
        values = dict(attrs)
        for name in READ_ATTRIBUTES:
            if values.get(name):
                self.found.append(values[name])
        if tag == "meta" and values.get("name") == "description":
            self.found.append(values.get("content") or "")
        if tag == "input" and values.get("type") in ("submit", "button"):
            self.found.append(values.get("value") or "")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code"):
            self._skipped -= 1

    def handle_data(self, data):
        if not self._skipped:
            self.found.append(data)


def read_text(html: str, data: tuple[str, ...]) -> set[str]:
    parser = _ReadText()
    parser.feed(html)
    texts = set()
    for text in parser.found:
        for value in sorted(data, key=len, reverse=True):
            text = text.replace(value, " ")
        text = " ".join(text.split())
        if WORD.search(text) and text not in SAME_IN_BOTH and not MINUTES.match(text):
            texts.add(text)
    return texts


def with_language(path: str, language: str) -> str:
    return f"{path}{'&' if urlsplit(path).query else '?'}lang={language}"


class Pages:
    """Asks for each page in both languages and keeps what the French one left in English."""

    def __init__(self, client, data: tuple[str, ...]) -> None:
        self.client, self.data = client, data
        self.untranslated: dict[str, set[str]] = {}
        self.seen: list[str] = []

    def compare(self, name: str, english, french) -> None:
        assert english.status_code == french.status_code, (name, english.status_code)
        english_page, french_page = english.get_data(as_text=True), french.get_data(as_text=True)
        assert '<html lang="fr"' in french_page and '<html lang="en"' in english_page, name
        left = read_text(french_page, self.data) & read_text(english_page, self.data)
        if left:
            self.untranslated[name] = left
        self.seen.append(name)

    def get(self, path: str, status: int = 200, name: str | None = None):
        english = self.client.get(with_language(path, "en"))
        french = self.client.get(with_language(path, "fr"))
        assert french.status_code == status, (path, french.status_code, french.text[:300])
        self.compare(name or path, english, french)
        return french

    def post(self, path: str, data: dict, status: int, name: str | None = None):
        """The same refused form sent in each language (a fresh CSRF token each time)."""
        answers = []
        for language in ("en", "fr"):
            page = self.client.get(with_language(path, language))
            answers.append(
                self.client.post(
                    with_language(path, language), data={"csrf_token": csrf_of(page), **data}
                )
            )
        assert answers[1].status_code == status, (path, answers[1].status_code)
        self.compare(name or f"POST {path}", *answers)
        return answers[1]

    def assert_all_french(self) -> None:
        report = "\n".join(f"{page}: {sorted(texts)}" for page, texts in self.untranslated.items())
        assert not self.untranslated, "left in English on the French pages:\n" + report


def dress(app, business, theme: str) -> None:
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, business.tenant_id)
        tenant.theme, tenant.address, tenant.phone = theme, ADDRESS, PHONE


def book(client, business) -> str:
    """Book through the details form (in English: the language does not matter here); the
    confirmation page's address."""
    url = details_url(business, provider=business.provider_id)
    form = client.get(url)
    data = {"csrf_token": csrf_of(form), "form_key": form_key_of(form), "name": "Ann"}
    answer = client.post(url, data={**data, "email": "ann@example.com"})
    assert answer.status_code == 303, answer.text
    return answer.headers["Location"]


@pytest.mark.parametrize("theme", THEMES)
def test_the_booking_flow_and_the_manage_page_speak_french(app, client, business, theme):
    dress(app, business, theme)
    pages = Pages(client, BUSINESS_DATA)
    choice = f"service={business.service_id}"
    pages.get(f"{BOOK}/")
    pages.get(f"{BOOK}/?{choice}")
    for provider in ("any", business.provider_id):
        pages.get(f"{BOOK}/day?{choice}&provider={provider}")
        pages.get(f"{BOOK}/day?{choice}&provider={provider}&month=2027-04")
    pages.get(f"{BOOK}/day?{choice}&provider=any&month=2020-01", name="a month gone by")
    pages.get(f"{BOOK}/slots?{choice}&provider=any&date=2027-03-02")
    pages.get(f"{BOOK}/slots?{choice}&provider=any&date=2027-03-02&taken=1")
    pages.get(details_url(business))
    pages.post(details_url(business), {"name": "", "email": "not an address"}, 422)

    confirmed = book(client, business)
    reference = urlsplit(confirmed).path.rsplit("/", 1)[1]
    pages.data = (*BUSINESS_DATA, reference)
    manage = link_to(pages.get(confirmed, name="confirmed"), "/manage/")
    pages.get(manage, name="manage")
    pages.get(f"{manage}&step=cancel", name="cancel step")
    day = pages.get(f"{manage}&step=reschedule", name="reschedule: month")
    day_link = next(href for href in links(day) if "step=reschedule" in href and "date=" in href)
    times = pages.get(day_link, name="reschedule: times")
    time_link = next(href for href in links(times) if "start=" in href)
    pages.get(time_link, name="reschedule: confirm")
    pages.get(f"{manage}&done=rescheduled", name="moved")
    pages.get(f"{manage}&done=cancelled", name="cancelled")
    pages.get(f"{BOOK}/day?service=999999&provider=any", status=404, name="not found")

    # Cancelled, then cancelled again: the refusal the domain words.
    data = {
        "csrf_token": csrf_of(client.get(f"{manage}&step=cancel")),
        "token": parse_qs(urlsplit(manage).query)["token"][0],
    }
    cancel = f"{BOOK}/manage/{reference}/cancel"
    assert client.post(cancel, data=data).status_code in (302, 303)
    pages.get(manage, name="manage, cancelled")
    twice = [client.post(with_language(cancel, language), data=data) for language in ("en", "fr")]
    assert twice[1].status_code == 409
    pages.compare("cancelled twice", *twice)
    pages.assert_all_french()
    assert len(pages.seen) == 22


@pytest.mark.parametrize("theme", THEMES)
def test_the_client_account_pages_speak_french(app, client, business, theme):
    dress(app, business, theme)
    accounts_on(app, business.tenant_id)
    account = f"{BOOK}/account"
    pages = Pages(client, (*BUSINESS_DATA, "ann@example.com"))
    pages.get(f"{account}/register")
    pages.post(f"{account}/register", {"name": "", "email": "nope", "password": "short"}, 422)
    pages.get(f"{account}/login")
    pages.post(f"{account}/login", {"email": "ann@example.com", "password": "wrong one"}, 401)
    pages.post(f"{account}/login", {"email": "", "password": ""}, 422, name="empty login")
    pages.get(f"{account}/forgot")
    pages.get(f"{account}/resend")
    pages.get(f"{account}/sent/verify")
    pages.get(f"{account}/sent/reset")
    pages.get(f"{account}/verify/not-a-token", status=410)
    pages.get(f"{account}/reset/not-a-token", status=410)

    assert sign_up(client, "ann@example.com", PASSWORD).status_code == 201
    verify = newest_link(app, "ann@example.com")
    pages.get(verify)
    pages.post(verify, {"password": "not the one chosen"}, 401, name="verify refused")
    assert confirm(client, verify, PASSWORD).status_code == 302
    pages.get(f"{account}/")
    pages.get(f"{account}/password")
    pages.post(
        f"{account}/password",
        {"current_password": PASSWORD, "new_password": "short", "confirm": "other"},
        422,
    )
    forgot = client.get(f"{account}/forgot")
    asked = client.post(
        f"{account}/forgot", data={"csrf_token": csrf_of(forgot), "email": "ann@example.com"}
    )
    assert asked.status_code == 302
    reset = newest_link(app, "ann@example.com", kind="reset")
    pages.get(reset)
    pages.post(reset, {"password": "short", "confirm": "short"}, 422, name="reset refused")
    pages.assert_all_french()


def test_the_site_and_staff_password_pages_and_the_error_pages_speak_french(app, client, business):
    pages = Pages(client, BUSINESS_DATA)
    pages.get("/")
    pages.get("/staff?business=Not a name!", status=422)
    pages.get("/nowhere", status=404)
    pages.get(f"{BOOK}/nowhere", status=404)
    pages.get("/admin/salon/forgot")
    pages.get("/admin/salon/forgot/sent")
    pages.get("/admin/salon/reset/not-a-token", status=410)
    pages.get("/admin/salon/invite/not-a-token", status=410)
    pages.get("/support/forgot")
    english, french = client.post("/?lang=en"), client.post("/?lang=fr")
    pages.compare("405", english, french)
    assert french.status_code == 405
    # The pages no request reaches on demand: a refusal, too many requests, our own failure.
    for status in (403, 429, 500, 503):
        for path in ("/", f"{BOOK}/"):
            answers = []
            for language in ("en", "fr"):
                with app.test_request_context(with_language(path, language)):
                    answers.append(error_page(status))
            pages.compare(f"{status} at {path}", *answers)
    pages.assert_all_french()


def test_the_comparison_catches_a_text_left_out_of_the_catalogue(app, client, business):
    """The check itself: a template's text outside ``_()`` reads the same in both languages."""
    pages = Pages(client, BUSINESS_DATA)
    english = client.get("/?lang=en")
    french = client.get("/?lang=fr")
    french.set_data(french.get_data().replace(b"</main>", b"<p>Book a table</p></main>"))
    english.set_data(english.get_data().replace(b"</main>", b"<p>Book a table</p></main>"))
    pages.compare("/", english, french)
    assert pages.untranslated == {"/": {"Book a table"}}
    assert read_text('<p title="Salon">Cut · Ana</p><p>E-mail</p>', BUSINESS_DATA) == set()
