"""Password hashing with argon2id (argon2-cffi), and the rules core itself holds a password to.

Core's own rules are NIST SP 800-63B's floor (at least 8 characters, at most 1,024, any Unicode,
spaces allowed, never truncated; no control characters, as in any typed text); a tenant's
password policy plugin adds its own through ``before_password_set``. Passwords are
NFKC-normalised so the same password typed on two keyboards is the same password.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from babel.numbers import format_decimal
from flask import Flask, current_app
from flask_babel import get_locale, gettext

from bookwell.core.foundation import text

EXTENSION = "bookwell.passwords"
MIN_LENGTH = 8
MAX_LENGTH = 1024
# argon2-cffi's defaults (RFC 9106's low-memory profile: t=3, m=64 MiB, p=4) are above OWASP's
# floor of m=19 MiB, t=2. Tests may pass cheaper ones with PASSWORD_HASHING.
DEFAULT_PARAMETERS: dict[str, Any] = {}
# The password of an account that has none yet (an unverified client, a staff member invited
# and yet to choose one): no argon2 hash starts with "!", so checking a password against it
# always fails.
NO_PASSWORD = "!"  # noqa: S105 - a marker, not a password
# Core's rules in words, as the API (English) writes them; core_rules() in the page's language.
CORE_RULES = (
    f"At least {MIN_LENGTH} characters (at most {MAX_LENGTH:,}); spaces and any letters count.",
)


def core_rules() -> list[str]:
    """Core's rules in words, shown beside every password field before a plugin's, in the
    language of the page."""
    return [
        gettext(
            "At least %(minimum)s characters (at most %(maximum)s); spaces and any letters count.",
            minimum=MIN_LENGTH,
            maximum=format_decimal(MAX_LENGTH, locale=get_locale() or "en"),
        )
    ]


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def core_problems(password: str) -> list[str]:
    """Core's own rules; a plugin's come on top."""
    length = len(normalise(password))
    if length < MIN_LENGTH:
        return [gettext("Use at least %(count)s characters.", count=MIN_LENGTH)]
    if length > MAX_LENGTH:
        return [gettext("Use at most %(count)s characters.", count=MAX_LENGTH)]
    # The one text standard (NUL refused everywhere): a new password is one line of characters
    # one can type. Stored passwords are only ever compared, so none is locked out by this.
    if not text.is_single_line(password):
        return [gettext("Use no control characters or line breaks.")]
    return []


class Passwords:
    def __init__(self, parameters: dict[str, Any]) -> None:
        self.hasher = PasswordHasher(**parameters)

    @functools.cached_property
    def decoy_hash(self) -> str:
        """Verified against when the e-mail is unknown, so that answer costs what a wrong
        password costs and timing cannot tell which e-mails have accounts."""
        return self.hasher.hash("a decoy password nobody has")

    def hash(self, password: str) -> str:
        return self.hasher.hash(normalise(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash or self.decoy_hash, normalise(password)) and (
                stored_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Passwords(app.config.get("PASSWORD_HASHING") or DEFAULT_PARAMETERS)


def passwords(app: Flask | None = None) -> Passwords:
    return (app or current_app).extensions[EXTENSION]
