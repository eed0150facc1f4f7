"""``ctx.secrets``: encryption with the tenant's own key (``bookwell.hooks.Secrets``).

Each tenant has a data key of its own, made on first use and stored only wrapped by the
instance's key ring (:mod:`bookwell.core.storage.keys`), so a database dump alone opens nothing.
Two keys are derived from it (HKDF), one per use: AES-256-GCM for ``encrypt``, HMAC-SHA256 for
``digest``. Rotating the instance's key re-wraps the data key and never changes it, so tokens
and digests made before a rotation stay good.

A token is ``bws1.`` and the url-safe base64 (unpadded) of nonce, ciphertext and tag. The
tenant's id is authenticated with it: another tenant's token is refused, whatever its key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask

from bookwell.core.storage import keys

TOKEN_PREFIX = "bws1."  # noqa: S105 (a format marker, not a secret)
NONCE_BYTES = 12
TAG_BYTES = 16
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class SecretUnreadable(ValueError):
    """A token that does not decrypt: altered, cut short, not a token, or another tenant's."""


class TenantSecrets:
    """One tenant's ``ctx.secrets``. Reads (or makes) the tenant's key on first use only."""

    def __init__(self, app: Flask, tenant_id: int) -> None:
        self._app, self._tenant_id = app, tenant_id
        self._derived: tuple[AESGCM, bytes] | None = None

    def __repr__(self) -> str:
        return f"TenantSecrets(tenant_id={self._tenant_id})"

    def encrypt(self, data: bytes) -> str:
        """``data`` encrypted and authenticated under the tenant's key, as ASCII text."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"ctx.secrets.encrypt takes bytes, not {type(data).__name__} "
                "(encode text first, e.g. value.encode())"
            )
        cipher, _ = self._keys()
        nonce = os.urandom(NONCE_BYTES)
        sealed = cipher.encrypt(nonce, bytes(data), self._bound())
        return TOKEN_PREFIX + _encoded(nonce + sealed)

    def decrypt(self, token: str) -> bytes:
        """What :meth:`encrypt` was given; :class:`SecretUnreadable` (a ``ValueError``) if
        ``token`` was altered or is another tenant's."""
        if not isinstance(token, str):
            raise TypeError(
                f"ctx.secrets.decrypt takes the str encrypt gave, not {type(token).__name__}"
            )
        body = _body_of(token)
        cipher, _ = self._keys()
        try:
            return cipher.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], self._bound())
        except InvalidTag as error:
            raise SecretUnreadable(
                "cannot decrypt: the token was altered or is another business's"
            ) from error

    def digest(self, text: str) -> str:
        """HMAC-SHA256 of ``text`` (UTF-8) under a key of the tenant's, as 64 hex digits: equal
        texts give equal digests within one tenant, and nothing outside it can compute them."""
        if not isinstance(text, str):
            raise TypeError(f"ctx.secrets.digest takes str, not {type(text).__name__}")
        _, digest_key = self._keys()
        return hmac.new(digest_key, text.encode(), hashlib.sha256).hexdigest()

    def _keys(self) -> tuple[AESGCM, bytes]:
        # Two threads of one call may both derive: the same values, so no lock is needed.
        if self._derived is None:
            data_key = keys.data_key(self._app, self._tenant_id)
            self._derived = (
                AESGCM(keys.derive(data_key, "bookwell/ctx.secrets/encrypt/v1")),
                keys.derive(data_key, "bookwell/ctx.secrets/digest/v1"),
            )
        return self._derived

    def _bound(self) -> bytes:
        return f"bookwell ctx.secrets|v1|tenant:{int(self._tenant_id)}".encode()


def _encoded(body: bytes) -> str:
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def _body_of(token: str) -> bytes:
    text = token[len(TOKEN_PREFIX) :] if token.startswith(TOKEN_PREFIX) else ""
    body = b""
    if _BASE64URL.fullmatch(text):
        try:
            body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except binascii.Error:
            body = b""
    # Only the one text encrypt wrote: lenient base64 would also take other spellings of it.
    if _encoded(body) != text:
        raise SecretUnreadable("cannot decrypt: not a token of ctx.secrets.encrypt")
    if len(body) < NONCE_BYTES + TAG_BYTES:
        raise SecretUnreadable("cannot decrypt: the token was cut short")
    return body
