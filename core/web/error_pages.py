"""Error pages for people: a browser that hits a missing page, a refusal or a failure gets a page
in the site's dress (the business's theme on its booking pages) with a way back, never a bare
Werkzeug page, a JSON body or a stack trace. The API keeps its JSON errors."""

from __future__ import annotations

from flask import Response, g, make_response, render_template, request
from flask_babel import lazy_gettext

from bookwell.core.web import themes
from bookwell.core.web.request_tenant import current_tenant

TITLES = {
    400: lazy_gettext("That request was not understood"),
    403: lazy_gettext("Not allowed"),
    404: lazy_gettext("Page not found"),
    405: lazy_gettext("Not possible here"),
    413: lazy_gettext("Too much at once"),
    429: lazy_gettext("Too many requests"),
    500: lazy_gettext("Something went wrong"),
    503: lazy_gettext("Temporarily unavailable"),
}
EXPLANATIONS = {
    404: lazy_gettext(
        "There is no page at this address. Check it, or start again from the link below."
    ),
    405: lazy_gettext("This page does not accept that kind of request."),
    429: lazy_gettext(
        "You have made many requests in a short time; please wait a minute and try again."
    ),
    500: lazy_gettext("Something went wrong on our side. Nothing was changed; please try again."),
}
NOT_DONE = lazy_gettext("This could not be done.")
NOT_POSSIBLE = lazy_gettext("Not possible")


def error_page(status: int, messages: list[str] | None = None) -> Response:
    """The page for ``status``, saying ``messages`` (or what the status means)."""
    shown = [str(message) for message in (messages or []) if message] or [
        str(EXPLANATIONS.get(status, NOT_DONE))
    ]
    title = str(TITLES.get(status, NOT_POSSIBLE))
    tenant = g.get("tenant") or _tenant_in_path()
    if tenant is not None and request.path.startswith("/book/"):
        # The booking pages' own dress; their template links back to the start.
        body = themes.render(tenant.theme, "book/problem.html", tenant=tenant, messages=shown)
    else:
        back = None
        if tenant is not None and request.path.startswith("/admin/"):
            back = f"/admin/{tenant.slug}/"
        body = render_template("error.html", title=title, messages=shown, back=back)
    return make_response(body, status)


def _tenant_in_path():
    """The business ``/book/<slug>/...`` or ``/admin/<slug>/...`` names, when no route matched."""
    parts = request.path.split("/")
    if len(parts) < 3 or parts[1] not in ("book", "admin") or not parts[2]:
        return None
    try:
        return current_tenant(parts[2])
    except Exception:  # the page for a failure must not fail in its turn
        return None
