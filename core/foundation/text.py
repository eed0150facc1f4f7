"""The one standard for text that people type, whichever way it comes in: the API's schemas, the
pages' forms, the commands' options and core's own functions that store names all use these rules.

Two kinds of text:

- one-line text (names, e-mail addresses, phone numbers, titles, reasons): no control character
  at all (C0 with tab and line breaks, DEL, C1 with U+0085 NEL), no line or paragraph separator
  (U+2028, U+2029) and no bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069). Such
  text ends up in mail headers, calendar lines and one-line page cells, where a line break forges
  a header (``Bcc:``) or stops a message, and a bidi override makes a name read as something
  else;
- multi-line text (notes, descriptions, addresses): tabs and line breaks are fine, and so are the
  Unicode separators and bidi marks a right-to-left text needs; the other control characters are
  not. NUL above all: PostgreSQL cannot store it in text and fails the whole request.

Both refuse lone surrogates (``\\udcff``, what a command line gives for bytes that are not UTF-8),
which no database can encode.
"""

from __future__ import annotations

import re

SINGLE_LINE_MESSAGE = "Please use a single line, without control characters."
MULTI_LINE_MESSAGE = "Please remove the control characters (such as NUL) from this text."

# What each kind refuses, as ranges of code points: the checks below and the patterns the API
# document states (SINGLE_LINE_PATTERN, MULTI_LINE_PATTERN) are both written from these.
_REFUSED_IN_MULTI_LINE = ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F))
_REFUSED_IN_SINGLE_LINE = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0x2028, 0x2029),
    (0x202A, 0x202E),
    (0x2066, 0x2069),
)
_SURROGATES = "\\ud800-\\udfff"


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    """The ranges as the inside of a character class, in escapes that Python's ``re`` and
    JSON Schema's (ECMA-262) regular expressions read alike."""
    return "".join(f"\\u{first:04x}-\\u{last:04x}" for first, last in ranges)


_NOT_IN_MULTI_LINE = re.compile(f"[{_class(_REFUSED_IN_MULTI_LINE)}{_SURROGATES}]")
_NOT_IN_SINGLE_LINE = re.compile(f"[{_class(_REFUSED_IN_SINGLE_LINE)}{_SURROGATES}]")
# For documents (OpenAPI): a value of each kind, as a JSON Schema pattern (searched, not
# anchored at both ends). Said as "no refused character anywhere" because Python's `$` also
# matches before a final line break, so `^[^...]*$` would let "Ann\n" through a validator
# written in Python. (A lone surrogate cannot be said in a pattern both dialects read; no valid
# UTF-8 request carries one.)
SINGLE_LINE_PATTERN = f"^(?![\\s\\S]*[{_class(_REFUSED_IN_SINGLE_LINE)}])"
MULTI_LINE_PATTERN = f"^(?![\\s\\S]*[{_class(_REFUSED_IN_MULTI_LINE)}])"
# A one-line name, which the server strips: something other than spaces, too.
NAME_PATTERN = SINGLE_LINE_PATTERN + "(?=[\\s\\S]*\\S)"


class TextError(ValueError):
    """Text that breaks the standard; ``str(error)`` is the message to show the person."""


def is_single_line(value: str) -> bool:
    return _NOT_IN_SINGLE_LINE.search(value) is None


def is_multi_line(value: str) -> bool:
    return _NOT_IN_MULTI_LINE.search(value) is None


def single_line(value: str) -> str:
    """``value`` unchanged, or :class:`TextError` when it is not one line of plain text."""
    if not is_single_line(value):
        raise TextError(SINGLE_LINE_MESSAGE)
    return value


def multi_line(value: str) -> str:
    """``value`` unchanged, or :class:`TextError` when it holds a control character other than
    tab and line breaks."""
    if not is_multi_line(value):
        raise TextError(MULTI_LINE_MESSAGE)
    return value


def folded(value: str) -> str:
    """``value`` made safe for one line (a mail header), each run of what one-line text may not
    hold turned into one space. For text stored before the standard held, or given by a plugin:
    a message must go out with a plain name rather than never."""
    return " ".join(_NOT_IN_SINGLE_LINE.sub(" ", value).split())
