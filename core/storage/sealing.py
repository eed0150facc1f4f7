"""Encrypting small secrets at rest with the instance's encryption key (Fernet: AES + HMAC).

Used for what must be read back later (a replayed answer holding a manage token; TOTP seeds).
What only needs checking (tokens, passwords) is hashed instead.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask, current_app

EXTENSION = "bookwell.sealing"


class Unsealable(ValueError):
    """The text was sealed with another key, or altered."""


def init_app(app: Flask) -> None:
    # Fernet wants 32 url-safe-base64 bytes; any configured key string is stretched to that.
    digest = hashlib.sha256(str(app.config["ENCRYPTION_KEY"]).encode()).digest()
    app.extensions[EXTENSION] = Fernet(base64.urlsafe_b64encode(digest))


def seal(text: str, app: Flask | None = None) -> str:
    return (app or current_app).extensions[EXTENSION].encrypt(text.encode()).decode()


def unseal(sealed: str, app: Flask | None = None) -> str:
    try:
        return (app or current_app).extensions[EXTENSION].decrypt(sealed.encode()).decode()
    except InvalidToken as error:
        raise Unsealable("cannot decrypt: wrong encryption key or altered data") from error
