"""Who is asking: Flask-Login's face over core's server-side sessions, tokens and API keys.

``flask_login.current_user``, in core's views and templates and in plugins' pages alike, is a
frozen :class:`SignedIn` (or Flask-Login's anonymous user), never the database row. One request
loader finds it, the same way for every request:

* under ``/api/``, from ``Authorization: Bearer`` only (a session token or an API key; a
  malformed or dead bearer is a 401). Cookies are never read there, so the API needs no CSRF
  token;
* everywhere else, from the browser session cookie (:mod:`bookwell.core.web.session_cookies`).

Nothing is written into Flask's signed cookie, which keeps only the CSRF secret: no
``login_user`` (the one login path, :mod:`bookwell.core.access.login`, starts a server-side
session and the cookie holds its random secret), no user loader, no remember-me cookie, and no
session protection (which would write ``_fresh`` and ``_id`` into it).

Core's own views that change an account or a session need its rows, not a copy:
:func:`signed_in_rows` gives those found by the same lookup.

A session a plugin's refusal restricted to a scope (``auth_sessions.scope``; see
:mod:`bookwell.core.access.login`) is never ``current_user``: to every view it is nobody, and
before any view runs, :func:`enforce_restrictions` answers 403 with the refusal's code on every
API route but those open to its scope (core's log-out and password change, and plugins' views,
which accept it only through ``bookwell.hooks.pages.require_api_user(slug, scope=...)``). On the
pages (which never start one) a restricted cookie is simply not signed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from werkzeug.exceptions import Unauthorized

from bookwell.core.access import login, sessions, support
from bookwell.core.context import tenant_info, user_info
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import ApiKey, AuthSession, User
from bookwell.core.web import session_cookies
from bookwell.core.web.api.errors import ApiError
from bookwell.core.web.request_tenant import current_tenant
from bookwell.hooks.pages import API_USERS_EXTENSION, ApiCaller

API_PREFIX = "/api/"
ROWS = "bookwell_signed_in"
# Set by require_api_user for the rest of the request: the UserInfo of the caller it let through.
API_CALLER = "bookwell_api_caller"
RESTRICTED = "bookwell_restricted"
# Core's API routes a restricted session may use, with the scope each needs (None: any scope).
OPEN_TO_RESTRICTED = {
    "auth_api.log_out": None,
    "auth_api.change_password": login.PASSWORD_CHANGE,
}
# Plugins' blueprints are registered as "plugin_<name>" (bookwell.core.web.plugin_routes).
PLUGIN_BLUEPRINT_PREFIX = "plugin_"


@dataclass(frozen=True, eq=False)
class SignedIn(UserMixin):
    """The signed-in person of this request, as ``current_user``: a frozen copy of the account
    and how it came (``session_id``, ``None`` for an API key). Its equality is Flask-Login's (by
    ``get_id``)."""

    id: int
    email: str
    name: str
    role: str
    tenant_id: int | None
    email_verified: bool
    session_id: int | None

    def get_id(self) -> str:
        return str(self.id)


@dataclass(frozen=True)
class SignedInRows:
    """For core only: the account row and the session row (or API key row) behind
    ``current_user``."""

    user: User
    session: AuthSession | None
    api_key: ApiKey | None = None


login_manager = LoginManager()
# Session protection would write "_fresh" and "_id" into Flask's cookie; sessions are
# server-side and bound by their own idle and absolute timeouts.
login_manager.session_protection = None


@login_manager.request_loader
def load_signed_in(_request) -> SignedIn | None:
    rows = _resolve()
    if rows is not None and rows.session is not None and rows.session.scope:
        # Restricted: nobody to every view; only the routes open to its scope see it.
        setattr(g, RESTRICTED, rows)
        rows = None
    setattr(g, ROWS, rows)
    if rows is None:
        return None
    user = rows.user
    return SignedIn(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        tenant_id=user.tenant_id,
        email_verified=user.email_verified_at is not None,
        session_id=rows.session.id if rows.session is not None else None,
    )


def _resolve() -> SignedInRows | None:
    app, now, reader = current_app._get_current_object(), clock.now(), db.session()
    if not request.path.startswith(API_PREFIX):
        secret = request.cookies.get(session_cookies.COOKIE, "")
        found = sessions.resolve(app, reader, secret, "browser", now) if secret else None
        return SignedInRows(found[1], found[0]) if found else None
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "unauthorized", "Use Authorization: Bearer <token>.")
    secret = secret.strip()
    found = sessions.resolve(app, reader, secret, "api", now)
    if found is not None:
        return SignedInRows(found[1], found[0])
    by_key = sessions.resolve_api_key(app, reader, secret, now)
    if by_key is None:
        raise ApiError(401, "unauthorized", "This token is not valid, or has expired.")
    return SignedInRows(by_key[1], None, by_key[0])


def signed_in_rows() -> SignedInRows | None:
    """The rows behind ``current_user`` (loading it if this request has not yet)."""
    if not current_user.is_authenticated:
        return None
    return g.get(ROWS)


def restricted_rows() -> SignedInRows | None:
    """The rows of this request's restricted session, if its bearer is one (see above)."""
    current_user.is_authenticated  # noqa: B018 - loads the request's caller
    return g.get(RESTRICTED)


def restriction_message(scope: str) -> str:
    return f"This login is restricted to one step ({scope}): it opens nothing else until then."


def enforce_restrictions():
    """Before every view: a restricted bearer reaches only the routes open to its scope, and
    gets 403 with the code of the refusal that restricted it everywhere else."""
    if not request.path.startswith(API_PREFIX) or not request.headers.get("Authorization"):
        return None
    try:
        rows = restricted_rows()
    except ApiError:
        return None  # a bad bearer: whichever view needs the caller answers 401 itself
    if rows is None:
        return None
    scope, code = login.restriction_of(rows.session.scope)
    endpoint = request.endpoint or ""
    if endpoint in OPEN_TO_RESTRICTED and OPEN_TO_RESTRICTED[endpoint] in (None, scope):
        return None
    if (request.blueprint or "").startswith(PLUGIN_BLUEPRINT_PREFIX):
        return None  # the plugin's view decides, through require_api_user; to it, it is nobody
    raise ApiError(403, code, restriction_message(scope))


class ApiUsers:
    """Core's side of ``bookwell.hooks.pages.require_api_user``."""

    def require_api_user(self, slug: str, scope: str | None) -> ApiCaller:
        if not request.path.startswith(API_PREFIX):
            # Bearers are read under /api/ only; elsewhere a cookie would be, and a view that
            # acts on a cookie needs CSRF protection, which an API view has not.
            raise ApiError(401, "unauthorized", "Use Authorization: Bearer <token> under /api/.")
        rows = signed_in_rows() or restricted_rows()
        if rows is None:
            raise ApiError(401, "unauthorized", "Log in first: Authorization: Bearer <token>.")
        tenant = current_tenant(slug)
        if tenant is None or rows.user.tenant_id != tenant.id:
            raise ApiError(404, "not_found", "Not found.")
        restriction = login.restriction_of(rows.session.scope if rows.session else None)
        if restriction is not None and restriction[0] != scope:
            raise ApiError(403, restriction[1], restriction_message(restriction[0]))
        caller = ApiCaller(
            user=user_info(rows.user),
            tenant=tenant_info(tenant),
            scope=restriction[0] if restriction else None,
        )
        # plugin_context's ctx.actor, later in this request: who the bearer proved to be.
        setattr(g, API_CALLER, caller.user)
        return caller


@login_manager.unauthorized_handler
def sign_in_first():
    """Where ``login_required`` (and core's gates) send someone who is not signed in: the API
    answers 401; a page sends them to the login page of where they were."""
    if request.path.startswith(API_PREFIX):
        raise ApiError(401, "unauthorized", "Log in first: Authorization: Bearer <token>.")
    slug = (request.view_args or {}).get("slug")
    if request.path.startswith("/support/"):
        return redirect(url_for("support_auth.login"))
    if slug and request.path.startswith("/book/"):
        return redirect(url_for("client_accounts.login_page", slug=slug))
    if slug:
        return redirect(url_for("admin_auth.login", slug=slug))
    raise Unauthorized()


def init_app(app: Flask) -> None:
    # Flask-Login's own context processor would look the user up for every template rendered;
    # the proxy resolves only in templates that read it.
    login_manager.init_app(app, add_context_processor=False)
    app.context_processor(lambda: {"current_user": current_user})
    app.before_request(enforce_restrictions)
    app.extensions[API_USERS_EXTENSION] = ApiUsers()
    # The plugins are loaded by now: check the support plugins' settings at start, not at the
    # first support login (a bad configuration is logged, and refuses support logins).
    support.init_app(app)
