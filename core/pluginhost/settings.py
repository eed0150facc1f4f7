"""Plugin settings, declared in the manifest and validated here, in one place, for every caller.

An ``email`` or ``url`` setting whose default is empty is optional: it may be left empty (``""``),
and the plugin reads that as "none given". One with a default always holds an address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext

from bookwell.core.foundation import text
from bookwell.hooks import Manifest, Setting

MAX_URL_LENGTH = 2000
# After IDNA encoding: letters, digits and hyphens in dot-separated labels of at most 63.
HOST_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$", re.I)


class InvalidSettings(ValueError):
    """``fields`` maps each bad key to a message a business owner can act on."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {message}" for key, message in fields.items()))
        self.fields = fields


def defaults(manifest: Manifest) -> dict[str, Any]:
    return {setting.key: setting.default for setting in manifest.settings}


def check_value(setting: Setting, value: Any) -> Any:
    kind = setting.type
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(gettext("must be true or false"))
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(gettext("must be a whole number"))
        if setting.min is not None and value < setting.min:
            raise ValueError(gettext("must be at least %(min)s", min=setting.min))
        if setting.max is not None and value > setting.max:
            raise ValueError(gettext("must be at most %(max)s", max=setting.max))
        return value
    if kind in ("str", "text", "choice"):
        if not isinstance(value, str):
            raise ValueError(gettext("must be text"))
        if kind == "choice":
            if value not in setting.choices:
                raise ValueError(
                    gettext("must be one of: %(choices)s", choices=", ".join(setting.choices))
                )
            return value
        # Core's one standard for typed text, as for every other input.
        if kind == "str" and not text.is_single_line(value):
            raise ValueError(gettext("must be a single line, without control characters"))
        if kind == "text" and not text.is_multi_line(value):
            raise ValueError(gettext("must not contain control characters (such as NUL)"))
        _check_length(setting, len(value), items=False)
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(gettext("must be a list of texts"))
        items = [item.strip() for item in value if item.strip()]
        if not all(text.is_single_line(item) for item in items):
            raise ValueError(gettext("must hold one-line items, without control characters"))
        _check_length(setting, len(items), items=True)
        if setting.choices:
            # An item that is no choice would be stored and silently match nothing, so that a
            # weekday spelled "Funday" turned a rule off: name it, and what would do.
            wrong = [item for item in items if item not in setting.choices]
            if wrong:
                raise ValueError(
                    gettext(
                        "cannot contain %(wrong)s: each item must be one of: %(choices)s",
                        wrong=", ".join(repr(item) for item in wrong),
                        choices=", ".join(setting.choices),
                    )
                )
        return items
    if kind in ("email", "url"):
        if not isinstance(value, str):
            raise ValueError(gettext("must be text"))
        value = value.strip()
        if not value and not setting.default:
            return value  # optional: see the module's docstring
        _check_length(setting, len(value), items=False)
        return _email(value) if kind == "email" else _url(value)
    raise ValueError(f"has an unknown type {kind!r}")


def _email(value: str) -> str:
    try:
        # Deliverability is not asked: that would look the domain up in the DNS on every save.
        found = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(gettext("must be one e-mail address, such as name@example.com")) from error
    return found.normalized


def _url(value: str) -> str:
    problem = gettext(
        "must be a web address starting with http:// or https://, such as https://example.com"
    )
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(gettext("must have at most %(count)s characters", count=MAX_URL_LENGTH))
    if any(character.isspace() or not character.isprintable() for character in value):
        raise ValueError(
            gettext(
                "must be a web address starting with http:// or https://, such as "
                "https://example.com, on one line with no spaces"
            )
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a port that is not a number from 0 to 65535)
    except ValueError as error:
        raise ValueError(problem) from error
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(problem)
    if parts.username is not None or parts.password is not None:
        # Settings are shown in the marketplace and written to the audit trail in the clear.
        raise ValueError(gettext("must not contain a user name or password"))
    if not _host_name_or_address(parts.hostname):
        raise ValueError(
            gettext(
                "must be a web address starting with http:// or https://, such as "
                "https://example.com; %(host)s is not a host name",
                host=repr(parts.hostname),
            )
        )
    return value


def _host_name_or_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return bool(HOST_NAME.match(ascii_host))


def _check_length(setting: Setting, length: int, *, items: bool) -> None:
    """A text's length in characters, or a list's in ``items``."""
    if setting.min is not None and length < setting.min:
        raise ValueError(
            gettext("must have at least %(count)s items", count=setting.min)
            if items
            else gettext("must have at least %(count)s characters", count=setting.min)
        )
    if setting.max is not None and length > setting.max:
        raise ValueError(
            gettext("must have at most %(count)s items", count=setting.max)
            if items
            else gettext("must have at most %(count)s characters", count=setting.max)
        )


def validate(
    manifest: Manifest, values: Mapping[str, Any], current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Merge ``values`` into ``current`` (or the defaults) and check every key.

    Raises :class:`InvalidSettings` naming every bad or unknown key at once.
    """
    declared = {setting.key: setting for setting in manifest.settings}
    merged = {**defaults(manifest), **(current or {})}
    problems: dict[str, str] = {}
    for key, value in values.items():
        if key not in declared:
            problems[key] = f"{manifest.name} has no setting {key!r}"
            continue
        try:
            merged[key] = check_value(declared[key], value)
        except ValueError as error:
            problems[key] = gettext(
                "%(label)s %(problem)s", label=declared[key].label, problem=error
            )
    if problems:
        raise InvalidSettings(problems)
    return {key: merged[key] for key in declared}


def from_text(manifest: Manifest, key: str, text: str) -> Any:
    """Convert a command-line value by the setting's type: booleans as true/false, lists
    comma-separated, ``@path`` reads a file."""
    setting = next((s for s in manifest.settings if s.key == key), None)
    if setting is None:
        raise InvalidSettings({key: f"{manifest.name} has no setting {key!r}"})
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise InvalidSettings({key: f"cannot read {text[1:]}: {error.strerror}"}) from error
        if setting.type == "str":
            text = text.strip()
    if setting.type == "bool":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise InvalidSettings({key: f"{setting.label} must be true or false"})
        return lowered == "true"
    if setting.type == "int":
        try:
            return int(text.strip())
        except ValueError as error:
            raise InvalidSettings({key: f"{setting.label} must be a whole number"}) from error
    if setting.type == "list":
        # Comma-separated; nothing after the "=" empties the list.
        return [item.strip() for item in text.split(",") if item.strip()]
    if setting.type in ("email", "url"):
        return text.strip()
    return text
