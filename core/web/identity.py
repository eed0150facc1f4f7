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

A session a refusal restricted to a scope (``auth_sessions.scope``; see
:mod:`bookwell.core.access.login`) is never ``current_user`` by itself: to every view it is
nobody, and before any view runs, :func:`enforce_restrictions` answers 403 with the refusal's
code on every API route but those open to its scope (core's log-out and password change, and
plugins' views, which accept it only through ``bookwell.hooks.pages.require_api_user(slug,
scope=...)``).

On the pages, a restricted browser session knows the page where the person does what its scope
asks (``continue_at``, kept with the refusal's message in Flask's signed cookie, bound to the
session's id; ``password_change`` always has its side's change-password page). Every page
answers 303 there, but the log-outs, the login pages (the next login lifts a plugin's
restriction), static files, and the views that accept its scope: core's marked with
:func:`accepts_login_scope`, plugins' through ``require_staff``, ``require_account`` or
``require_support`` with ``login_scope``, which make the person ``current_user`` for the rest
of the request (:func:`accept_login_scope`). Plugins' views run, as to nobody, before core knows
whether they accept it; if they did not, their answer becomes the 303. A restricted cookie whose
page is not known (another browser's) is simply not signed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, abort, current_app, g, redirect, request, url_for
from flask import session as signed_cookie
from flask_login import LoginManager, UserMixin, current_user
from werkzeug.exceptions import Unauthorized

from bookwell.core.access import login, sessions, support
from bookwell.core.context import tenant_info, user_info
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import ApiKey, AuthSession, Tenant, User
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
# Pages a restricted browser session may always use: leaving, and logging in again (the next
# login is what lifts a plugin's restriction).
OPEN_TO_RESTRICTED_PAGES = frozenset(
    {
        "admin_auth.logout",
        "support_auth.logout_support",
        "client_accounts.logout",
        "admin_auth.login",
        "admin_auth.login_step",
        "support_auth.login",
        "support_auth.login_step",
        "client_accounts.login_page",
        "client_accounts.login_step",
    }
)
# In Flask's signed cookie: {"session": id, "to": continue_at, "message": why}.
CONTINUE_AT = "bookwell_continue_at"
MESSAGE_KEPT = 1000  # characters of the refusal's message the cookie keeps
PAGE_RESTRICTION = "bookwell_page_restriction"
ACCEPTED = "bookwell_login_scope_accepted"
DEFERRED = "bookwell_login_scope_deferred"
LOGIN_SCOPES = "bookwell_login_scopes"  # on a core view: the restricted scopes it accepts
View = TypeVar("View", bound=Callable[..., Any])


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
    return _signed_in(rows) if rows is not None else None


def _signed_in(rows: SignedInRows) -> SignedIn:
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
    """The rows of this request's restricted session, if its bearer (or, on the pages, its
    cookie) is one (see above)."""
    current_user.is_authenticated  # noqa: B018 - loads the request's caller
    return g.get(RESTRICTED)


def restriction_message(scope: str) -> str:
    return f"This login is restricted to one step ({scope}): it opens nothing else until then."


@dataclass(frozen=True)
class PageRestriction:
    """This request's restricted browser session: its rows, the scope and the code that
    restricted it, the page it goes to and why."""

    rows: SignedInRows
    scope: str
    code: str
    continue_at: str
    message: str


def remember_restriction(session_id: int, continue_at: str, message: str) -> None:
    """Where the restricted browser session ``session_id`` goes, and why (at its login)."""
    signed_cookie[CONTINUE_AT] = {
        "session": session_id,
        "to": continue_at,
        "message": message[:MESSAGE_KEPT],
    }


def forget_restriction() -> None:
    signed_cookie.pop(CONTINUE_AT, None)


def page_restriction() -> PageRestriction | None:
    """The restricted browser session of this page request, if it knows where it goes."""
    if request.path.startswith(API_PREFIX):
        return None
    if PAGE_RESTRICTION in g:
        return g.get(PAGE_RESTRICTION)
    found = None
    rows = restricted_rows()
    if rows is not None and rows.session is not None:
        scope, code = login.restriction_of(rows.session.scope)
        kept = signed_cookie.get(CONTINUE_AT)
        to = message = None
        if isinstance(kept, dict) and kept.get("session") == rows.session.id:
            to, message = kept.get("to"), kept.get("message")
        elif scope == login.PASSWORD_CHANGE:
            tenant_id = rows.user.tenant_id
            tenant = db.session().get(Tenant, tenant_id) if tenant_id is not None else None
            to = login.change_password_page(tenant, rows.user)
        if isinstance(to, str) and login.opens_a_page(current_app._get_current_object(), to):
            found = PageRestriction(
                rows, scope, code, to, str(message or restriction_message(scope))
            )
    setattr(g, PAGE_RESTRICTION, found)
    return found


def accepts_login_scope(*scopes: str) -> Callable[[View], View]:
    """Marks a core page that a browser session restricted to one of ``scopes`` may open (it
    then calls :func:`accept_login_scope` for the person); every other page sends it to its
    ``continue_at``."""

    def mark(view: View) -> View:
        setattr(view, LOGIN_SCOPES, (*getattr(view, LOGIN_SCOPES, ()), *scopes))
        return view

    return mark


def accept_login_scope(login_scope: str | None) -> SignedInRows | None:
    """The rows of whoever is signed in on this page: a full session; or, when ``login_scope``
    names its scope, a restricted one, which then is ``current_user`` for the rest of the
    request (templates, ``plugin_context``'s actor). ``None`` for nobody."""
    rows = signed_in_rows()
    if rows is not None or login_scope is None or request.path.startswith(API_PREFIX):
        return rows
    restricted = restricted_rows()
    if restricted is None or restricted.session is None:
        return None
    if login.restriction_of(restricted.session.scope)[0] != login_scope:
        return None
    setattr(g, ROWS, restricted)
    g._login_user = _signed_in(restricted)  # Flask-Login's current_user of this request
    setattr(g, ACCEPTED, True)
    return restricted


def send_restricted_on() -> None:
    """Ends the request with the 303 to ``continue_at`` if a restricted browser session that
    no view accepted asks for it (the gates of plugins' pages call this first)."""
    restriction = page_restriction()
    if restriction is not None and not g.get(ACCEPTED):
        abort(_to_continue_at(restriction))


def _to_continue_at(restriction: PageRestriction) -> Response:
    return redirect(restriction.continue_at, 303)


def _enforce_on_pages():
    """A restricted browser session opens only the log-outs, the login pages, static files and
    the views that accept its scope; everything else answers 303 to its ``continue_at``."""
    if not request.cookies.get(session_cookies.COOKIE):
        return None
    restriction = page_restriction()
    endpoint = request.endpoint or ""
    if restriction is None or not endpoint or endpoint in OPEN_TO_RESTRICTED_PAGES:
        return None
    if endpoint == "static" or endpoint.endswith(".static"):
        return None
    view = current_app.view_functions.get(endpoint)
    if (
        restriction.scope in getattr(view, LOGIN_SCOPES, ())
        or endpoint.startswith(PLUGIN_BLUEPRINT_PREFIX)
        or request.path == restriction.continue_at
    ):
        setattr(g, DEFERRED, True)  # the view decides (accept_login_scope); see below
        return None
    return _to_continue_at(restriction)


def _redirect_unaccepted(response: Response) -> Response:
    """After a view that could have accepted the restricted session and did not: its answer
    becomes the 303 (headers others set are kept). Its own ``continue_at`` is left alone, so a
    page that forgot to accept its scope never loops."""
    restriction = g.get(PAGE_RESTRICTION)
    if not g.get(DEFERRED) or g.get(ACCEPTED) or restriction is None:
        return response
    if request.path == restriction.continue_at:
        return response
    response.status_code = 303
    response.headers["Location"] = restriction.continue_at
    response.set_data(b"")
    return response


def restriction_notice() -> str | None:
    """The message a restricted browser session shows on the pages it may open."""
    if request.path.startswith(API_PREFIX) or not request.cookies.get(session_cookies.COOKIE):
        return None
    if request.endpoint in OPEN_TO_RESTRICTED_PAGES:
        return None  # the login pages: whoever logs in there may be someone else
    restriction = page_restriction()
    return restriction.message if restriction is not None else None


def enforce_restrictions():
    """Before every view: a restricted bearer reaches only the routes open to its scope, and
    gets 403 with the code of the refusal that restricted it everywhere else (for a browser
    session on the pages, see :func:`_enforce_on_pages`)."""
    if not request.path.startswith(API_PREFIX):
        return _enforce_on_pages()
    if not request.headers.get("Authorization"):
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
    app.context_processor(
        lambda: {"current_user": current_user, "login_restriction": restriction_notice()}
    )
    app.before_request(enforce_restrictions)
    app.after_request(_redirect_unaccepted)
    app.extensions[API_USERS_EXTENSION] = ApiUsers()
    # The plugins are loaded by now: check the support plugins' settings at start, not at the
    # first support login (a bad configuration is logged, and refuses support logins).
    support.init_app(app)
