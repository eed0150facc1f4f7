"""Server-rendered pages: the client's booking pages and account, staff and support login, the
staff pages and the marketplace."""

from flask import Flask

from bookwell.core.web.pages import accounts, admin, brand, marketplace, passwords
from bookwell.core.web.pages.auth import admin_auth, support_auth
from bookwell.core.web.pages.booking import init_app as init_booking_pages
from bookwell.core.web.pages.landing import landing_pages


def init_app(app: Flask) -> None:
    app.register_blueprint(admin_auth)
    app.register_blueprint(support_auth)
    init_booking_pages(app)
    brand.init_app(app)
    accounts.init_app(app)
    admin.init_app(app)  # after admin_auth: the agenda takes over its home page
    marketplace.init_app(app)
    passwords.init_app(app)
    app.register_blueprint(landing_pages)
