"""Walking the client's booking pages as a browser would: follow links, fill the details form
with its CSRF token, book. Shared by the page tests and the tests that book through the pages."""

from __future__ import annotations

import html
import re

BOOK = "/book/salon"


def inline_scripts(text: str) -> list[str]:
    """The page's scripts that are not a static file: under ``script-src 'self'`` a browser
    refuses them, so the page must have none (a ``<script src>`` with no body is allowed)."""
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", text, flags=re.S | re.I)
    unclosed = text.lower().count("<script") - len(scripts)
    return ["unclosed"] * unclosed + [
        attributes + body for attributes, body in scripts if body.strip() or "src=" not in attributes
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
