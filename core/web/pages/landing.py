"""The site's own front door: ``/`` says what Bookwell is and where staff log in (a business's
pages all live under its own address), and ``/favicon.ico`` answers what browsers ask for."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext

from bookwell.core.booking.tenants import SLUG

landing_pages = Blueprint("landing", __name__)


@landing_pages.get("/")
def home():
    return render_template("landing.html", error=None)


@landing_pages.get("/staff")
def staff_login():
    """The login of the business typed on the landing page. Whether it exists is the login
    page's to say (its 404 is the same as for any unknown address)."""
    slug = request.args.get("business", "").strip().lower()[:63]
    if not SLUG.match(slug):
        message = gettext(
            "Type your business's short name: letters, digits and hyphens, as in its address."
        )
        return render_template("landing.html", error=message, typed=slug), 422
    return redirect(url_for("admin_auth.login", slug=slug))


@landing_pages.get("/favicon.ico")
def favicon():
    # Browsers ask for /favicon.ico on their own; the pages link the SVG itself.
    return redirect(url_for("static", filename="favicon.svg"), 301)
