"""SSL enforcement: a business's pages and API over HTTPS only, and browsers told to keep to it.

For a business that switched it on:

* a plain-HTTP ``GET`` or ``HEAD`` is sent to the same address over HTTPS (308, which keeps the
  method); nothing of the request is looked at but its address;
* any other method over plain HTTP is refused with 403 ``https_required`` before any view runs:
  a form, a booking, a login or a password sent in the clear is never processed, only refused
  (redirecting it would tell the browser to send the same secrets again, and a 308 would);
* every HTTPS answer carries ``Strict-Transport-Security: max-age=<hsts_max_age>``, so that the
  browser goes straight to HTTPS next time, without the plain-HTTP request an attacker could
  answer. It is never sent over plain HTTP, where browsers must ignore it (RFC 6797, 7.2).

Core asks ``before_request`` for every route of the business: those with its slug in the path,
and the API's routes without one (``/api/v1/auth/...``) when the bearer is one of its users'.
Whether a request came over HTTPS is core's ``ctx.request.scheme``: behind a reverse proxy,
``X-Forwarded-Proto`` counts only with ``BOOKWELL_TRUSTED_PROXIES`` set (see docs/deploy.md).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from flask_babel import gettext, lazy_gettext

from bookwell.hooks import Manifest, Redirect, Refusal, RequestInfo, Setting, hookimpl

ONE_YEAR = 365 * 24 * 60 * 60  # 31536000 seconds
# Beyond what any browser keeps (they cap it at one or two years); a bound, not advice.
TEN_YEARS = 10 * ONE_YEAR
# The methods a redirect may repeat: they change nothing and carry no body.
SAFE_METHODS = frozenset({"GET", "HEAD"})

MANIFEST = Manifest(
    name="ssl",
    title=lazy_gettext("SSL enforcement"),
    description=lazy_gettext(
        "Your booking pages, staff pages and API over HTTPS only: plain-HTTP visits are sent "
        "to HTTPS, anything sent over plain HTTP (a booking, a login) is refused unread, and "
        "browsers are told to use HTTPS from then on (HSTS)."
    ),
    version="1.0.0",
    category="Security",
    author="Bookwell",
    settings=(
        Setting(
            key="hsts_max_age",
            type="int",
            default=ONE_YEAR,
            label=lazy_gettext("HSTS max-age (seconds)"),
            help=lazy_gettext(
                "How long browsers keep to HTTPS after a visit (Strict-Transport-Security); at "
                "least 31536000, one year. HSTS binds the whole host name, not only this "
                "business: every business served on the same host is HTTPS-only for those "
                "browsers too, and switching this plugin off does not undo it quickly: "
                "browsers keep it until max-age runs out."
            ),
            max=TEN_YEARS,
        ),
    ),
)


@hookimpl
def check_settings(settings) -> dict[str, str] | None:
    # A floor, not Setting.min: its message says why, where core's would only say the number.
    if settings["hsts_max_age"] < ONE_YEAR:
        return {
            "hsts_max_age": gettext(
                "HSTS max-age must be at least %(seconds)s seconds (one year): a shorter one "
                "lets browsers fall back to plain HTTP between visits.",
                seconds=ONE_YEAR,
            )
        }
    return None


@hookimpl
def before_request(ctx) -> Redirect | Refusal | None:
    request = ctx.request
    if request is not None and request.scheme == "https":
        return None
    if request is not None and request.method in SAFE_METHODS and request.url:
        return Redirect(https_twin(request), 308)
    return Refusal(
        gettext(
            "This business takes requests over a secure connection (HTTPS) only; nothing was "
            "done. Please use its https:// address and try again."
        ),
        code="https_required",
        status=403,
        details={"https_url": https_twin(request)} if request is not None and request.url else None,
    )


@hookimpl
def response_headers(ctx, settings) -> dict[str, str] | None:
    if ctx.request is None or ctx.request.scheme != "https":
        return None
    return {"Strict-Transport-Security": hsts_header(settings["hsts_max_age"])}


def hsts_header(max_age: int) -> str:
    # No includeSubDomains: it would bind every other site under the host's name too, which
    # one business on a shared host has no say over.
    return f"max-age={max_age}"


def https_twin(request: RequestInfo) -> str:
    """The address asked for, over HTTPS: same host, path and query. An explicit ``:80`` goes,
    being plain HTTP's port; any other port stays (a test server's, or a proxy's choice)."""
    parts = urlsplit(request.url)
    host = parts.netloc.removesuffix(":80")
    return urlunsplit(("https", host, parts.path, parts.query, ""))
