"""A plugin's own catalogue of translations, for a plugin installed from PyPI: Bookwell's
catalogue holds only the texts of core and of the built-in plugins.

    from bookwell.hooks.i18n import catalogue

    texts = catalogue(__name__)  # <package>/translations/<language>/LC_MESSAGES/messages.mo
    _, lazy = texts.gettext, texts.lazy_gettext

    MANIFEST = Manifest(name="sunday_rest", title=lazy("Sunday rest"), ...)

    @hookimpl
    def before_confirm(ctx):
        return Refusal(_("We do not book on Sundays."), code="closed_on_sundays")

Each text is read in the language of the page that asks (English in the JSON API, the
business's own in a plugin's mail: ``flask_babel.force_locale``), as Bookwell's own are; a text
the catalogue lacks stays as written. ``docs/plugins.md`` ("Translating a plugin's texts") tells
how to build the catalogue with ``pybabel``.
"""

from __future__ import annotations

import importlib.resources
from typing import Any, Protocol, cast

from flask_babel import Domain  # type: ignore[import-untyped,unused-ignore]

from .types import LazyText

TRANSLATIONS_FOLDER = "translations"


class Catalogue(Protocol):
    """The texts of one plugin's catalogue, written in the reader's language."""

    def gettext(self, string: str, **variables: Any) -> str: ...

    def ngettext(self, singular: str, plural: str, num: int, **variables: Any) -> str: ...

    def lazy_gettext(self, string: str, **variables: Any) -> LazyText: ...


def catalogue(
    package: str, folder: str = TRANSLATIONS_FOLDER, domain: str = "messages"
) -> Catalogue:
    """The catalogue shipped inside the package named ``package`` (from its ``__init__.py``,
    ``__name__``; from a module of it, ``__package__``), in
    ``<folder>/<language>/LC_MESSAGES/<domain>.mo`` as ``pybabel compile`` writes it. The
    folder must be package data of the distribution (``[tool.setuptools.package-data]``)."""
    folder_path = importlib.resources.files(package).joinpath(folder)
    return cast(Catalogue, Domain(translation_directories=[str(folder_path)], domain=domain))
