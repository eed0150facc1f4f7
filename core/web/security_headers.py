"""Headers every answer carries: a strict CSP (no inline scripts or styles), nosniff, no referrer.

``Referrer-Policy: no-referrer`` because manage links carry their token in the URL, and a page
must not leak it to whatever it links to. Framing is refused everywhere (``frame-ancestors
'none'`` and ``X-Frame-Options: DENY``) except where a page set its own CSP allowing some
ancestors (a tenant's booking pages, for the tenant's own sites): there the CSP governs alone.

``Cache-Control: no-store`` on every answer that may be about whoever asks, so that no browser
cache, shared proxy or back button keeps it: staff and support pages, client accounts, the
manage page (its token is in the URL), the API's tokens and bookings. It fails closed: an answer
is private unless it is a GET of a route known to answer everybody alike (``SHARED``), asked
without credentials (no bearer, no session cookie), with no form's CSRF token (which is the
visitor's own), changing no cookie. Static files keep their own caching.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request, session

from bookwell.core.web import session_cookies

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


PRIVATE = "no-store"
# Routes whose answer is the same for every anonymous visitor: the API's description, a
# business's catalogue and free slots, and the booking pages before the details form.
SHARED = frozenset(
    {
        "openapi.openapi_document",
        "public_api.list_services",
        "public_api.list_providers",
        "public_api.availability",
        "public_api.booking_requirements",
        "booking_pages.start",
        "booking_pages.day",
        "booking_pages.slots",
        "booking_pages.brand_css",
        "booking_pages.logo",
    }
)
CREDENTIAL_COOKIES = (session_cookies.COOKIE, session_cookies.PENDING_COOKIE)


def is_static(endpoint: str | None) -> bool:
    """Flask's, a theme's or a plugin's static files."""
    return endpoint is not None and (endpoint == "static" or endpoint.endswith(".static"))


def is_private(response: Response) -> bool:
    """Whether the answer may depend on who asked (see the module's docstring)."""
    if request.endpoint not in SHARED or request.method not in ("GET", "HEAD"):
        return True
    if "Authorization" in request.headers or any(
        name in request.cookies for name in CREDENTIAL_COOKIES
    ):
        return True
    # Not session.accessed: looking for a signed-in user reads Flask's cookie on every request.
    return (
        current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") in g
        or session.modified
        or "Set-Cookie" in response.headers
    )


def init_app(app: Flask) -> None:
    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
            headers.setdefault("X-Frame-Options", "DENY")
        if not is_static(request.endpoint) and is_private(response):
            # Not setdefault: no view (a plugin's neither) may let a private answer be kept.
            headers["Cache-Control"] = PRIVATE
        return response
