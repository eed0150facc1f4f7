"""A browser gets an error page in the site's dress with a way back; the API keeps its JSON."""

from __future__ import annotations

import logging

import pytest

WERKZEUG_TEXT = "The requested URL was not found on the server"


@pytest.fixture
def failing_app(make_app):
    app = make_app()

    def explode():
        raise RuntimeError("secret internals: password=hunter2")

    app.add_url_rule("/book/<slug>/explode", "explode", lambda slug: explode())
    app.add_url_rule("/explode", "explode_anywhere", explode)
    return app


def test_a_missing_page_says_so_in_html(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.content_type.startswith("text/html")
    page = response.get_data(as_text=True)
    assert "Page not found" in page and WERKZEUG_TEXT not in page


def test_a_missing_booking_page_of_a_business_is_in_its_theme_with_a_way_back(client, business):
    response = client.get("/book/salon/no-such-step")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert 'href="/book/salon/"' in page
    assert "/themes/default/static/" in page  # the theme's stylesheet: the business's dress


def test_an_unknown_business_gets_the_plain_page(client, business):
    response = client.get("/book/no-such-business/")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_a_missing_staff_page_links_back_to_the_staff_pages(client, business):
    response = client.get("/admin/salon/no-such-page")
    assert response.status_code == 404
    assert 'href="/admin/salon/"' in response.get_data(as_text=True)


def test_a_wrong_method_on_a_page_says_so_and_which_methods_work(client, business):
    response = client.delete("/book/salon/")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "does not accept that kind of request" in response.get_data(as_text=True)


def test_a_crash_shows_an_apology_and_never_the_trace(failing_app, business, caplog):
    client = failing_app.test_client()
    with caplog.at_level(logging.ERROR):
        for path in ("/explode", "/book/salon/explode"):
            response = client.get(path)
            assert response.status_code == 500
            page = response.get_data(as_text=True)
            assert "Something went wrong on our side" in page
            assert "hunter2" not in page and "Traceback" not in page
    assert "hunter2" in caplog.text  # the trace is in the log, for us


def test_the_api_keeps_its_json_errors(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_a_missing_trailing_slash_still_redirects(client, business):
    assert client.get("/book/salon").status_code in (301, 308)
