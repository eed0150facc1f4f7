"""A plugin's own staff pages pass core's gate, render in the staff layout with CSRF-protected
forms, and its ``staff_menu`` entries join the staff pages' menu."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import add_staff_and_a_rival, csrf_token_of, log_in_staff
from flask import Blueprint, abort, request

from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.hooks import Manifest, MenuItem, TenantInfo, hookimpl
from bookwell.hooks.pages import StaffMember, StaffPage, csrf_form, render_staff_page, require_staff

TEMPLATES = Path(__file__).parent / "plugin_pages"


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


class Notes:
    MANIFEST = manifest("p-notes")
    saved: list[str] = []

    @hookimpl
    def routes():
        pages = Blueprint("notes", __name__, template_folder=str(TEMPLATES))

        @pages.route("/admin/<slug>/notes/", methods=["GET", "POST"])
        def notes(slug):
            page = require_staff(slug, "plugins.read")
            form = csrf_form()
            if request.method == "POST":
                page = require_staff(slug, "plugins.manage")
                if not form.validate_on_submit():
                    abort(400)
                Notes.saved.append(request.form["note"])
            return render_staff_page(page, "notes/admin.html", form=form, notes=Notes.saved)

        @pages.get("/admin/<slug>/notes/ungated")
        def ungated(slug):
            # A view that forgot the gate and made up who is signed in.
            made_up = StaffPage(
                TenantInfo(1, slug, "?", "UTC"), StaffMember(1, "x@y.z", "", "owner")
            )
            return render_staff_page(made_up, "notes/admin.html", form=csrf_form(), notes=[])

        return pages

    @hookimpl
    def staff_menu(ctx):
        return [MenuItem("Notes", f"/admin/{ctx.tenant.slug}/notes/")]


class BadMenus:
    MANIFEST = manifest("p-bad-menus")

    @hookimpl
    def staff_menu(ctx):
        return [MenuItem("Elsewhere", "https://evil.example/"), MenuItem("Also", "//evil.example")]


class CrashingMenu:
    MANIFEST = manifest("p-crashing-menu")

    @hookimpl
    def staff_menu(ctx):
        raise RuntimeError("menu down")


@pytest.fixture
def site(make_app, business, clock):
    Notes.saved.clear()
    app = make_app(EXTRA_PLUGINS=[Notes, BadMenus, CrashingMenu])
    add_staff_and_a_rival(app, business, clock(), ("owner", "staff"))
    with app.app_context():
        for name in ("p-notes", "p-bad-menus", "p-crashing-menu"):
            plugin_changes.enable(app, business.tenant_id, name, {}, clock())
    return app


def test_nobody_signed_in_is_sent_to_the_login(site):
    response = site.test_client().get("/admin/salon/notes/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/salon/login")


def test_staff_see_the_page_in_the_staff_layout_with_the_plugins_menu_entry(site):
    page = log_in_staff(site, "staff@example.com").get("/admin/salon/notes/")
    assert page.status_code == 200
    assert "Notes of Salon" in page.text and "Signed in as staff@example.com" in page.text
    assert "Log out" in page.text  # core's layout
    assert '<a href="/admin/salon/notes/">Notes</a>' in page.text


def test_a_bad_or_failing_menu_entry_is_left_out_and_the_page_stands(site):
    page = log_in_staff(site, "staff@example.com").get("/admin/salon/")
    assert page.status_code == 200
    assert "evil.example" not in page.text
    assert '<a href="/admin/salon/notes/">Notes</a>' in page.text


def test_only_a_role_with_the_permission_may_post_and_only_with_the_csrf_token(site):
    staff = log_in_staff(site, "staff@example.com")
    token = csrf_token_of(staff.get("/admin/salon/notes/"))
    assert (
        staff.post("/admin/salon/notes/", data={"csrf_token": token, "note": "x"}).status_code
        == 403
    )
    owner = log_in_staff(site, "owner@example.com")
    assert owner.post("/admin/salon/notes/", data={"note": "forged"}).status_code == 400
    token = csrf_token_of(owner.get("/admin/salon/notes/"))
    saved = owner.post("/admin/salon/notes/", data={"csrf_token": token, "note": "Call Ann"})
    assert saved.status_code == 200
    assert Notes.saved == ["Call Ann"]


def test_another_business_sees_nothing(site):
    spa = log_in_staff(site, "spa@example.com", slug="spa")
    assert spa.get("/admin/salon/notes/").status_code == 404  # not their business
    assert spa.get("/admin/spa/notes/").status_code == 404  # their business has not enabled it


def test_a_view_that_skipped_the_gate_cannot_render_a_staff_page(site):
    owner = log_in_staff(site, "owner@example.com")
    assert owner.get("/admin/salon/notes/ungated").status_code == 403
