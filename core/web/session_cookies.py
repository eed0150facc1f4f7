"""Browser sessions: the cookie holds only a random secret; everything else is server-side.

Who the cookie belongs to is found by the request loader behind Flask-Login's ``current_user``
(:mod:`bookwell.core.web.identity`); here are the cookies themselves and the pending login.

The cookie is HttpOnly, SameSite=Lax, and Secure whenever the request came over HTTPS. A new
secret is issued at every login step, so a secret planted before login is worth nothing after.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, Response, current_app, request

from bookwell.core.access import sessions
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import AuthSession, User

COOKIE = "bookwell_session"
PENDING_COOKIE = "bookwell_login"


def pending() -> tuple[AuthSession, User] | None:
    """A login that passed its password and awaits a further step (a challenge)."""
    secret = request.cookies.get(PENDING_COOKIE, "")
    if not secret:
        return None
    return sessions.resolve(
        current_app._get_current_object(), db.session(), secret, "pending", clock.now()
    )


def set_cookie(response: Response, name: str, secret: str, expires_at: datetime) -> None:
    response.set_cookie(
        name,
        secret,
        expires=expires_at,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
        path="/",
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="Lax", secure=request.is_secure)


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the session's own timeouts bound it
