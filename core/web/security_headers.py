"""Headers every answer carries: a strict CSP (no inline scripts or styles), nosniff, no referrer.

``Referrer-Policy: no-referrer`` because manage links carry their token in the URL, and a page
must not leak it to whatever it links to. Framing is refused everywhere (``frame-ancestors
'none'`` and ``X-Frame-Options: DENY``) except where a page set its own CSP allowing some
ancestors (a tenant's booking pages, for the tenant's own sites): there the CSP governs alone.
"""

from __future__ import annotations

from flask import Flask, Response

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


def init_app(app: Flask) -> None:
    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
            headers.setdefault("X-Frame-Options", "DENY")
        return response
