"""The JSON API under ``/api/v1``."""

from flask import Flask

from bookwell.core.web import ratelimits
from bookwell.core.web.api import errors
from bookwell.core.web.api.audit_api import audit_api
from bookwell.core.web.api.auth import platform_auth, tenant_auth
from bookwell.core.web.api.clients import clients
from bookwell.core.web.api.openapi import openapi
from bookwell.core.web.api.plugins import plugins_api
from bookwell.core.web.api.public import public
from bookwell.core.web.api.staff import staff


def init_app(app: Flask) -> None:
    app.register_blueprint(public)
    app.register_blueprint(staff)
    app.register_blueprint(audit_api)
    app.register_blueprint(plugins_api)
    app.register_blueprint(tenant_auth)
    app.register_blueprint(platform_auth)
    app.register_blueprint(clients)
    app.register_blueprint(openapi)
    errors.register(app)
    ratelimits.init_app(app)  # after the views exist: it wraps the ones marked rate_limited
