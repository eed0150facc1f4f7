"""Core's side of :mod:`bookwell.hooks.pages`: plugins' staff pages pass the same gate as core's
staff pages (sign-in, tenant wall, role, ``before_data_access``) and render in their layout; their
client pages render in the business's theme; a plugin's views and commands get the context its
hooks get (``plugin_context``). Its pages for platform support (``require_support``) get the
instance's context (``plugin_context(None)``), as support's logins do."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from flask import Flask, abort, current_app, g, has_request_context, make_response, request
from flask_login import current_user

from bookwell.core.access import support
from bookwell.core.context import make_context, tenant_info, user_info
from bookwell.core.foundation import clock
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost import settings as plugin_settings
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Role, Tenant
from bookwell.core.web import identity, themes
from bookwell.core.web.identity import login_manager
from bookwell.core.web.pages.admin import page, require_page
from bookwell.core.web.plugin_routes import owner_of
from bookwell.core.web.request_tenant import current_tenant
from bookwell.hooks import Context, UserInfo
from bookwell.hooks.pages import EXTENSION, AccountPage, StaffPage

# Set in the app context a plugin's command runs in (``bookwell <plugin> <command>``).
COMMAND_PLUGIN = "bookwell_command_plugin"


def run_as_command_of(plugin: str) -> None:
    """Say, for the current app context, that plugin ``plugin``'s command is running."""
    setattr(g, COMMAND_PLUGIN, plugin)


class StaffPages:
    def require_staff(
        self,
        slug: str,
        permission: str,
        scope: str,
        login_scope: str | None = None,
        *,
        subject: str | None = None,
    ) -> StaffPage:
        # A restricted session becomes current_user here only if login_scope is its scope;
        # else it is sent on to its continue_at before the gate would ask it to log in.
        identity.accept_login_scope(login_scope)
        identity.send_restricted_on()
        tenant, user = require_page(slug, permission, scope, subject=subject)
        g.plugin_staff_page = (tenant, user)
        return StaffPage(tenant=tenant_info(tenant), user=user_info(user))

    def require_account(self, slug: str, login_scope: str | None) -> AccountPage:
        tenant = current_tenant(slug)
        if tenant is None:
            abort(404)
        rows = identity.accept_login_scope(login_scope)
        identity.send_restricted_on()
        user = rows.user if rows is not None else None
        if user is None or user.tenant_id is None:
            # Nobody, or platform support (who has no account at a business).
            abort(login_manager.unauthorized())
        if user.tenant_id != tenant.id:
            abort(404)
        if user.role == Role.CLIENT and user.email_verified_at is None:
            abort(login_manager.unauthorized())
        if user.role != Role.CLIENT:
            # Staff may be shown the page in the staff layout (render_staff_page).
            g.plugin_staff_page = (tenant, user)
        return AccountPage(tenant=tenant_info(tenant), user=user_info(user))

    def require_support(self, login_scope: str | None) -> UserInfo:
        _support_plugin()  # 404 unless the operator switched the plugin on for support
        rows = identity.accept_login_scope(login_scope)
        identity.send_restricted_on()
        user = rows.user if rows is not None else None
        if user is None or user.tenant_id is not None or user.role != Role.SUPPORT:
            # Nobody, or a business's account (support's pages are not theirs).
            abort(login_manager.unauthorized())
        return user_info(user)

    def render_staff_page(self, staff_page: StaffPage, template: str, status: int, **values: Any):
        checked = g.get("plugin_staff_page")
        # Only a page that passed require_staff in this request may be rendered as a staff page.
        if checked is None or checked[1].id != staff_page.user.id:
            abort(403)
        tenant, user = checked
        return page(template, tenant, user, status, **values)

    def render_client_page(self, slug: str, template: str, status: int, **values: Any):
        _plugin, tenant, in_view = _owner_and_business(slug)
        if not in_view:
            raise RuntimeError("render_client_page works in a plugin's own views")
        # The business last: the theme's layout reads it, whatever the plugin passed.
        return make_response(
            themes.render(tenant.theme, template, **{**values, "tenant": tenant}), status
        )

    def plugin_context(self, slug: str | None, *, dry_run: bool = False) -> Context:
        if slug is None:
            plugin, in_view = _support_plugin()
            actor = _support_actor() if in_view else None
            app = current_app._get_current_object()
            return support.context(app, clock.now(), actor=actor, dry_run=dry_run).for_plugin(
                plugin
            )
        plugin, tenant, in_view = _owner_and_business(slug)
        if not in_view:  # an operator's command: any business of the instance
            return make_context(tenant, clock.now(), dry_run=dry_run).for_plugin(plugin)
        actor = _actor(tenant)
        return make_context(tenant, clock.now(), actor=actor, dry_run=dry_run).for_plugin(plugin)

    def plugin_settings(self, slug: str | None) -> Mapping[str, Any]:
        if slug is None:
            plugin, _in_view = _support_plugin()
            configured = support.support_plugins(current_app._get_current_object()).enabled
            if plugin in configured:
                return configured[plugin]
            # Only a command reaches here: the defaults, as they would be once listed.
            return MappingProxyType(plugin_settings.validate(_manifest_of(plugin), {}, {}))
        plugin, tenant, in_view = _owner_and_business(slug)
        enabled = host_of().enabled_for(db.session(), tenant.id)
        if plugin in enabled:
            return enabled[plugin]  # what its hooks get: validated, read-only
        # Only a command reaches here (a view's business has enabled the plugin): the settings
        # the business keeps for it, or the defaults, as they would be if it switched it on.
        saved = plugin_changes.tenant_plugins(db.session(), tenant.id).get(plugin, (False, {}))
        return MappingProxyType(plugin_settings.validate(_manifest_of(plugin), {}, saved[1]))


def _manifest_of(plugin: str) -> Any:
    manifest = host_of().installed[plugin].manifest
    if manifest is None:
        raise LookupError(f"the plugin {plugin!r} is broken")
    return manifest


def _running_plugin() -> tuple[str, bool]:
    """The plugin whose view or command is running, and whether it is a view."""
    in_view = owner_of(request.blueprint) if has_request_context() else None
    plugin = in_view or g.get(COMMAND_PLUGIN)
    if plugin is None:
        # Whose store would it be? Only core knows which plugin a view or command is.
        raise RuntimeError("plugin_context works in a plugin's own views and commands")
    return plugin, in_view is not None


def _support_plugin() -> tuple[str, bool]:
    """The plugin whose view or command wants the instance's context, and whether it is a
    view; a view of a plugin the operator has not switched on for support ends with 404."""
    plugin, in_view = _running_plugin()
    if in_view and plugin not in support.support_plugins(current_app._get_current_object()).enabled:
        abort(404)
    return plugin, in_view


def _support_actor() -> UserInfo | None:
    """The signed-in platform support user (a restricted session too, once its page accepted
    it: ``require_support``)."""
    if (
        current_user.is_authenticated
        and current_user.tenant_id is None
        and current_user.role == Role.SUPPORT
    ):
        return UserInfo(
            id=current_user.id,
            email=current_user.email,
            name=current_user.name,
            role=current_user.role,
            tenant_id=None,
        )
    return None


def _owner_and_business(slug: str) -> tuple[str, Tenant, bool]:
    """The plugin whose view or command is running, business ``slug``, and whether it is a
    view; a view of a business that has not enabled the plugin ends with 404, a command's
    unknown business raises :class:`LookupError`."""
    plugin, in_view = _running_plugin()
    tenant = current_tenant(slug)
    if not in_view:
        if tenant is None:
            raise LookupError(f"no business with the slug {slug!r}")
        return plugin, tenant, False
    if tenant is None or plugin not in host_of().enabled_for(db.session(), tenant.id):
        abort(404)
    return plugin, tenant, True


def _actor(tenant: Tenant) -> UserInfo | None:
    """Who calls the view: the caller ``require_api_user`` let through in this request (even
    on a restricted token, whose bearer proved who they are), else whoever of the business is
    signed in."""
    api_caller = g.get(identity.API_CALLER)
    if api_caller is not None and api_caller.tenant_id == tenant.id:
        return api_caller
    if current_user.is_authenticated and current_user.tenant_id == tenant.id:
        return UserInfo(
            id=current_user.id,
            email=current_user.email,
            name=current_user.name,
            role=current_user.role,
            tenant_id=current_user.tenant_id,
        )
    return None


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = StaffPages()
