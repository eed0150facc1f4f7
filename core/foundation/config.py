"""Where an instance's settings come from: defaults, then ``config.toml``, then the environment.

Secrets are written once by ``bookwell init`` into the instance folder so that every process of one
machine shares them; several machines share them through the environment instead.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.toml"

# Environment variable -> config key. The environment always wins over the instance file.
ENVIRONMENT_KEYS = {
    "BOOKWELL_SECRET_KEY": "SECRET_KEY",
    "BOOKWELL_ENCRYPTION_KEY": "ENCRYPTION_KEY",
    "DATABASE_URL": "DATABASE_URL",
    "BOOKWELL_MIGRATION_DATABASE_URL": "MIGRATION_DATABASE_URL",
    "REDIS_URL": "REDIS_URL",
    "BOOKWELL_RATE_LIMITS": "RATE_LIMITS",
    "BOOKWELL_BASE_URL": "BASE_URL",
    "BOOKWELL_STORAGE": "STORAGE",
    "BOOKWELL_LOCK_TIMEOUT": "LOCK_TIMEOUT_SECONDS",
    "BOOKWELL_TRUSTED_PROXIES": "TRUSTED_PROXIES",
    "BOOKWELL_GUARD_TIMEOUT": "GUARD_TIMEOUT_SECONDS",
    "BOOKWELL_SCHEDULE_TIMEOUT": "SCHEDULE_TIMEOUT_SECONDS",
    "BOOKWELL_SMTP_URL": "SMTP_URL",
    "BOOKWELL_MAIL_FROM": "MAIL_FROM",
    "BOOKWELL_MAIL_DELIVERY": "MAIL_DELIVERY",
    "BOOKWELL_TICK_SECONDS": "TICK_SECONDS",
    "BOOKWELL_SUPPORT_PLUGINS": "SUPPORT_PLUGINS",
}

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: SQLite file in the instance folder
    # The role that owns the tables and changes the schema (`bookwell init`); the app's
    # processes connect with DATABASE_URL, a role that cannot alter or erase the audit trail.
    # None: migrations connect with DATABASE_URL too.
    "MIGRATION_DATABASE_URL": None,
    "DATABASE_POOL_SIZE": 10,
    "REDIS_URL": None,
    "RATE_LIMITS": "booking=20/minute,write=60/minute,login=10/minute",
    "BASE_URL": "http://127.0.0.1:8000",
    "STORAGE": None,  # None: the instance folder
    "LOCK_TIMEOUT_SECONDS": 5.0,
    "TRUSTED_PROXIES": 0,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "IDEMPOTENCY_HOURS": 24,
    "MAX_AVAILABILITY_DAYS": 62,
    # Every hook call in a request (guards, events, contributions) gets this long; on_schedule,
    # which runs off the request path, gets SCHEDULE_TIMEOUT_SECONDS.
    "GUARD_TIMEOUT_SECONDS": 2.0,
    "SCHEDULE_TIMEOUT_SECONDS": 300.0,
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_ABSOLUTE_MINUTES": 12 * 60,
    "PASSWORD_HASHING": None,  # argon2 parameters; None: argon2-cffi's defaults (above OWASP's)
    # smtp://user:pass@host:587?starttls=1 or smtps://host; None: .eml files in STORAGE/outbox/
    "SMTP_URL": None,
    "MAIL_FROM": "Bookwell <no-reply@bookwell.invalid>",  # the display name becomes the business's
    # "background": each booking change sends its mail at once (a thread, or an RQ job with
    # Redis); "manual": it waits for the ticker or `bookwell tick`
    "MAIL_DELIVERY": "background",
    # Scheduled work (on_schedule, due mail) runs every TICK_SECONDS per tenant: in `bookwell
    # worker` with REDIS_URL, else in each `bookwell serve` process under database leases. 0: off.
    "TICK_SECONDS": 60.0,
    # The plugins platform support's logins run, with their settings: {"name": {settings}}
    # (a [support_plugins.<name>] table in config.toml; JSON in BOOKWELL_SUPPORT_PLUGINS).
    "SUPPORT_PLUGINS": {},
}


def resolve_instance_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--instance PATH``, else ``BOOKWELL_INSTANCE``, else ``./instance``."""
    chosen = explicit or os.environ.get("BOOKWELL_INSTANCE") or "instance"
    return Path(chosen).expanduser().resolve()


def read_instance_file(instance_path: Path) -> dict[str, Any]:
    path = instance_path / CONFIG_FILE
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        return {key.upper(): value for key, value in tomllib.load(handle).items()}


def read_environment() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for variable, key in ENVIRONMENT_KEYS.items():
        value = os.environ.get(variable)
        if value:
            found[key] = value
    if "LOCK_TIMEOUT_SECONDS" in found:
        found["LOCK_TIMEOUT_SECONDS"] = float(found["LOCK_TIMEOUT_SECONDS"])
    for seconds in ("GUARD_TIMEOUT_SECONDS", "SCHEDULE_TIMEOUT_SECONDS", "TICK_SECONDS"):
        if seconds in found:
            found[seconds] = float(found[seconds])
    if "TRUSTED_PROXIES" in found:
        found["TRUSTED_PROXIES"] = int(found["TRUSTED_PROXIES"])
    if "SUPPORT_PLUGINS" in found:
        try:
            found["SUPPORT_PLUGINS"] = json.loads(found["SUPPORT_PLUGINS"])
        except ValueError:
            pass  # left as text: the support plugins' check reports it and refuses support logins
    return found


def write_instance_file(instance_path: Path) -> bool:
    """Write ``config.toml`` with fresh secrets unless it exists. Returns whether it wrote one."""
    path = instance_path / CONFIG_FILE
    if path.exists():
        return False
    instance_path.mkdir(parents=True, exist_ok=True)
    body = (
        "# Written by `bookwell init`. Environment variables override every key here.\n"
        f'secret_key = "{secrets.token_urlsafe(48)}"\n'
        f'encryption_key = "{secrets.token_urlsafe(32)}"\n'
    )
    # The file holds secrets: create it readable by its owner only.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(body)
    return True


def sqlite_url(instance_path: Path) -> str:
    return f"sqlite:///{instance_path / 'bookwell.sqlite3'}"
