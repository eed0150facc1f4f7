"""Accessibility of the staff pages (WCAG 2.1 AA): on every staff page an owner can open, a skip
link to the content, a favicon, a meta description and a label on every control; a refused form
marks its fields (aria-invalid, aria-describedby to the error's text), sums its errors up in an
alert and says "Error: " in the title, and changes nothing; and the contrast of the design's
colours, computed from the stylesheets themselves."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import add_staff_and_a_rival, booking_body, csrf_token_of, log_in_staff
from sqlalchemy import select

from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, User


def without_admin_script(html: str) -> str:
    """The page without the one script staff pages load, a static file (admin.js)."""
    return html.replace('<script src="/static/admin.js" defer></script>', "")


STATIC = Path(__file__).resolve().parents[2] / "core" / "web" / "static"
# The staff pages of core an owner must be able to open, each checked below.
CORE_PAGES = {
    "admin.day",
    "admin.week_agenda",
    "admin.month_overview",
    "admin.clients",
    "admin.client_record",
    "admin.booking_details",
    "admin.new_booking",
    "admin.services",
    "admin.edit_service",
    "admin.providers",
    "admin.edit_provider",
    "admin.staff",
    "admin.edit_staff",
    "admin.new_staff",
    "admin.business",
    "admin.audit_trail",
    "admin.my_sessions",
    "admin_passwords.change",
    "marketplace.cards",
}
PLUGINS = {
    "terms": {"text": "Be on time."},
    "cancellation_policy": {},
    "history_cleanup": {},
}


class PageFacts(HTMLParser):
    """What a page offers to assistive technology."""

    def __init__(self):
        super().__init__()
        self.skip_links: list[str] = []
        self.ids: set[str] = set()
        self.icons: list[str] = []
        self.description: str | None = None
        self.lang: str | None = None
        self.labelled_for: set[str] = set()
        self.controls: list[dict] = []
        self.label_depth = 0
        self.title = ""
        self.in_title = False
        self.alerts = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if attributes.get("role") == "alert":
            self.alerts += 1
        if tag == "html":
            self.lang = attributes.get("lang")
        elif tag == "title":
            self.in_title = True
        elif tag == "a" and "skip-link" in (attributes.get("class") or ""):
            self.skip_links.append(attributes.get("href", ""))
        elif tag == "link" and attributes.get("rel") == "icon":
            self.icons.append(attributes.get("href", ""))
        elif tag == "meta" and attributes.get("name") == "description":
            self.description = attributes.get("content", "")
        elif tag == "label":
            self.label_depth += 1
            if attributes.get("for"):
                self.labelled_for.add(attributes["for"])
        elif tag in ("input", "select", "textarea"):
            if attributes.get("type") in ("hidden", "submit", "button"):
                return
            self.controls.append(
                {
                    "name": attributes.get("name"),
                    "id": attributes.get("id"),
                    "wrapped": self.label_depth > 0,
                    "aria": bool(attributes.get("aria-label") or attributes.get("aria-labelledby")),
                }
            )

    def handle_endtag(self, tag):
        if tag == "label":
            self.label_depth -= 1
        elif tag == "title":
            self.in_title = False

    def handle_data(self, data):
        if self.in_title:
            self.title += data

    def unlabelled(self) -> list[str]:
        return [
            control["name"] or control["id"] or "?"
            for control in self.controls
            if not (control["wrapped"] or control["aria"] or control["id"] in self.labelled_for)
        ]


def facts_of(page) -> PageFacts:
    facts = PageFacts()
    facts.feed(page.text)
    return facts


def assert_accessible_basics(page, where: str) -> None:
    facts = facts_of(page)
    assert facts.lang == "en", where
    assert facts.skip_links == ["#main"] and "main" in facts.ids, where
    assert facts.icons and facts.icons[0].endswith("favicon.svg"), where
    assert facts.description and len(facts.description) > 20, where
    assert facts.title.strip(), where
    assert not facts.unlabelled(), (where, facts.unlabelled())


@pytest.fixture
def site(make_app, business, clock):
    app = make_app()
    add_staff_and_a_rival(app, business, clock(), ("owner",))
    return app


def book(app, business, start, **options):
    response = app.test_client().post(
        "/api/v1/tenants/salon/bookings", json=booking_body(business, start, **options)
    )
    assert response.status_code == 201, response.json
    return response.json["reference"]


def staff_urls(app, values) -> dict[str, str]:
    """Every page (GET) under /admin/<slug>/, by endpoint, with its arguments filled in from
    ``values``; those that need something else (a token, a file's name) are left out."""
    urls = {}
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/admin/<slug>") or "GET" not in rule.methods:
                continue
            if not set(rule.arguments) <= set(values):
                continue
            arguments = {name: values[name] for name in rule.arguments}
            urls[rule.endpoint] = url_for(rule.endpoint, **arguments)
    return urls


def test_every_staff_page_has_a_skip_link_a_favicon_a_description_and_labelled_controls(
    site, business, clock
):
    reference = book(site, business, "2027-03-02T10:00:00+01:00", name="Ann")
    with site.app_context():
        for name, settings in PLUGINS.items():
            plugin_changes.enable(site, business.tenant_id, name, settings, clock())
        owner_id = db.session().scalar(select(User.id).where(User.email == "owner@example.com"))
    values = {
        "slug": "salon",
        "reference": reference,
        "email": "ann@example.com",
        "provider_id": business.provider_id,
        "service_id": business.service_id,
        "user_id": owner_id,
    }
    owner = log_in_staff(site, "owner@example.com")
    checked = set()
    for endpoint, url in sorted(staff_urls(site, values).items()):
        page = owner.get(url)
        if endpoint in ("admin_auth.login", "admin_passwords.forgot", "admin_passwords.sent"):
            page = site.test_client().get(url)  # the pages of who is not signed in
        if page.status_code != 200 or not page.mimetype == "text/html":
            assert endpoint not in CORE_PAGES, (endpoint, page.status_code)
            continue
        assert_accessible_basics(page, endpoint)
        checked.add(endpoint)
    assert CORE_PAGES <= checked
    # The built-in plugins' staff pages, enabled here, render in the same layout.
    assert {
        "plugin_terms.staff_page",
        "plugin_cancellation_policy.staff_page",
        "plugin_history_cleanup.overview",
    } <= checked
    assert {"admin_auth.login", "admin_passwords.forgot"} <= checked


def test_the_menu_is_a_button_on_a_phone_and_marks_the_current_page(site):
    page = log_in_staff(site, "owner@example.com").get("/admin/salon/clients")
    assert re.search(r'<details class="staff-menu">\s*<summary>Menu</summary>', page.text)
    assert '<a href="/admin/salon/clients" aria-current="page">Clients</a>' in page.text
    assert page.text.count('aria-current="page"') == 1
    assert "<script" not in without_admin_script(page.text) and "style=" not in page.text


def test_a_refused_form_marks_its_fields_sums_up_its_errors_and_changes_nothing(site, business):
    reference = book(site, business, "2027-03-02T10:00:00+01:00")
    owner = log_in_staff(site, "owner@example.com")
    url = f"/admin/salon/bookings/{reference}"
    fine = owner.get(url)
    assert "<title>Error" not in fine.text and 'aria-invalid="true"' not in fine.text
    refused = owner.post(f"{url}/cancel", data={"csrf_token": csrf_token_of(fine), "reason": ""})
    assert refused.status_code == 422
    assert refused.text.count("<title>Error: Booking ") == 1
    field = re.search(r"<(?:input|textarea)[^>]*\bid=\"reason\"[^>]*>", refused.text).group(0)
    assert 'aria-invalid="true"' in field
    described = re.search(r'aria-describedby="([^"]+)"', field).group(1)
    error = re.search(rf'<div id="{described}">(.*?)</div>', refused.text, re.S).group(1)
    assert "field-error" in error and "required" in error.lower()
    summary = re.search(
        r'<div class="error-summary" role="alert"[^>]*>(.*?)</div>', refused.text, re.S
    )
    assert summary and 'href="#reason"' in summary.group(1)
    with site.app_context():
        status = db.session().scalar(select(Booking.status).where(Booking.reference == reference))
    assert status == "confirmed"


def test_a_refused_login_and_password_change_are_announced_too(site):
    client = site.test_client()
    page = client.get("/admin/salon/login")
    refused = client.post(
        "/admin/salon/login",
        data={"csrf_token": csrf_token_of(page), "email": "owner@example.com", "password": "nope"},
    )
    assert "<title>Error: " in refused.text and 'role="alert"' in refused.text
    owner = log_in_staff(site, "owner@example.com")
    form = owner.get("/admin/salon/password")
    changed = owner.post(
        "/admin/salon/password",
        data={
            "csrf_token": csrf_token_of(form),
            "current_password": "wrong wrong wrong",
            "new_password": "a much longer password",
            "confirm": "a much longer password",
        },
    )
    assert changed.status_code == 403
    assert "<title>Error: " in changed.text
    assert 'href="#current_password"' in changed.text
    assert re.search(r'id="current_password"[^>]*aria-invalid="true"', changed.text)


# --- contrast -------------------------------------------------------------------------------------


def luminance(colour: str) -> float:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(part * 2 for part in colour)
    channels = [int(colour[index : index + 2], 16) / 255 for index in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_is_computed_right():
    assert contrast("#000", "#fff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def custom_properties(css: str) -> dict[str, str]:
    root = re.search(r":root\s*{(.*?)}", css, re.S).group(1)
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})\s*;", root))


def declaration(css: str, selector: str, property_name: str) -> str:
    """The first hex colour of ``property_name`` in the rule for exactly ``selector``."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # a comment is not part of a selector
    for selectors, body in re.findall(r"([^{}]+){([^{}]*)}", css):
        if selector in [part.strip() for part in selectors.split(",")]:
            found = re.search(rf"(?:^|;)\s*{property_name}:[^;]*?(#[0-9a-fA-F]{{3,6}})", body)
            if found:
                return found.group(1)
    raise AssertionError(f"no {property_name} colour for {selector}")


def test_the_staff_design_meets_wcag_aa_contrast():
    base = (STATIC / "bookwell.css").read_text()
    admin = (STATIC / "admin.css").read_text()
    colours = custom_properties(base)
    text_on = {"paper": colours["paper"], "page": colours["page"]}
    for text in ("ink", "muted", "brand", "danger"):
        for ground, value in text_on.items():
            assert contrast(colours[text], value) >= 4.5, (text, ground)
    assert contrast(colours["brand-ink"], colours["brand"]) >= 4.5  # buttons, the header bar
    # 1.4.11: what shows a control or its state against what is around it, 3:1.
    for ground in ("paper", "page"):
        assert contrast(colours["field-line"], colours[ground]) >= 3
        assert contrast(colours["focus"], colours[ground]) >= 3
        assert contrast(colours["danger"], colours[ground]) >= 3  # an invalid field's border
    assert contrast(colours["focus"], colours["brand"]) < 3  # so in the bar, the ring is white:
    assert "outline-color: var(--brand-ink)" in admin
    # The grid: a booking's text on its block, the shaded cells' words on their shade.
    block = declaration(admin, ".time-grid .block", "background")
    for text in ("ink", "muted"):
        assert contrast(colours[text], block) >= 4.5, text
    for selector in (".time-grid td.closed", ".time-grid td.off"):
        shade = declaration(admin, selector, "background")
        assert contrast(colours["ink"], shade) >= 4.5, selector
    for selector in (".time-grid .status-completed .block", ".time-grid .status-no-show .block"):
        assert contrast(colours["ink"], declaration(admin, selector, "background")) >= 4.5
        assert contrast(colours["muted"], declaration(admin, selector, "background")) >= 4.5
    # The client pages' theme and these pages share their colours (one design language).
    theme = (Path(__file__).resolve().parents[2] / "themes/default/static/booking.css").read_text()
    theme_colours = custom_properties(theme)
    for name in ("ink", "muted", "danger"):
        assert theme_colours[name] == colours[name], name
