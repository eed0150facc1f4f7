"""Encrypting small secrets at rest with the instance's key ring (Fernet: AES + HMAC).

Used for what must be read back later (a replayed answer holding a manage token; TOTP seeds).
What only needs checking (tokens, passwords) is hashed instead.

Sealing uses the current (first) key of ``BOOKWELL_ENCRYPTION_KEY``; unsealing tries every key
of the ring (:mod:`bookwell.core.storage.keys`), so what was sealed before a rotation still opens
while the old key stays at the end of the ring. Each key is stretched to Fernet's 32 bytes as it
always was (SHA-256 of its text), so values sealed before the ring existed open too.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from flask import Flask, current_app

from bookwell.core.storage import keys

EXTENSION = "bookwell.sealing"


class Unsealable(ValueError):
    """The text was sealed with another key, or altered."""


def init_app(app: Flask) -> None:
    # Reads the ring now, so a malformed BOOKWELL_ENCRYPTION_KEY stops the app at start.
    app.extensions[EXTENSION] = keys.ring_of(app).fernet


def seal(text: str, app: Flask | None = None) -> str:
    return (app or current_app).extensions[EXTENSION].encrypt(text.encode()).decode()


def unseal(sealed: str, app: Flask | None = None) -> str:
    try:
        return (app or current_app).extensions[EXTENSION].decrypt(sealed.encode()).decode()
    except InvalidToken as error:
        raise Unsealable("cannot decrypt: wrong encryption key or altered data") from error


def reseal(sealed: str, app: Flask | None = None) -> str | None:
    """``sealed``, sealed again with the current key (its time stamp kept); ``None`` when it
    already is. :class:`Unsealable` when no key of the ring opens it. For key rotation."""
    ring = keys.ring_of(app or current_app)
    token = sealed.encode()
    try:
        ring.current.fernet.decrypt(token)
        return None
    except InvalidToken:
        pass
    try:
        return ring.fernet.rotate(token).decode()
    except InvalidToken as error:
        raise Unsealable("cannot decrypt: wrong encryption key or altered data") from error
