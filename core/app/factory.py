"""The app factory: one fresh app per call, with everything it owns in ``app.extensions``."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

from bookwell.core.access import passwords, permissions
from bookwell.core.booking import mailing
from bookwell.core.context import protection
from bookwell.core.foundation import clock, money
from bookwell.core.foundation import config as instance_config
from bookwell.core.pluginhost import host as pluginhost
from bookwell.core.storage import db, sealing
from bookwell.core.web import (
    i18n,
    identity,
    plugin_pages,
    plugin_routes,
    security_headers,
    session_cookies,
    tenant_requests,
)
from bookwell.core.web.pages import init_app as init_pages

log = logging.getLogger("bookwell")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` overrides the instance file and the environment (tests use it);
    an ``INSTANCE_PATH`` key in it chooses the instance folder."""
    overrides = dict(config or {})
    instance_path = instance_config.resolve_instance_path(overrides.pop("INSTANCE_PATH", None))
    app = Flask(
        "bookwell.core",
        instance_path=str(instance_path),
        template_folder="web/templates",
        static_folder="web/static",
    )

    app.config.update(instance_config.DEFAULTS)
    app.config.update(instance_config.read_instance_file(instance_path))
    app.config.update(instance_config.read_environment())
    app.config.update(overrides)
    if not app.config.get("DATABASE_URL"):
        instance_path.mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = instance_config.sqlite_url(instance_path)
    if not app.config.get("SECRET_KEY"):
        # Sessions signed with this key die with the process; `bookwell init` writes a lasting one.
        log.warning("no secret key configured: run `bookwell init`; using a temporary one")
        app.config["SECRET_KEY"] = secrets.token_urlsafe(48)
    if not app.config.get("ENCRYPTION_KEY"):
        log.warning("no encryption key configured: run `bookwell init`; using a temporary one")
        app.config["ENCRYPTION_KEY"] = secrets.token_urlsafe(32)
    # Flask's own cookie holds only the CSRF secret (sessions are server-side). Booking pages
    # framed by a tenant's site need it in a third-party frame, which browsers allow only for
    # SameSite=None cookies, which must be Secure: so on HTTPS deployments, None + Secure.
    secure_site = str(app.config["BASE_URL"]).startswith("https://")
    app.config["SESSION_COOKIE_SAMESITE"] = "None" if secure_site else "Lax"
    app.config["SESSION_COOKIE_SECURE"] = secure_site
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if int(app.config["TRUSTED_PROXIES"]):
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    db.init_app(app)
    sealing.init_app(app)
    passwords.init_app(app)
    permissions.init_app(app)
    clock.install(app, overrides.get("CLOCK"))
    pluginhost.init_app(app)
    protection.init_app(app)
    mailing.init_app(app)  # the outbox composes a booking's mail its request left behind

    from bookwell.core.web.api import init_app as init_api

    init_api(app)
    tenant_requests.init_app(app)
    plugin_pages.init_app(app)
    session_cookies.init_app(app)
    identity.init_app(app)
    security_headers.init_app(app)
    money.init_app(app)
    i18n.init_app(app)  # the request's language, and the filters that write dates in it
    init_pages(app)

    @app.get("/healthz")
    def healthz():
        try:
            db.session().execute(text("SELECT 1"))
        except Exception:  # any database failure means "not healthy", never a 500
            log.exception("health check: database unreachable")
            return jsonify(status="unavailable", database="unreachable"), 503
        return jsonify(status="ok", database="ok")

    # Last: a plugin's page that core already serves is refused, not left to shadow core's.
    plugin_routes.init_app(app)
    return app
