"""The theme as its author tests it: installed, listed, and drawing a business's pages."""

import json


def test_the_theme_is_installed_and_listed_with_its_package(bookwell_cli):
    listed = json.loads(bookwell_cli("themes", "list", "--json").output)
    assert {"name": "paper", "title": "Paper", "source": "bookwell-theme-paper"} in listed


def test_a_business_that_picks_it_gets_its_pages(app, tenant, bookwell_cli):
    assert bookwell_cli("tenants", "set", tenant.slug, "--theme", "paper").exit_code == 0
    pages = app.test_client()
    start = pages.get(f"/book/{tenant.slug}/")
    assert start.status_code == 200
    assert 'class="book theme-paper"' in start.text
    assert "/themes/paper/static/paper.css" in start.text
    # A page the theme does not override comes from the default theme, in this layout.
    providers = pages.get(f"/book/{tenant.slug}/?service={tenant.service_id}")
    assert "Who would you like?" in providers.text and "paper-card" in providers.text
    css = pages.get("/themes/paper/static/paper.css")
    assert css.status_code == 200 and "theme-paper" in css.text
    # Not in the package: served from the default theme.
    assert pages.get("/themes/paper/static/booking.css").status_code == 200
