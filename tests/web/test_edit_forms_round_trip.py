"""Every staff form, loaded and sent back unchanged, changes nothing.

The forms are found, not listed: an owner's browser walks every core page under
``/admin/<slug>/`` it can reach by links, and every POST form on those pages is sent back exactly
as a browser would send it (ticked boxes, selected options, textareas with CR LF line breaks;
html_forms.py). Only the forms that *do* something when pressed (cancel, switch on, log out...)
are left out, each by name below; a new POST route under ``/admin/<slug>/`` that is neither
reached nor named here fails the test, so a new edit form cannot be forgotten.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, time
from urllib.parse import urljoin, urlsplit

import pytest
from conftest import add_staff_and_a_rival, booking_body, log_in_staff
from html_forms import forms_of
from sqlalchemy import MetaData, select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from bookwell.core.booking import catalogue
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import Service, TenantPlugin, TimeOff
from bookwell.hooks import Manifest, Setting

# Forms that act when pressed: sending them back is not "saving with no change".
ACTIONS = {
    "admin.cancel": "cancels the booking",
    "admin.outcome": "marks the booking completed or no-show",
    "admin.reschedule": "moves the booking to the time pressed",
    "admin.remove_time_off": "removes the time off",
    "admin.remove_brand_logo": "removes the business's logo",
    "admin_auth.logout": "logs out",
    "admin_auth.end_session": "ends a session",
    "marketplace.switch": "switches a plugin on or off",
    "admin.resend_invitation": "e-mails the invitation again",
    "admin.export_audit_trail": "downloads the audit trail (and audits the export)",
}
# Reached without links (the staff member is already signed in): not a staff edit form.
NOT_STAFF_FORMS = {
    "admin_auth.login",
    "admin_auth.login_step",
    "admin_passwords.forgot",
    "admin_passwords.reset",
    "admin_passwords.invite",
}
# Password fields are never filled back in: sent back unchanged, the form is refused (422).
PASSWORD_FORMS = {"admin_passwords.change"}
# Core's edit forms that the walk must reach (a broken link to one would otherwise hide it).
EXPECTED = {
    "admin.edit_service",
    "admin.edit_provider",
    "admin.provider_hours",
    "admin.add_time_off",
    "admin.edit_staff",
    "admin.new_staff",
    "admin.business",
    "admin.book_for_client",
    "marketplace.save_settings",
}
# Bookkeeping that a save may write without changing what was saved.
IGNORED_TABLES = {
    "audit_entries",
    "audit_people",
    "audit_personal",
    "auth_sessions",
    "rate_limit_counters",
}
IGNORED_COLUMNS = {"updated_at"}
# A provider's week is replaced as a whole when saved: the rows' ids name nothing.
IGNORED_IN = {"working_hours": {"id"}}


class EverySetting:
    MANIFEST = Manifest(
        "every_setting",
        "Every setting",
        "A setting of each type.",
        "1",
        "tests",
        "tests",
        (
            Setting("flag", "bool", False, "Flag"),
            Setting("count", "int", 3, "Count", min=1, max=10),
            Setting("word", "str", "", "Word", max=40),
            Setting("address", "email", "", "Address"),
            Setting("site", "url", "", "Site"),
            Setting("mode", "choice", "soft", "Mode", choices=("soft", "medium", "hard")),
            Setting("days", "list", [], "Days", choices=("mon", "tue", "wed", "thu")),
            Setting("tags", "list", [], "Tags"),
            Setting("notice", "text", "", "Notice"),
        ),
    )


def _plugin_is_on(app, tenant_id, name) -> bool:
    with db.fresh_session(app) as session:
        row = session.scalar(
            select(TenantPlugin).where(
                TenantPlugin.tenant_id == tenant_id, TenantPlugin.plugin_name == name
            )
        )
    return bool(row and row.enabled)


def snapshot(app) -> dict[str, list[tuple]]:
    """Every row of every table but the bookkeeping ones, in a stable order."""
    metadata = MetaData()
    engine = db.engine_of(app)
    metadata.reflect(engine)
    rows = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in IGNORED_TABLES or table.name.startswith("alembic"):
                continue
            ignored = IGNORED_COLUMNS | IGNORED_IN.get(table.name, set())
            columns = [column for column in table.columns if column.name not in ignored]
            found = connection.execute(select(*columns)).all()
            rows[table.name] = sorted((tuple(row) for row in found), key=repr)
    return rows


def differences(before, after) -> list[str]:
    changed = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, []), after.get(name, [])
        if old != new:
            gone = [row for row in old if row not in new]
            added = [row for row in new if row not in old]
            changed.append(f"{name}: was {gone}, now {added}")
    return changed


@pytest.fixture
def site(make_app, business, clock):
    # Mail by hand: a delivery thread marking messages sent would look like a change.
    app = make_app(EXTRA_PLUGINS=[EverySetting], MAIL_DELIVERY="manual")
    now = clock()
    add_staff_and_a_rival(app, business, now, ("owner", "manager", "staff", "receptionist"))
    with app.app_context():
        # Not the defaults: a form that shows a default instead of the saved value must show.
        catalogue.update_business(
            app,
            tenant_id=business.tenant_id,
            name="Salon Ana & Ben",
            contact_email="desk@example.com",
            phone="+33 1 23 45 67 89",
            # One line: the business form (another part of issue 12) keeps a browser's CR LF.
            address="1 rue de la Paix, 75002 Paris",
            currency=None,
            language=None,
            actor=None,
            now=now,
        )
        plugin_changes.enable(
            app,
            business.tenant_id,
            "every_setting",
            {
                "flag": True,
                "count": 7,
                "word": "Bonjour",
                "address": "desk@example.com",
                "site": "https://salon.example/rules",
                "mode": "medium",
                "days": ["tue", "thu"],
                "tags": ["quiet", "vip"],
                "notice": "First line\nSecond line",
            },
            now,
        )
        plugin_changes.enable(app, business.tenant_id, "reminders", {}, now)
    with db.write_transaction(app) as session:
        session.add(
            TimeOff(
                provider_id=business.provider_id,
                starts_at=datetime(2027, 3, 10, 8, 0, tzinfo=UTC),
                ends_at=datetime(2027, 3, 10, 12, 0, tzinfo=UTC),
                reason="Dentist",
            )
        )
    with app.app_context():
        # Two spans on a day, and a day off: hours are more than one span a day.
        catalogue.set_working_hours(
            app,
            tenant_id=business.tenant_id,
            provider_id=business.second_provider_id,
            hours={0: [(time(9), time(12)), (time(13, 30), time(18))], 2: [(time(10), time(16))]},
            actor=None,
            now=now,
        )
    with db.write_transaction(app) as session:
        service = session.get(Service, business.service_id)
        service.description = "A cut.\nWashing included."  # as the API or a plain LF saves it
    booked = app.test_client().post(
        "/api/v1/tenants/salon/bookings", json=booking_body(business, "2027-03-02T10:00:00+01:00")
    )
    assert booked.status_code == 201, booked.json
    return app


def without_csrf(pairs):
    return [(name, value) for name, value in pairs if name != "csrf_token"]


def endpoint_of(app, url: str, method: str):
    adapter = app.url_map.bind("localhost")
    parts = urlsplit(url)
    try:
        return adapter.match(parts.path, method=method)
    except (HTTPException, RequestRedirect):
        return None, {}


def core_admin_page(app, url: str) -> bool:
    endpoint, _ = endpoint_of(app, url, "GET")
    return (
        endpoint is not None
        and urlsplit(url).path.startswith("/admin/salon/")
        and not endpoint.startswith("plugin_")  # a plugin's own pages are its author's to test
    )


def test_every_staff_form_sent_back_unchanged_changes_nothing(site, business):
    browser = log_in_staff(site, "owner@example.com")
    to_visit = ["/admin/salon/"]
    visited: set[tuple] = set()
    posted: dict[str, list[str]] = {}
    while to_visit:
        url = to_visit.pop(0)
        endpoint, arguments = endpoint_of(site, url, "GET")
        key = (endpoint, tuple(sorted(arguments.items())))
        if key in visited:
            continue
        visited.add(key)
        page = browser.get(url)
        assert page.status_code == 200, (url, page.status_code)
        for href in re.findall(r'href="([^"#]*)', page.text):
            target = html.unescape(href)
            if core_admin_page(site, target):
                to_visit.append(target)
        for form in forms_of(page.text):
            if form.method != "post":
                continue
            form.action = urljoin(url, form.action)  # no action: the page's own address
            endpoint, _ = endpoint_of(site, form.action, "POST")
            assert endpoint is not None, f"a form on {url} posts to {form.action}, which is no page"
            if endpoint in ACTIONS or endpoint.startswith("plugin_"):
                continue
            if endpoint == "marketplace.save_settings" and not _plugin_is_on(
                site, business.tenant_id, form.field("plugin")
            ):
                continue  # the settings form of a plugin that is off switches it on
            fresh = browser.get(url)  # the page as it is now, with its current CSRF token
            [again] = [
                other
                for other in forms_of(fresh.text)
                if urljoin(url, other.action) == form.action
                and without_csrf(other.submission()) == without_csrf(form.submission())
            ] or [form]
            before = snapshot(site)
            answer = browser.post(form.action, data=MultiDict(again.submission()))
            creating = form.action.endswith("/new") or endpoint in {
                "admin.add_time_off",
                "admin.book_for_client",
                "admin.brand_logo",  # an upload sent without its file is refused
            }
            expected = (302, 422) if creating or endpoint in PASSWORD_FORMS else (302,)
            assert answer.status_code in expected, (
                f"{form.action} (from {url}) sent back unchanged answered {answer.status_code}: "
                f"{answer.text[:3000]}"
            )
            assert differences(before, snapshot(site)) == [], (
                f"{form.action} (from {url}) sent back unchanged changed the database"
            )
            posted.setdefault(endpoint, []).append(form.action)

    assert EXPECTED <= set(posted), f"never reached: {EXPECTED - set(posted)}"
    core_posts = {
        rule.endpoint
        for rule in site.url_map.iter_rules()
        if rule.rule.startswith("/admin/<slug>/")
        and "POST" in rule.methods
        and not rule.endpoint.startswith("plugin_")
    }
    forgotten = core_posts - set(posted) - set(ACTIONS) - NOT_STAFF_FORMS
    assert not forgotten, f"staff forms never sent back unchanged: {sorted(forgotten)}"
    assert len(posted["admin.edit_staff"]) == 4  # one account a role, the owner's own among them
    assert len(posted["marketplace.save_settings"]) == 2
