"""The French catalogue is complete, and the templates it covers leave no text unmarked.

Every string marked for translation (``_()``, ``gettext``, ``lazy_gettext``, ``N_``) in the
sources that ``babel.cfg`` lists must have a French translation in
``core/translations/fr/LC_MESSAGES/messages.po``, not fuzzy, with the same placeholders; the
committed ``messages.mo`` must be that ``.po`` compiled. ``docs/translations.md`` tells how to
update both after a change.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "core" / "translations" / "fr" / "LC_MESSAGES"
# The names that mark a string, as `pybabel extract -k lazy_gettext` reads them.
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "N_": None,
    "lazy_gettext": None,
}
# The template folders whose every visible text must be marked for translation. The pages that
# are not yet translated join this list once they are: today, every folder of core's and the
# built-in plugins' and themes' templates is here.
COVERED_TEMPLATE_DIRS = (
    "core/web/templates/admin",
    "core/web/templates/mail",
    "core/web/templates/passwords",
    "plugins/*/templates/*",
    "themes/*/templates/book",
    # An installable theme has no catalogue of its own: it may use only Bookwell's messages
    # (test_an_example_theme_uses_only_messages_of_the_catalogue).
    "examples/bookwell-theme-*/src/*/templates/book",
)
COVERED_TEMPLATES = ("base.html", "error.html", "landing.html", "lang_switch.html", "steps.html")
# Attributes a person reads (or hears) like text.
READ_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label", "aria-description"}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> dict[str, str]:
    """Each marked message id, and where it was found (a plural message, ``ngettext``, by its
    singular: the catalogue's key)."""
    with open(ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config, "babel.cfg")
    found = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def french():
    with open(CATALOGUE / "messages.po", "rb") as po:
        return read_po(po, locale="fr")


def _key(message) -> str:
    # A plural message's id is a tuple read from the .po, a list read from the .mo.
    return message.id[0] if isinstance(message.id, tuple | list) else message.id


def _strings(message) -> tuple[str, ...]:
    return (message.string,) if isinstance(message.string, str) else tuple(message.string)


def test_every_marked_string_has_a_french_translation():
    catalogue = french()
    missing, untranslated, fuzzy, mismatched = [], [], [], []
    for msgid, where in sorted(extracted().items()):
        message = catalogue.get(msgid)
        if message is None:
            missing.append(f"{where}: {msgid!r}")
            continue
        # A plural message has one translation per plural form of French, each with the
        # placeholders of the English singular (``%(num)d`` included).
        translations = [message.string] if isinstance(message.string, str) else message.string
        if not all(translations):
            untranslated.append(f"{where}: {msgid!r}")
        elif message.fuzzy:
            fuzzy.append(f"{where}: {msgid!r}")
        for translation in translations if all(translations) else ():
            if sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(translation)):
                mismatched.append(f"{where}: {msgid!r} -> {translation!r}")
    assert not missing, "not in the French catalogue (pybabel update):\n" + "\n".join(missing)
    assert not untranslated, "no French translation:\n" + "\n".join(untranslated)
    assert not fuzzy, "fuzzy, to check:\n" + "\n".join(fuzzy)
    assert not mismatched, "placeholders differ:\n" + "\n".join(mismatched)


def test_the_catalogue_holds_no_message_the_sources_dropped():
    marked = set(extracted())
    stale = [message.id for message in french() if message.id and _key(message) not in marked]
    assert not stale, "obsolete, remove with pybabel update --ignore-obsolete: " + repr(stale)


def test_the_committed_mo_is_the_po_compiled():
    with open(CATALOGUE / "messages.mo", "rb") as mo:
        compiled = read_mo(mo)
    expected = {
        (message.context, _key(message)): _strings(message) for message in french() if message.id
    }
    actual = {
        (message.context, _key(message)): _strings(message) for message in compiled if message.id
    }
    assert actual == expected, "run: pybabel compile -d core/translations"


def test_a_normal_install_carries_the_catalogue():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["bookwell.core"]
    for name in ("messages.po", "messages.mo"):
        relative = (CATALOGUE / name).relative_to(ROOT / "core").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


# --- text left unmarked in templates ----------------------------------------------------------

JINJA = re.compile(r"\{#.*?#\}|\{%-?\s*trans\b.*?endtrans\s*-?%\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
WORD = re.compile(r"[^\W\d_]{2,}")  # letters: a word a person reads; not "·", "--" or "%"
# Names that are the same in every language.
UNTRANSLATED = re.compile(r"\b(?:JSON|CSV|SHA-256|TOTP|QR|Outlook|Bookwell)\b")
# What a macro writes into a tag (` aria-invalid="true"`): attributes, not text.
ATTRIBUTES_ONLY = re.compile(r'^(?:\s*[\w-]+="[^"]*")+\s*$')


class _TextNodes(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skipped = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skipped += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value and WORD.search(value):
                self.found.append(f'{name}="{value}"')
        if tag == "input" and dict(attrs).get("type") in ("submit", "button"):
            value = dict(attrs).get("value") or ""
            if WORD.search(value):
                self.found.append(f'value="{value}"')

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skipped -= 1

    def handle_data(self, data):
        if not self._skipped and WORD.search(data) and not ATTRIBUTES_ONLY.match(data):
            self.found.append(data.strip())


def unmarked_text(source: str, html: bool) -> list[str]:
    """The text a person would read that no translation call produces: Jinja's own syntax
    (where ``_()`` is) is blanked out, then the HTML's text nodes and read attributes looked at
    (a ``.txt`` template's remaining lines, for plain text)."""
    blanked = UNTRANSLATED.sub(" ", JINJA.sub(" ", source))
    if not html:
        return [line.strip() for line in blanked.splitlines() if WORD.search(line)]
    parser = _TextNodes()
    parser.feed(blanked)
    return parser.found


def covered_templates() -> list[Path]:
    templates = [ROOT / "core" / "web" / "templates" / name for name in COVERED_TEMPLATES]
    for pattern in COVERED_TEMPLATE_DIRS:
        for folder in sorted(ROOT.glob(pattern)):
            templates.extend(sorted(p for p in folder.rglob("*") if p.suffix in (".html", ".txt")))
    return templates


def test_the_covered_folders_hold_templates():
    found = covered_templates()
    for pattern in COVERED_TEMPLATE_DIRS:
        assert any(
            fnmatch.fnmatch(path.parent.relative_to(ROOT).as_posix(), pattern) for path in found
        ), pattern


@pytest.mark.parametrize(
    "template", covered_templates(), ids=lambda path: path.relative_to(ROOT).as_posix()
)
def test_no_visible_text_is_left_out_of_the_catalogue(template):
    left = unmarked_text(template.read_text(), html=template.suffix == ".html")
    assert not left, f"wrap in {{{{ _('...') }}}}: {left}"


def test_the_scan_finds_text_outside_translation_calls():
    """The scan itself: text, read attributes and plain-text lines count; marked ones do not."""
    page = '<p>{{ _("Hello") }}</p><p title="Close">Plain {{ name }}</p><b>{{ x }} · 3</b>'
    assert unmarked_text(page, html=True) == ['title="Close"', "Plain"]
    assert unmarked_text('{{ _("What:") }} {{ service }}\nWhen: {{ start }}', html=False) == [
        "When:"
    ]
    assert unmarked_text("{% trans %}Hello{% endtrans %}", html=True) == []


def test_an_example_theme_uses_only_messages_of_the_catalogue():
    """A theme installed apart (``examples/bookwell-theme-*``) has no catalogue: a message of its
    own would stay English on a French page, so each one it marks must be one Bookwell has."""
    from babel.messages.extract import extract_from_file

    catalogue = french()
    themes = sorted(ROOT.glob("examples/bookwell-theme-*/src/*/templates"))
    assert themes
    foreign = []
    for folder in themes:
        for template in sorted(folder.rglob("*.html")):
            for _line, message, _comments, _context in extract_from_file(
                "jinja2", str(template), keywords=KEYWORDS
            ):
                for msgid in message if isinstance(message, tuple) else (message,):
                    if msgid and catalogue.get(msgid) is None:
                        foreign.append(f"{template.relative_to(ROOT)}: {msgid!r}")
    assert not foreign, "not a message of Bookwell's catalogue:\n" + "\n".join(foreign)
