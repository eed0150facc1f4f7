"""The JSON API under ``/api/v1``."""

from flask import Flask

from . import errors, ratelimits
from .auth import platform_auth, tenant_auth
from .clients import clients
from .openapi import openapi
from .plugins import plugins_api
from .public import public
from .staff import staff


def init_app(app: Flask) -> None:
    app.register_blueprint(public)
    app.register_blueprint(staff)
    app.register_blueprint(plugins_api)
    app.register_blueprint(tenant_auth)
    app.register_blueprint(platform_auth)
    app.register_blueprint(clients)
    app.register_blueprint(openapi)
    errors.register(app)
    ratelimits.init_app(app)  # after the views exist: it wraps the ones marked rate_limited
