"""Terms & Conditions: clients accept the business's terms before they book, and the business can
prove who accepted which text, when, and from where.

* The owner writes the terms in the marketplace (Markdown; an empty text is refused). Each text
  gets a version number, 1, 2, ..., kept forever with its exact text in ``terms_versions``
  (see ``versions.py`` for when a text is numbered), and its own public page,
  ``/book/<slug>/terms/<version>``, rendered with no raw HTML or script (``markdown.py``).
* Every booking asks for the consent ``terms`` (``booking_requirements``): the booking pages
  show an unticked box with a link to the current version's page, the API lists it, and core
  refuses a booking without it (422 ``invalid``, ``fields.consents``), storing nothing. Staff
  booking for a client on the telephone tick the same box, once the client has agreed.
* Core keeps the proof with each booking: the version, the SHA-256 of the exact text accepted,
  the time, the IP address and the user agent. The owner downloads it as CSV from the plugin's
  staff page (``/admin/<slug>/terms/``), which also lists every version; downloads are audited.
* A failure here (the database, a bug) refuses the booking with ``plugin_failed``, as core does
  for any consent that cannot be asked: a booking is never taken without the terms.
"""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext

from bookwell.hooks import Consent, Context, Manifest, MenuItem, Setting, hookimpl

from .pages import pages
from .versions import page_url, version_of

CONSENT_ID = "terms"
CONSENT_LABEL = lazy_gettext("I accept the Terms & Conditions")

MANIFEST = Manifest(
    name="terms",
    title=lazy_gettext("Terms & Conditions"),
    description=lazy_gettext(
        "Clients accept your Terms & Conditions before they book, with a link to them beside "
        "an unticked box. Every edit is a new version with its own page, and each booking keeps "
        "proof of the version accepted, when and from where; download it as CSV."
    ),
    version="1.0.0",
    category="Security",
    author="Bookwell",
    settings=(
        Setting(
            key="text",
            type="text",
            default="",
            label=lazy_gettext("Terms & Conditions"),
            help=lazy_gettext(
                "Markdown: # headings, **bold**, lists and [links](https://example.com). "
                "Each change becomes a new version; clients accept the latest."
            ),
            max=100_000,
        ),
    ),
)


@hookimpl
def check_settings(settings):
    # Setting(min=1) cannot say it: the default must be valid, and there is no sensible default
    # text. This way the plugin cannot be switched on without terms, nor have them emptied.
    if not settings["text"].strip():
        return {"text": gettext("Write your Terms & Conditions: they cannot be empty.")}
    return None


@hookimpl
def booking_requirements(ctx: Context, settings) -> list[Consent]:
    text = settings["text"]
    number = version_of(ctx, text)["version"]
    assert ctx.tenant is not None
    return [
        Consent(
            id=CONSENT_ID,
            label=str(CONSENT_LABEL),  # in the language of the request that asks
            text=text,
            version=str(number),
            url=page_url(ctx.tenant, number),
        )
    ]


@hookimpl
def staff_menu(ctx: Context, settings) -> list[MenuItem] | None:
    # Every staff page asks, the marketplace's answer to a save among them: the text just
    # saved gets its number there, before any client sees it.
    version_of(ctx, settings["text"])
    if ctx.actor is None or ctx.actor.role != "owner" or ctx.tenant is None:
        return None  # the page and its CSV are the owner's (plugins.manage)
    return [MenuItem(gettext("Terms & Conditions"), f"/admin/{ctx.tenant.slug}/terms/")]


@hookimpl
def routes():
    return pages


@hookimpl
def migrations():
    return "bookwell.plugins.terms:migrations"
