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

_SURROGATES = "\ud800-\udfff"
_CONTROLS_BUT_LINE_BREAKS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_NOT_IN_MULTI_LINE = re.compile(f"[{_CONTROLS_BUT_LINE_BREAKS}{_SURROGATES}]")
_NOT_IN_SINGLE_LINE = re.compile(
    f"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069{_SURROGATES}]"
)


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
