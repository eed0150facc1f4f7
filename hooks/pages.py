"""Pages of a plugin's own (its ``routes`` blueprint): who is signed in, the staff pages' and
the client pages' layouts, and forms protected against cross-site requests. ::

    from bookwell.hooks.pages import csrf_form, render_staff_page, require_staff

    @pages.route("/admin/<slug>/gift-cards/", methods=["GET", "POST"])
    def gift_cards(slug):
        page = require_staff(slug, "plugins.manage")  # the owner only
        form = csrf_form()
        if form.validate_on_submit():
            ...
        return render_staff_page(page, "gift_cards/admin.html", form=form)

A plugin's JSON views (under ``/api/``, called with a bearer token) start with
``require_api_user(slug)`` instead; its pages about the person's own account (staff or client)
with ``require_account(slug)``; its pages for platform support (under ``/support/<plugin>/``,
served only while the operator lists the plugin among the support plugins) with
``require_support()``, and ``plugin_context(None)`` for the instance's context. A page a
restricted login is sent to (its ``Refusal``'s ``continue_at``) names the scope it accepts:
``require_staff(slug, login_scope="enroll_totp")``.

Core provides what these call when the app starts; a plugin never imports core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .types import Context, TenantInfo, UserInfo

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

EXTENSION = "bookwell.staff_pages"

# The staff member a page is shown to: the same frozen value as ``ctx.actor``.
StaffMember = UserInfo


@dataclass(frozen=True)
class StaffPage:
    """The business and the signed-in staff member a plugin's staff page is shown to."""

    tenant: TenantInfo
    user: StaffMember


def require_staff(
    slug: str,
    permission: str = "bookings.read",
    scope: str = "plugin",
    login_scope: str | None = None,
    *,
    subject: str | None = None,
) -> StaffPage:
    """The signed-in staff member of business ``slug``, if their role holds ``permission`` (core's
    names: ``bookings.read``, ``bookings.manage``, ``plugins.read``, ``plugins.manage`` (owner
    only), ``data.export``, ...; the list is in the guide), or an active grant
    (``ctx.grants``) gives it to them or their role on everything or on ``subject`` (the record
    the page shows, ``"client:<e-mail>"`` case-folded). Otherwise the request ends here, as on
    core's staff pages: the login page when nobody (or platform support) is signed in, 404 for
    another business's user, 403 for a role without the permission or when a plugin's
    ``before_data_access`` refuses ``scope``.

    A browser session a login guard restricted (its ``Refusal`` carried ``grant_scope`` and
    ``continue_at``) passes only where ``login_scope`` names its scope, and then with the same
    checks, for the person's own role; anywhere else it is sent (303) to its ``continue_at``.
    A full session passes whatever ``login_scope`` says."""
    page: StaffPage = _kit().require_staff(slug, permission, scope, login_scope, subject=subject)
    return page


@dataclass(frozen=True)
class AccountPage:
    """The business and the signed-in account (staff or client) a page about the person's own
    account is shown to."""

    tenant: TenantInfo
    user: UserInfo


def require_account(slug: str, login_scope: str | None = None) -> AccountPage:
    """Whoever is signed in to business ``slug``, staff or (verified) client, for a page about
    their own account (say, their authenticator). Otherwise the request ends here: the login
    page of where the page is (``/book/...``: the clients'; else the staff's) when nobody (or
    platform support) is signed in, 404 for another business's account. No permission and no
    ``before_data_access`` are asked: the page shows the person only what is theirs. A
    restricted browser session passes where ``login_scope`` names its scope, and is sent (303)
    to its ``continue_at`` anywhere else; a full session passes whatever it says. Check
    ``page.user.role`` if the page is for some roles only."""
    page: AccountPage = _kit().require_account(slug, login_scope)
    return page


def require_support(login_scope: str | None = None) -> UserInfo:
    """The signed-in platform support user, for a plugin's page under ``/support/<plugin>/``
    (which core serves only while the operator lists the plugin in ``SUPPORT_PLUGINS``; else
    404). Otherwise the request ends here: the support login page when nobody (or a business's
    account) is signed in. A restricted browser session passes where ``login_scope`` names its
    scope, and is sent (303) to its ``continue_at`` anywhere else; a full session passes
    whatever it says. ``plugin_context(None)`` then gives the instance's context, with this
    user as ``ctx.actor``."""
    user: UserInfo = _kit().require_support(login_scope)
    return user


API_USERS_EXTENSION = "bookwell.api_users"


@dataclass(frozen=True)
class ApiCaller:
    """Who calls a plugin's API view: the account (as ``ctx.actor``), its business, and the
    scope its login was restricted to (``None`` for a full login or an API key)."""

    user: UserInfo
    tenant: TenantInfo
    scope: str | None = None


def require_api_user(slug: str, scope: str | None = None) -> ApiCaller:
    """The caller of a plugin's API view (under ``/api/``), if their ``Authorization: Bearer``
    token or API key belongs to business ``slug``. Otherwise the request ends here with the API's
    error: 401 without a valid bearer, 404 for another business's user (or platform support).

    A full login passes whatever ``scope`` says. A login a guard let through restricted (its
    ``Refusal`` carried ``grant_scope``) passes only where ``scope`` names that scope, and gets 403
    with the refusal's code everywhere else: mark the views that lift a restriction (say,
    enrolling an authenticator) with ``scope="enroll_totp"``. Roles are yours to check
    (``caller.user.role``)."""
    from flask import current_app

    caller: ApiCaller = current_app.extensions[API_USERS_EXTENSION].require_api_user(slug, scope)
    return caller


def render_staff_page(
    page: StaffPage, template: str, status: int = 200, **values: Any
) -> ResponseReturnValue:
    """Render ``template`` (from the plugin's blueprint; it should extend
    ``"admin/layout.html"`` and fill ``{% block content %}``) with everything the layout needs:
    the business, the user, the menu for their role, the log-out form."""
    rendered: ResponseReturnValue = _kit().render_staff_page(page, template, status, **values)
    return rendered


def render_client_page(
    slug: str, template: str, status: int = 200, **values: Any
) -> ResponseReturnValue:
    """Render ``template`` (from the plugin's blueprint) as one of business ``slug``'s client
    pages, in the theme the business chose: extend ``"book/base.html"`` and fill ``{% block
    title %}`` and ``{% block content %}``. The template gets what you pass, and ``tenant``
    (the business: ``name``, ``slug``), which the layout needs. As with
    :func:`plugin_context`, a business that has not enabled the plugin (or does not exist)
    ends the request with 404."""
    rendered: ResponseReturnValue = _kit().render_client_page(slug, template, status, **values)
    return rendered


def csrf_form() -> Any:  # a flask_wtf.FlaskForm; Flask-WTF ships no types
    """A form carrying a CSRF token: put ``{{ form.csrf_token }}`` in the template's ``<form>``
    and accept the POST only when ``form.validate_on_submit()`` (subclass
    ``flask_wtf.FlaskForm`` for fields of your own)."""
    from flask_wtf import FlaskForm  # type: ignore[import-untyped,unused-ignore]

    return FlaskForm()


def plugin_context(slug: str | None, *, dry_run: bool = False) -> Context:
    """The :class:`~bookwell.hooks.Context` a hook of this plugin would get for business
    ``slug``: ``ctx.store``, ``ctx.tables``, ``ctx.data``, ``ctx.audit``... bound to this plugin,
    ``ctx.now`` the app's clock. ``ctx.actor`` is the caller ``require_api_user`` let through
    earlier in the request (a restricted token's too), else whoever of that business is signed
    in, else ``None`` (always ``None`` in a command). In a view of the plugin's ``routes``
    blueprint, a business that has not enabled the plugin (or does not exist) ends the request
    with 404; it checks nothing else, so gate the view first (``require_staff``). In one of the
    plugin's ``commands``, it is the business's context whether or not it enabled the plugin,
    and an unknown ``slug`` raises ``LookupError``. With ``dry_run=True`` it is the context of
    a dry run (``ctx.dry_run``): its tools answer what they would do and change nothing, for a
    page that previews what scheduled work would do.

    ``slug=None`` gives the instance's context, the one platform support's logins get:
    ``ctx.tenant`` (and ``data``, ``tables``, ``files``) ``None``, the instance's ``store``,
    ``secrets`` and ``audit``. ``ctx.actor`` is the signed-in support user (``None`` in a
    command). In a view, the operator must list the plugin in ``SUPPORT_PLUGINS`` (else 404);
    in a command, it is the instance's context whether or not they do."""
    context: Context = _kit().plugin_context(slug, dry_run=dry_run)
    return context


def plugin_settings(slug: str | None) -> Mapping[str, Any]:
    """This plugin's settings for business ``slug``, as its hooks get them (``settings``):
    validated, read-only, the defaults for every key the business has not set. The same rules
    as :func:`plugin_context`: in a view, 404 unless the business enabled the plugin; in a
    command, the settings the business keeps for it (or the defaults) even while it is off, and
    ``LookupError`` for an unknown ``slug``. ``slug=None``: the settings the operator gave it
    for platform support (``SUPPORT_PLUGINS``; in a command, the defaults if it is not
    listed)."""
    settings: Mapping[str, Any] = _kit().plugin_settings(slug)
    return settings


def _kit() -> Any:
    from flask import current_app

    return current_app.extensions[EXTENSION]
