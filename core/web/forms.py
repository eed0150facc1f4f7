"""What the pages' forms share: the one standard for typed text
(:mod:`bookwell.core.foundation.text`) as WTForms validators, so a form refuses exactly what the
API and the commands refuse, with the same message.

Every text field of a form carries one of them, first in its list so that ``Optional`` (which
takes a field of spaces and control characters for empty and stops there) cannot skip it;
``tests/web/test_input_standard.py`` walks every form class of core and fails on a text field
without one. Passwords are left out: only their hash is kept, they are never shown, logged or put
in a header, so any character is harmless there, and refusing one would lock out whoever chose it.

A page shows these messages in its reader's language; the API keeps the English of
:mod:`bookwell.core.foundation.text` (``tests/web/test_i18n.py`` checks that they are the same).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext
from wtforms.validators import StopValidation

from bookwell.core.foundation import text

SINGLE_LINE_MESSAGE = lazy_gettext("Please use a single line, without control characters.")
MULTI_LINE_MESSAGE = lazy_gettext(
    "Please remove the control characters (such as NUL) from this text."
)


class SingleLine:
    """The field holds one line of plain text: names, e-mail addresses, phones, reasons..."""

    def __call__(self, form: Any, field: Any) -> None:
        if isinstance(field.data, str) and not text.is_single_line(field.data):
            raise StopValidation(str(SINGLE_LINE_MESSAGE))


class MultiLine:
    """The field holds text of several lines (notes, descriptions, an address): line breaks and
    tabs are fine, other control characters (NUL above all) are not."""

    def __call__(self, form: Any, field: Any) -> None:
        if isinstance(field.data, str) and not text.is_multi_line(field.data):
            raise StopValidation(str(MULTI_LINE_MESSAGE))


class WholeNumber:
    """A number field's typed text is short: WTForms' ``NumberRange`` turns a number of hundreds
    of digits into a float and fails with an error instead of refusing it. First in the list."""

    MAX_CHARACTERS = 15

    def __call__(self, form: Any, field: Any) -> None:
        typed = (field.raw_data or [""])[0]
        if isinstance(typed, str) and len(typed.strip()) > self.MAX_CHARACTERS:
            raise StopValidation(str(lazy_gettext("That number is too large.")))


STANDARD_VALIDATORS = (SingleLine, MultiLine)
