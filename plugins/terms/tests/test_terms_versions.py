"""Every text of the terms is a version with its own page, kept forever; the page is safe."""

import hashlib
import threading
from html.parser import HTMLParser

import pytest

from bookwell.core.testing import InvalidSettings
from bookwell.plugins.terms.versions import all_versions, version_of

FIRST = "# Our terms\n\nPay on the day.\n"
SECOND = "# Our terms\n\nPay on the day. Cancel a day ahead.\n"


@pytest.fixture
def bookwell_settings():
    # The hooks' time limit is for slow plugins, not for a test machine shared by many runs: a
    # numbering that overran it would refuse a booking (or drop a link) these tests expect.
    return {"GUARD_TIMEOUT_SECONDS": 10}


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


def tags_of(html):
    """Every element of a page, as a browser would parse it: (tag, [(attribute, value)])."""
    parser = Tags()
    parser.feed(html)
    return parser.found


def requirements(client):
    answer = client.http.get(f"/api/v1/tenants/{client.business.slug}/booking-requirements")
    assert answer.status_code == 200, answer.json
    return answer.json["consents"]


def test_the_terms_cannot_be_switched_on_without_a_text(enable_plugin):
    with pytest.raises(InvalidSettings) as refused:
        enable_plugin("terms")
    assert "text" in refused.value.fields


def test_the_terms_cannot_be_emptied_once_on(enable_plugin):
    enable_plugin("terms", text=FIRST)
    with pytest.raises(InvalidSettings) as refused:
        enable_plugin("terms", text="  \n\t ")
    assert "text" in refused.value.fields


def test_the_api_names_the_current_versions_page(enable_plugin, client):
    enable_plugin("terms", text=FIRST)
    assert requirements(client) == [
        {
            "id": "terms",
            "label": "I accept the Terms & Conditions",
            "url": "http://127.0.0.1:8000/book/salon/terms/1",
        }
    ]


def test_an_edit_makes_a_new_version_and_the_old_page_keeps_the_old_text(enable_plugin, client):
    enable_plugin("terms", text=FIRST)
    assert requirements(client)[0]["url"].endswith("/book/salon/terms/1")
    enable_plugin("terms", text=SECOND)
    assert requirements(client)[0]["url"].endswith("/book/salon/terms/2")

    old = client.http.get("/book/salon/terms/1")
    new = client.http.get("/book/salon/terms/2")
    assert old.status_code == new.status_code == 200
    assert "Pay on the day." in old.text and "Cancel a day ahead." not in old.text
    assert "This is an earlier version" in old.text and 'href="/book/salon/terms/2"' in old.text
    assert "Cancel a day ahead." in new.text and "This is an earlier version" not in new.text


def test_a_new_text_is_numbered_when_its_page_is_first_opened(enable_plugin, client):
    enable_plugin("terms", text=FIRST)
    assert client.http.get("/book/salon/terms/1").status_code == 200
    enable_plugin("terms", text=SECOND)
    page = client.http.get("/book/salon/terms/2")
    assert page.status_code == 200 and "Cancel a day ahead." in page.text


def test_the_same_text_saved_again_is_the_same_version(enable_plugin, client):
    enable_plugin("terms", text=FIRST)
    requirements(client)
    enable_plugin("terms", text=SECOND)
    requirements(client)
    enable_plugin("terms", text=FIRST)
    assert requirements(client)[0]["url"].endswith("/terms/1")
    assert client.http.get("/book/salon/terms/3").status_code == 404


def test_the_proof_is_the_sha256_of_the_text_exactly_as_saved(enable_plugin, client, owner):
    text = "  Terms\r\n\r\n* one  \n* **two**\n\n"
    enable_plugin("terms", text=text)
    booking = client.book("2027-03-02T10:00:00+01:00", consents=["terms"])
    shown = owner.api.get(f"bookings/{booking['reference']}").json
    (consent,) = shown["consents"]
    assert consent["version"] == "1"
    assert consent["text_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    "path",
    [
        "/book/salon/terms/2",
        "/book/salon/terms/0",
        "/book/salon/terms/99999999999999999999",
        "/book/salon/terms/x",
    ],
)
def test_a_version_that_does_not_exist_is_not_found(enable_plugin, client, path):
    enable_plugin("terms", text=FIRST)
    assert client.http.get(path).status_code == 404


def test_the_page_renders_markdown_and_lets_no_script_through(enable_plugin, client):
    enable_plugin(
        "terms",
        text=(
            "## Payment\n\n**Pay** on the day. See [our site](https://example.com/a).\n\n"
            "<script>alert(1)</script>\n\n"
            "[click me](javascript:alert(1))\n\n"
            '<img src="x" onerror="alert(2)">\n\n'
            "![pixel](https://evil.example/p.png)\n\n"
            '<a href="https://example.com" onclick="alert(3)">raw link</a>\n'
        ),
    )
    page = client.http.get("/book/salon/terms/1")
    assert page.status_code == 200
    body = page.text
    assert "<h2>Payment</h2>" in body and "<strong>Pay</strong>" in body
    assert '<a href="https://example.com/a" rel="noopener noreferrer nofollow">our site</a>' in body
    tags = tags_of(body)
    # The theme's own script (a static file, the CSP allows no other) is not the terms' text.
    theme_script = ("script", [("src", "/themes/default/static/booking.js"), ("defer", None)])
    assert not [
        (tag, attributes)
        for tag, attributes in tags
        if tag in ("script", "img", "iframe") and (tag, attributes) != theme_script
    ]
    assert not [
        (tag, name) for tag, attributes in tags for name, _ in attributes if name.startswith("on")
    ]
    links = [value for tag, attributes in tags for name, value in attributes if name == "href"]
    assert not [link for link in links if "javascript" in (link or "").lower()]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body  # shown as text, never run


def test_the_page_is_in_the_business_booking_pages_style(enable_plugin, client):
    enable_plugin("terms", text=FIRST)
    page = client.http.get("/book/salon/terms/1")
    assert '<body class="book">' in page.text
    assert 'href="/book/salon/brand.css?v=' in page.text  # versioned: a changed brand is not stale
    assert "<title>Terms &amp; Conditions · Salon</title>" in page.text


def test_a_business_that_has_not_enabled_it_has_no_terms_pages(
    enable_plugin, client, second_business
):
    enable_plugin("terms", text=FIRST)
    assert client.http.get("/book/spa/terms/1").status_code == 404
    assert client.http.get("/book/nowhere/terms/1").status_code == 404


def test_each_business_sees_only_its_own_terms(
    enable_plugin, client, second_client, second_business
):
    enable_plugin("terms", text=FIRST)
    enable_plugin("terms", business=second_business, text="Spa rules: no phones.")
    assert "Pay on the day." in client.http.get("/book/salon/terms/1").text
    spa = client.http.get("/book/spa/terms/1").text
    assert "Spa rules" in spa and "Pay on the day." not in spa
    assert requirements(second_client)[0]["url"].endswith("/book/spa/terms/1")


def test_texts_numbered_at_the_same_moment_each_get_one_number(enable_plugin, plugin_context_for):
    enable_plugin("terms", text=FIRST)
    # Four new texts, each asked for twice: at most four inserts can beat any one asker, within
    # the plugin's tries.
    texts = [f"Terms, draft {n}.\n" for n in range(4)] * 2
    start = threading.Barrier(len(texts))
    numbered = {}
    with plugin_context_for("terms") as ctx:

        def number(text):
            start.wait()
            numbered.setdefault(text, set()).add(version_of(ctx, text)["version"])

        threads = [threading.Thread(target=number, args=(text,)) for text in texts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        rows = all_versions(ctx)
    assert all(len(numbers) == 1 for numbers in numbered.values())  # both askers agree
    assert sorted(row["version"] for row in rows) == list(range(1, 5))
    assert sorted(row["text"] for row in rows) == sorted(set(texts))
