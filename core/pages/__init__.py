"""Server-rendered pages (staff and support login so far; the booking pages come next)."""

from flask import Flask

from .auth import admin_auth, support_auth


def init_app(app: Flask) -> None:
    app.register_blueprint(admin_auth)
    app.register_blueprint(support_auth)
