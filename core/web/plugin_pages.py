"""Core's side of :mod:`bookwell.hooks.pages`: plugins' staff pages pass the same gate as core's
staff pages (sign-in, tenant wall, role, ``before_data_access``) and render in their layout."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, g

from bookwell.core.context import tenant_info, user_info
from bookwell.core.web.pages.admin import page, require_page
from bookwell.hooks.pages import EXTENSION, StaffPage


class StaffPages:
    def require_staff(self, slug: str, permission: str, scope: str) -> StaffPage:
        tenant, user = require_page(slug, permission, scope)
        g.plugin_staff_page = (tenant, user)
        return StaffPage(tenant=tenant_info(tenant), user=user_info(user))

    def render_staff_page(self, staff_page: StaffPage, template: str, status: int, **values: Any):
        checked = g.get("plugin_staff_page")
        # Only a page that passed require_staff in this request may be rendered as a staff page.
        if checked is None or checked[1].id != staff_page.user.id:
            abort(403)
        tenant, user = checked
        return page(template, tenant, user, status, **values)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = StaffPages()
