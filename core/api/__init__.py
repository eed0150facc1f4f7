"""The JSON API under ``/api/v1``."""

from flask import Flask

from . import errors, ratelimits
from .openapi import openapi
from .public import public


def init_app(app: Flask) -> None:
    app.register_blueprint(public)
    app.register_blueprint(openapi)
    errors.register(app)
    ratelimits.init_app(app)  # after the views exist: it wraps the ones marked rate_limited
