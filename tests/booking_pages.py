"""Walking the client's booking pages as a browser would: follow links, fill the details form
with its CSRF token, book. Shared by the page tests and the tests that book through the pages."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

BOOK = "/book/salon"


def inline_scripts(text: str) -> list[str]:
    """The page's scripts that are not a static file: under ``script-src 'self'`` a browser
    refuses them, so the page must have none (a ``<script src>`` with no body is allowed)."""
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", text, flags=re.S | re.I)
    unclosed = text.lower().count("<script") - len(scripts)
    return ["unclosed"] * unclosed + [
        attributes + body
        for attributes, body in scripts
        if body.strip() or "src=" not in attributes
    ]


def links(page) -> list[str]:
    return [html.unescape(href) for href in re.findall(r'href="([^"]+)"', page.text)]


def link_to(page, *parts: str) -> str:
    found = [href for href in links(page) if all(part in href for part in parts)]
    assert found, f"no link with {parts} in {links(page)}"
    return found[0]


def csrf_of(page) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)


def form_key_of(page) -> str:
    return re.search(r'name="form_key" value="([^"]+)"', page.text).group(1)


def details_url(business, start="2027-03-02T10:00:00+01:00", provider="any") -> str:
    return (
        f"{BOOK}/details?service={business.service_id}&provider={provider}"
        f"&start={start.replace('+', '%2B')}"
    )


def post_details(client, url, *, name="Ann", email="ann@example.com", follow=True, **extra):
    """Fill and send the details form at ``url``; a booking made answers 303 to its confirmation
    page, which is followed (``follow``) as a browser does."""
    form = client.get(url)
    assert form.status_code == 200
    data = {"csrf_token": csrf_of(form), "form_key": form_key_of(form), "name": name}
    data.update(email=email, **extra)
    answer = client.post(url, data=data)
    if follow and answer.status_code == 303:
        return client.get(answer.headers["Location"])
    return answer


def book_through_pages(client, business, **extra):
    page = post_details(client, details_url(business, provider=business.provider_id), **extra)
    assert page.status_code == 200, page.text
    manage = link_to(page, "/manage/")
    return page, manage


# --- reading a page as assistive technology does -------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list = field(default_factory=list)  # Elements and strings
    parent: Element | None = None

    def text(self) -> str:
        """Its text, as shown (spaces squeezed)."""
        return " ".join(_raw_text(self, spoken=False).split())

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants with ``tag`` whose attributes hold ``attrs`` (``class_`` for class: one of
        its classes)."""
        found = []
        for element in self.iter():
            if tag is not None and element.tag != tag:
                continue
            if all(_attr_matches(element, name, value) for name, value in attrs.items()):
                found.append(element)
        return found

    def find(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag}> with {attrs}"
        return found[0]

    def by_id(self, element_id: str) -> Element:
        return self.find(id=element_id)

    def accessible_name(self) -> str:
        """Its name as a screen reader reads it: aria-label, else its text less aria-hidden."""
        if "aria-label" in self.attrs:
            return self.attrs["aria-label"]
        return _spoken_text(self)


def _spoken_text(element: Element) -> str:
    return " ".join(_raw_text(element, spoken=True).split())


def _raw_text(element: Element, spoken: bool) -> str:
    parts = []
    for child in element.children:
        if isinstance(child, str):
            parts.append(child)
        elif not (spoken and child.attrs.get("aria-hidden") == "true"):
            parts.append(_raw_text(child, spoken))
    return "".join(parts)


def _attr_matches(element: Element, name: str, value: str) -> bool:
    name = name.rstrip("_").replace("_", "-")
    if name == "class":
        return value in element.attrs.get("class", "").split()
    return element.attrs.get(name) == value


class _TreeParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {name: value or "" for name, value in attrs}, parent=self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(
            Element(tag, {name: value or "" for name, value in attrs}, parent=self.current)
        )

    def handle_endtag(self, tag):
        element = self.current
        while element is not None and element.tag != tag:
            element = element.parent
        if element is not None and element.parent is not None:
            self.current = element.parent

    def handle_data(self, data):
        self.current.children.append(data)


def page_tree(page) -> Element:
    """The page (a response or its text) as a tree of elements."""
    parser = _TreeParser()
    parser.feed(page if isinstance(page, str) else page.text)
    parser.close()
    return parser.root
