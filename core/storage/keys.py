"""The instance's key ring, and each tenant's own data key wrapped by it.

``BOOKWELL_ENCRYPTION_KEY`` (the ``ENCRYPTION_KEY`` setting) is read as a ring, ``"new,old,..."``:
the first key encrypts, every key decrypts. Rotating is then: put a new key first on every
process, re-wrap (``bookwell keys rotate``), drop the old one.

The ring serves two things:

* sealing (:mod:`bookwell.core.storage.sealing`): a Fernet per key, keyed by the SHA-256 of the
  key's text, the derivation sealed values have always used, so they still open;
* the tenants' data keys: 32 random bytes per tenant, made on first use and stored in
  ``tenant_keys`` only wrapped, with AES-256-GCM under a key derived (HKDF) from a ring key. The
  tenant's id is authenticated with it, so a wrapped key copied to another tenant's row does not
  open. The wrapped text names the ring key that wrapped it by a fingerprint, itself derived by
  HKDF, which tells nothing of the key.

The instance has a data key of its own as well, for what plugins keep about platform support's
accounts (which belong to no tenant): the same kind of key, bound to the pseudo tenant id
``PLATFORM`` (0; real ids start at 1), stored wrapped in ``platform_plugin_store`` under core's own
plugin name ``""`` (no plugin can take an empty name).

Unwrapped data keys are cached per app (so per process), a bounded number of them. A tenant's data
key never changes (rotation re-wraps it, nothing replaces it), so a cached one cannot go stale.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import PlatformPluginStoreEntry, TenantKey

EXTENSION = "bookwell.keys"
DATA_KEY_BYTES = 32
NONCE_BYTES = 12  # AES-GCM's standard nonce; random, and few wraps per ring key
WRAP_FORMAT = "aesgcm1"  # the first field of every wrapped key, so the format can evolve
# The pseudo tenant id of the instance's own data key (ctx.secrets of support logins).
PLATFORM = 0
_PLATFORM_KEY = ("", "data_key")  # (plugin, key) of its row in platform_plugin_store
CACHED_TENANTS = 4096  # unwrapped keys kept per process: 32 bytes each, so a small bound is cheap


class KeyRingError(ValueError):
    """The configured encryption key cannot be read as a ring."""


class TenantKeyUnavailable(RuntimeError):
    """A tenant's data key exists but cannot be unwrapped with this ring: the key that wrapped it
    is not configured (dropped before ``bookwell keys rotate`` ran, or another instance's key),
    or the stored wrapped key was altered or moved from another tenant's row.

    Not a ``ValueError``: this is the instance's configuration, not a bad token of a plugin's."""


def derive(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one ``purpose`` from ``secret`` (HKDF-SHA256): keys derived for different
    purposes are independent, so no use of one can weaken another."""
    kdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode())
    return kdf.derive(secret)


def parse_ring(value: object) -> tuple[str, ...]:
    """The key texts of ``value``: ``"new,old"`` (whitespace around each ignored) or, from
    ``config.toml``, a list of strings. Never echoes a key in its errors."""
    if isinstance(value, str):
        entries = value.split(",")
    elif isinstance(value, list | tuple) and all(isinstance(entry, str) for entry in value):
        entries = list(value)
    else:
        raise KeyRingError(
            "the encryption key (BOOKWELL_ENCRYPTION_KEY) must be text: keys separated by "
            "commas, the current one first"
        )
    keys = tuple(entry.strip() for entry in entries)
    if not keys:
        raise KeyRingError("the encryption key ring (BOOKWELL_ENCRYPTION_KEY) is empty")
    for number, key in enumerate(keys, start=1):
        if not key:
            raise KeyRingError(
                f"the encryption key ring (BOOKWELL_ENCRYPTION_KEY) has an empty entry (number "
                f"{number} of {len(keys)}): give keys separated by single commas, the current "
                "one first"
            )
    return keys


@dataclass(frozen=True)
class RingKey:
    """One key of the ring, as what is derived from it (the key's text is not kept)."""

    fingerprint: str
    fernet: Fernet = field(repr=False, compare=False)
    wrapping: AESGCM = field(repr=False, compare=False)

    @classmethod
    def from_text(cls, text: str) -> RingKey:
        secret = text.encode()
        # Sealing's derivation since its first release: values sealed before still open.
        fernet_key = base64.urlsafe_b64encode(hashlib.sha256(secret).digest())
        return cls(
            fingerprint=derive(secret, "bookwell/ring-key-fingerprint/v1", 8).hex(),
            fernet=Fernet(fernet_key),
            wrapping=AESGCM(derive(secret, "bookwell/tenant-key-wrapping/v1")),
        )


class KeyRing:
    """The instance's keys, the current (first) one encrypting."""

    def __init__(self, texts: Sequence[str]) -> None:
        if not texts:
            raise KeyRingError("the encryption key ring (BOOKWELL_ENCRYPTION_KEY) is empty")
        unique: dict[str, RingKey] = {}
        for text in texts:  # a key given twice is one key (and counted once by `status`)
            key = RingKey.from_text(text)
            unique.setdefault(key.fingerprint, key)
        self.keys = tuple(unique.values())
        self.fernet = MultiFernet([key.fernet for key in self.keys])

    @classmethod
    def from_config(cls, value: object) -> KeyRing:
        return cls(parse_ring(value))

    @property
    def current(self) -> RingKey:
        return self.keys[0]

    def find(self, fingerprint: str) -> RingKey | None:
        return next((key for key in self.keys if key.fingerprint == fingerprint), None)

    def wrap(self, tenant_id: int, data_key: bytes) -> str:
        """``data_key`` of ``tenant_id`` wrapped by the current key, as text to store."""
        key = self.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.wrapping.encrypt(nonce, data_key, _bound_to(tenant_id, key.fingerprint))
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{WRAP_FORMAT}:{key.fingerprint}:{body}"

    def unwrap(self, tenant_id: int, wrapped: str) -> bytes:
        """The data key that :meth:`wrap` was given for ``tenant_id``, with whichever ring key
        wrapped it; :class:`TenantKeyUnavailable` if none of them can."""
        fingerprint, body = _parts(wrapped)
        key = self.find(fingerprint)
        if key is None:
            raise TenantKeyUnavailable(
                f"the data key of tenant #{tenant_id} was wrapped by a key that is not in the "
                f"ring (fingerprint {fingerprint}): configure it again, at the end of "
                "BOOKWELL_ENCRYPTION_KEY, and run `bookwell keys rotate`"
            )
        nonce, sealed = body[:NONCE_BYTES], body[NONCE_BYTES:]
        try:
            data_key = key.wrapping.decrypt(nonce, sealed, _bound_to(tenant_id, fingerprint))
        except InvalidTag as error:
            raise TenantKeyUnavailable(
                f"the stored data key of tenant #{tenant_id} does not open: it was altered, or "
                "belongs to another tenant"
            ) from error
        if len(data_key) != DATA_KEY_BYTES:  # authentic, so only a bug could get here
            raise TenantKeyUnavailable(f"the data key of tenant #{tenant_id} has a wrong size")
        return data_key


def _bound_to(tenant_id: int, fingerprint: str) -> bytes:
    # Authenticated, not encrypted: a wrapped key opens only for the tenant it was made for.
    return f"bookwell tenant key|{WRAP_FORMAT}|tenant:{int(tenant_id)}|{fingerprint}".encode()


def _parts(wrapped: str) -> tuple[str, bytes]:
    form, _, rest = wrapped.partition(":")
    fingerprint, _, text = rest.partition(":")
    try:
        body = base64.b64decode(text, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        body = b""
    if form != WRAP_FORMAT or not fingerprint or len(body) <= NONCE_BYTES:
        raise TenantKeyUnavailable("a stored data key is not in a format this version reads")
    return fingerprint, body


# --- per app -------------------------------------------------------------------------------------


class _Keys:
    """What an app keeps: its ring and the data keys it has unwrapped (least recently used
    dropped first)."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._cached: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, tenant_id: int) -> bytes | None:
        with self._lock:
            data_key = self._cached.get(tenant_id)
            if data_key is not None:
                self._cached.move_to_end(tenant_id)
            return data_key

    def remember(self, tenant_id: int, data_key: bytes) -> None:
        with self._lock:
            self._cached[tenant_id] = data_key
            self._cached.move_to_end(tenant_id)
            while len(self._cached) > CACHED_TENANTS:
                self._cached.popitem(last=False)


def _keys_of(app: Flask) -> _Keys:
    keys = app.extensions.get(EXTENSION)
    if keys is None:
        # Two threads may build it at once; setdefault keeps one, and both are the same ring.
        keys = app.extensions.setdefault(EXTENSION, _Keys(KeyRing.from_config(_configured(app))))
    return keys


def _configured(app: Flask) -> object:
    value = app.config.get("ENCRYPTION_KEY")
    if not value:
        raise KeyRingError("no encryption key configured: run `bookwell init`")
    return value


def ring_of(app: Flask) -> KeyRing:
    """``app``'s ring, read from its ``ENCRYPTION_KEY`` on first use (:class:`KeyRingError` if
    it cannot be)."""
    return _keys_of(app).ring


def data_key(app: Flask, tenant_id: int) -> bytes:
    """The data key of ``tenant_id`` (32 bytes), made and stored wrapped on first use.

    Of several processes making it at once, one row wins (insert, ignoring a conflict, then read
    again) and every one of them uses the winner's. Commits on its own when it makes the key, so
    call it outside a write transaction (on SQLite, it would wait for its own thread's lock).
    """
    keys = _keys_of(app)
    found = keys.cached(tenant_id)
    if found is not None:
        return found
    with db.fresh_session(app) as session:
        wrapped = _wrapped_key(session, tenant_id)
    if wrapped is None:
        wrapped = _create(app, keys.ring, tenant_id)
    found = keys.ring.unwrap(tenant_id, wrapped)
    keys.remember(tenant_id, found)
    return found


def _create(app: Flask, ring: KeyRing, tenant_id: int) -> str:
    candidate = ring.wrap(tenant_id, os.urandom(DATA_KEY_BYTES))
    if tenant_id == PLATFORM:
        return _create_platform(app, candidate)
    with db.write_transaction(app) as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(TenantKey.__table__)
            .values(tenant_id=tenant_id, wrapped_key=candidate, created_at=clock.now(app))
            .on_conflict_do_nothing(index_elements=[TenantKey.tenant_id])
        )
        # Ours, or the one another process inserted first: everyone ends with the same key.
        wrapped = _wrapped_key(session, tenant_id)
    if wrapped is None:  # only if the tenant was deleted in between
        raise TenantKeyUnavailable(f"tenant #{tenant_id} has no data key and none could be made")
    return wrapped


def _create_platform(app: Flask, candidate: str) -> str:
    plugin, key = _PLATFORM_KEY
    with db.write_transaction(app) as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(PlatformPluginStoreEntry.__table__)
            .values(plugin=plugin, key=key, value=candidate, updated_at=clock.now(app))
            .on_conflict_do_nothing(index_elements=["plugin", "key"])
        )
        wrapped = _wrapped_key(session, PLATFORM)
    assert wrapped is not None  # inserted, or another process's row: nothing deletes it
    return wrapped


def _wrapped_key(session: Session, tenant_id: int) -> str | None:
    if tenant_id == PLATFORM:
        plugin, key = _PLATFORM_KEY
        return session.scalar(
            select(PlatformPluginStoreEntry.value).where(
                PlatformPluginStoreEntry.plugin == plugin, PlatformPluginStoreEntry.key == key
            )
        )
    return session.scalar(select(TenantKey.wrapped_key).where(TenantKey.tenant_id == tenant_id))


# --- rotation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rewrapped:
    """One tenant's key re-wrapped: the fingerprints of the ring keys before and after."""

    tenant_id: int
    previous: str
    current: str


def rewrap(session: Session, ring: KeyRing, tenant_id: int, now: datetime) -> Rewrapped | None:
    """Re-wrap ``tenant_id``'s data key with the ring's current key, in ``session``'s
    transaction. ``None`` when there is nothing to do (no key yet, or already under the current
    key); :class:`TenantKeyUnavailable` when the ring cannot open it."""
    wrapped = _wrapped_key(session, tenant_id)
    if wrapped is None:
        return None
    previous, _ = _parts(wrapped)
    if previous == ring.current.fingerprint:
        return None
    data_key = ring.unwrap(tenant_id, wrapped)
    if tenant_id == PLATFORM:
        plugin, key = _PLATFORM_KEY
        session.execute(
            update(PlatformPluginStoreEntry)
            .where(
                PlatformPluginStoreEntry.plugin == plugin,
                PlatformPluginStoreEntry.key == key,
                PlatformPluginStoreEntry.value == wrapped,
            )
            .values(value=ring.wrap(tenant_id, data_key), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return Rewrapped(tenant_id, previous, ring.current.fingerprint)
    session.execute(
        update(TenantKey)
        .where(TenantKey.tenant_id == tenant_id, TenantKey.wrapped_key == wrapped)
        .values(wrapped_key=ring.wrap(tenant_id, data_key), rewrapped_at=now)
        .execution_options(synchronize_session=False)
    )
    return Rewrapped(tenant_id, previous, ring.current.fingerprint)


@dataclass(frozen=True)
class RingStatus:
    """How the stored data keys stand against a ring: ``by_key`` counts them per ring key
    (fingerprint, in ring order); ``foreign`` were wrapped by keys the ring does not hold."""

    total: int
    by_key: tuple[tuple[str, int], ...]
    foreign: int

    @property
    def current(self) -> int:
        return self.by_key[0][1]

    @property
    def older(self) -> int:
        return sum(count for _, count in self.by_key[1:])


def status(session: Session, ring: KeyRing) -> RingStatus:
    total = session.scalar(select(func.count()).select_from(TenantKey)) or 0
    by_key = []
    for key in ring.keys:
        prefix = f"{WRAP_FORMAT}:{key.fingerprint}:"  # hex and ':': nothing LIKE treats specially
        count = session.scalar(
            select(func.count())
            .select_from(TenantKey)
            .where(TenantKey.wrapped_key.like(f"{prefix}%"))
        )
        by_key.append((key.fingerprint, count or 0))
    return RingStatus(total, tuple(by_key), total - sum(count for _, count in by_key))


def platform_key_wrapped_by(session: Session) -> str | None:
    """The fingerprint of the ring key that wraps the instance's own data key; ``None`` while
    it has not been made (no plugin has kept a secret about a support account yet)."""
    wrapped = _wrapped_key(session, PLATFORM)
    return None if wrapped is None else _parts(wrapped)[0]
