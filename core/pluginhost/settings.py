"""Plugin settings, declared in the manifest and validated here, in one place, for every caller."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bookwell.hooks import Manifest, Setting


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
            raise ValueError("must be true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        if setting.min is not None and value < setting.min:
            raise ValueError(f"must be at least {setting.min}")
        if setting.max is not None and value > setting.max:
            raise ValueError(f"must be at most {setting.max}")
        return value
    if kind in ("str", "text", "choice"):
        if not isinstance(value, str):
            raise ValueError("must be text")
        if kind == "choice":
            if value not in setting.choices:
                raise ValueError(f"must be one of: {', '.join(setting.choices)}")
            return value
        if kind == "str" and ("\n" in value or "\r" in value):
            raise ValueError("must be a single line")
        _check_length(setting, len(value), "characters")
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("must be a list of texts")
        items = [item.strip() for item in value if item.strip()]
        _check_length(setting, len(items), "items")
        return items
    raise ValueError(f"has an unknown type {kind!r}")


def _check_length(setting: Setting, length: int, unit: str) -> None:
    if setting.min is not None and length < setting.min:
        raise ValueError(f"must have at least {setting.min} {unit}")
    if setting.max is not None and length > setting.max:
        raise ValueError(f"must have at most {setting.max} {unit}")


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
            problems[key] = f"{declared[key].label} {error}"
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
        return [item.strip() for item in text.split(",") if item.strip()]
    return text
