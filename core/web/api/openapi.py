"""``/api/v1/openapi.json``: the OpenAPI 3.1 description of the public API.

Request bodies come from the pydantic models that validate them, so the document cannot drift
from what the API accepts; responses are described here beside the routes' contract.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from flask import Blueprint, jsonify
from pydantic.json_schema import models_json_schema

from bookwell.core import audit
from bookwell.core.access import passwords
from bookwell.core.booking import idempotency
from bookwell.core.storage.models import Role
from bookwell.core.web.api.auth import LoginIn
from bookwell.core.web.api.plugins import PluginChangeIn
from bookwell.core.web.api.schemas import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    MAX_ID,
    BookingIn,
    CancelIn,
    ClientSignUpIn,
    PasswordChangeIn,
    RescheduleIn,
    StaffBookingIn,
    StaffCancelIn,
    StaffRescheduleIn,
)

openapi = Blueprint("openapi", __name__)

FIELD_PROBLEMS = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    "description": "What is wrong with this input: one message, or every rule it breaks.",
}
DETAILS = {
    "type": "object",
    "description": "What the plugin adds to its refusal, as JSON (instants as ISO 8601 in UTC), "
    'e.g. `{"locked_until": "2027-03-01T08:15:00+00:00"}`.',
}
REFUSALS = {
    "type": "array",
    "items": {"$ref": "#/components/schemas/Refusal"},
    "description": "Every plugin of the business that refused, in order; the first one gives "
    "`code` and `message`.",
}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    **DETAILS,
                    "description": "The first refusal's details, when it has any.",
                },
                "fields": {
                    "type": "object",
                    "additionalProperties": FIELD_PROBLEMS,
                    "description": "The inputs at fault: from the body's validation, or from "
                    "each refusal that names a `field` (the first to name one wins it).",
                },
                "challenge": {
                    "type": "object",
                    "description": "A further login step a plugin asks for, e.g. "
                    '`{"field": "otp", "label": "6-digit code"}`: repeat the login with it.',
                },
                "refusals": REFUSALS,
            },
        }
    },
}
INSTANT = {"type": "string", "format": "date-time"}
STATUS = {"type": "string"}
SCHEMAS: dict[str, Any] = {
    "Error": ERROR,
    "Refusal": {
        "type": "object",
        "required": ["plugin", "code", "message", "field"],
        "properties": {
            "plugin": {"type": "string"},
            "code": {"type": "string"},
            "message": {"type": "string"},
            "field": {"type": ["string", "null"], "description": "The input at fault."},
            "details": {**DETAILS, "description": "This refusal's own details, if any."},
        },
    },
    "Service": {
        "type": "object",
        "required": ["id", "name", "description", "duration_minutes", "price_cents"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "duration_minutes": {"type": "integer"},
            "price_cents": {"type": "integer"},
            "currency": {
                "type": "string",
                "pattern": "^[A-Z]{3}$",
                "description": "ISO 4217; every price of the business (here and in bookings) "
                "is an integer in its minor unit.",
            },
        },
    },
    "Provider": {
        "type": "object",
        "required": ["id", "name", "service_ids"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "service_ids": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "Slot": {
        "type": "object",
        "required": ["start", "end", "provider_id"],
        "properties": {"start": INSTANT, "end": INSTANT, "provider_id": {"type": "integer"}},
    },
    "Consent": {
        "type": "object",
        "required": ["id", "label", "url"],
        "properties": {
            "id": {"type": "string"},
            "label": {"type": "string"},
            "url": {"type": ["string", "null"]},
        },
    },
    "Booking": {
        "type": "object",
        "required": ["reference", "status", "start", "end", "service_id", "provider_id"],
        "properties": {
            "reference": {"type": "string"},
            "status": {"enum": ["confirmed", "cancelled", "completed", "no-show"]},
            "start": INSTANT,
            "end": INSTANT,
            "service_id": {"type": "integer"},
            "provider_id": {"type": "integer"},
            "manage_token": {
                "type": "string",
                "description": "Only in answers to the client; it opens this booking.",
            },
            "client": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string"},
                    "phone": {"type": ["string", "null"]},
                    "notes": {"type": ["string", "null"]},
                },
            },
            "price_cents": {"type": "integer"},
            "prepaid_cents": {
                "type": "integer",
                "minimum": 0,
                "description": "What the client already paid, as staff recorded it.",
            },
            "refund_due_cents": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "What a cancelled prepaid booking is due back, by the "
                "business's refund rule (a plugin's) at the cancellation; `null` without one.",
            },
            "discount_cents": {
                "type": "integer",
                "minimum": 0,
                "description": "Taken off the price by a plugin's discount at confirmation.",
            },
            "discount_label": {
                "type": ["string", "null"],
                "description": "What the discount is for, e.g. `Loyalty reward (10%)`.",
            },
            "total_cents": {
                "type": "integer",
                "minimum": 0,
                "description": "What the client pays: `price_cents` - `discount_cents`.",
            },
            "created_at": INSTANT,
            "cancelled_at": INSTANT,
            "rescheduled_from": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "start": INSTANT,
                        "end": INSTANT,
                        "provider_id": {"type": "integer"},
                        "rescheduled_at": INSTANT,
                    },
                },
            },
        },
    },
    "ClientBooking": {
        "description": "A booking as its client sees it: always with its manage token.",
        "allOf": [{"$ref": "#/components/schemas/Booking"}],
        "required": ["manage_token"],
    },
    "StaffBooking": {
        "description": "A booking as the business's staff see it: with the consents given and "
        "the reason of a cancellation, never with the manage token.",
        "allOf": [{"$ref": "#/components/schemas/Booking"}],
        "required": ["consents", "cancellation_reason"],
        "properties": {
            "consents": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "Proof of a consent the client gave: the version and "
                    "SHA-256 of the exact text accepted, when, and from which address and user "
                    "agent (`null` for consents given before these were kept, or outside a "
                    "request).",
                    "required": ["id", "version", "text_sha256", "given_at", "ip", "user_agent"],
                    "properties": {
                        "id": {"type": "string"},
                        "version": {"type": "string"},
                        "text_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "given_at": INSTANT,
                        "ip": {"type": ["string", "null"], "maxLength": 45},
                        "user_agent": {"type": ["string", "null"], "maxLength": 300},
                    },
                },
            },
            "cancellation_reason": {"type": ["string", "null"]},
        },
    },
    "LoginToken": {
        "type": "object",
        "description": "A full login: the token opens what the role allows.",
        "required": ["token", "expires_at", "scope", "role"],
        "properties": {
            "token": {"type": "string", "description": "Send it as Authorization: Bearer."},
            "expires_at": INSTANT,
            "scope": {"type": "string", "pattern": "^tenant:", "examples": ["tenant:salon"]},
            "role": {"enum": [str(role) for role in Role if role != Role.SUPPORT]},
        },
    },
    "RestrictedLoginToken": {
        "type": "object",
        "description": "A login a plugin let through restricted (every `before_login` refusal "
        "granted a scope): the token opens only `POST /api/v1/auth/logout`, the routes marked "
        "with `scope` (`POST /api/v1/auth/password` for `password_change`, or a plugin's own), "
        "and answers 403 with `code` everywhere else. `code` and `message` say what to do; the "
        "other refusals wait for a later login.",
        "required": ["token", "expires_at", "scope", "role", "code", "message", "refusals"],
        "properties": {
            "token": {"type": "string", "description": "Send it as Authorization: Bearer."},
            "expires_at": INSTANT,
            "scope": {
                "type": "string",
                "pattern": "^[a-z0-9_]+$",
                "examples": ["enroll_totp", "password_change"],
            },
            "role": {"enum": [str(role) for role in Role if role != Role.SUPPORT]},
            "code": {"type": "string", "examples": ["otp_enrollment_required"]},
            "message": {"type": "string"},
            "details": {**DETAILS, "description": "The first refusal's details, if any."},
            "refusals": REFUSALS,
        },
    },
    "PasswordChanged": {
        "type": "object",
        "required": ["status", "other_sessions_ended", "api_keys_revoked"],
        "properties": {
            "status": {"const": "changed"},
            "other_sessions_ended": {"type": "integer", "minimum": 0},
            "api_keys_revoked": {
                "type": "integer",
                "minimum": 0,
                "description": "Every API key of yours is revoked with the old password; make "
                "new ones with `bookwell tokens create`.",
            },
            "session": {
                "enum": ["full", "restricted", "ended"],
                "description": "Only when a restricted token changed the password, which asks "
                "the login's plugins again: the same token is now `full` (with `scope`), takes "
                "the next restriction (`restricted`, with `scope`, `code`, `message` and "
                "`refusals`), or has `ended` because a plugin now asks for more, such as a "
                "one-time code (with `code` and `message`: log in again).",
            },
            "scope": {
                "type": "string",
                "examples": ["tenant:salon", "enroll_totp"],
                "description": "What the token opens now.",
            },
            "code": {"type": "string"},
            "message": {"type": "string"},
            "details": DETAILS,
            "refusals": REFUSALS,
        },
    },
    "Session": {
        "type": "object",
        "required": [
            "id",
            "kind",
            "created_at",
            "last_seen_at",
            "expires_at",
            "ip",
            "user_agent",
            "current",
        ],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"enum": ["browser", "api"]},
            "created_at": INSTANT,
            "last_seen_at": INSTANT,
            "expires_at": INSTANT,
            "ip": {"type": ["string", "null"]},
            "user_agent": {"type": ["string", "null"]},
            "current": {"type": "boolean", "description": "The session of this very request."},
        },
    },
    "ClientSignUp": {
        "type": "object",
        "required": ["email", "status"],
        "properties": {
            "email": {"type": "string", "description": "The address, as stored."},
            "status": {"const": "verification_pending"},
        },
    },
    "Plugin": {
        "type": "object",
        "description": "An installed plugin and what this business made of it: the entries of "
        "`bookwell plugins list --tenant SLUG --json`.",
        "required": [
            "name",
            "title",
            "description",
            "category",
            "version",
            "author",
            "source",
            "status",
            "requires",
            "conflicts",
            "needs",
            "breaks",
            "settings_schema",
            "enabled",
            "settings",
            "recent_errors",
        ],
        "properties": {
            "name": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "category": {"type": "string"},
            "version": {"type": "string"},
            "author": {"type": "string"},
            "source": {
                "type": "string",
                "description": "`built-in`, or the package it was installed from.",
            },
            "status": {"enum": ["ok", "broken"]},
            "error": {"type": "string", "description": "Why a broken plugin is broken."},
            "requires": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Plugins switched on with it.",
            },
            "conflicts": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Plugins that cannot be on beside it.",
            },
            "needs": {"type": "array", "items": {"type": "string"}},
            "breaks": {"type": "array", "items": {"type": "string"}},
            "settings_schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "type", "default", "label", "help"],
                    "properties": {
                        "key": {"type": "string"},
                        "type": {
                            "enum": ["bool", "int", "str", "text", "choice", "list", "email", "url"]
                        },
                        "default": {},
                        "label": {"type": "string"},
                        "help": {"type": "string"},
                        "min": {"type": ["integer", "null"]},
                        "max": {"type": ["integer", "null"]},
                        "choices": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "enabled": {"type": "boolean"},
            "settings": {"type": "object", "description": "Its settings for this business."},
            "recent_errors": {
                "type": "object",
                "required": ["count", "last_message", "last_at"],
                "description": "Its failures for this business in the last 24 hours.",
                "properties": {
                    "count": {"type": "integer", "minimum": 0},
                    "last_message": {"type": ["string", "null"]},
                    "last_at": {"anyOf": [INSTANT, {"type": "null"}]},
                },
            },
        },
    },
    "PluginChanged": {
        "description": "The plugin after the change, and the plugins switched on with it.",
        "allOf": [{"$ref": "#/components/schemas/Plugin"}],
        "required": ["also_enabled"],
        "properties": {"also_enabled": {"type": "array", "items": {"type": "string"}}},
    },
}
_NULLABLE_TEXT = {"type": ["string", "null"]}
SCHEMAS["AuditEntry"] = {
    "type": "object",
    "required": list(audit.EXPORT_COLUMNS),  # the export's own columns, in their order
    "additionalProperties": False,
    "properties": {
        "sequence": {"type": "integer", "minimum": 1, "description": "1, 2, 3... in the chain."},
        "at": {**INSTANT, "description": "When, in UTC."},
        "actor": {
            "type": "string",
            "description": "Who: `user:<id>` (an account), a label such as `cli`, or a person by "
            "pseudonym (`client:person:<16 hex>`).",
        },
        "actor_email": {
            **_NULLABLE_TEXT,
            "description": "The e-mail address the actor stands for; `[erased]` once that "
            "person was erased; null when unknown.",
        },
        "ip": {**_NULLABLE_TEXT, "description": "Where from; null if unknown or erased."},
        "action": {"type": "string"},
        "subject": {"type": "string", "description": "On what; people by pseudonym."},
        "details": {"type": "object", "description": "As stored (secrets redacted)."},
        "entry_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "previous_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}
SCHEMAS["AuditExport"] = {
    "type": "object",
    "required": ["entries"],
    "additionalProperties": False,
    "properties": {
        "entries": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}}
    },
}
SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "A session token from `/api/v1/tenants/{slug}/auth/login` (scoped to its "
        "business, expiring), or an API key made with `bookwell tokens create`. A restricted "
        "login's token opens only the routes of its scope and answers 403 with its restriction's "
        "code everywhere else.",
    },
    "manageToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "A booking's manage token, from the answer that booked it; it opens "
        "that booking only.",
    },
}
BEARER = [{"bearerAuth": []}]
# A booking route answers its client (by manage token) or, with a bearer, the business's staff.
CLIENT_OR_STAFF_BODY = [{}, {"bearerAuth": []}]  # the client's token is in the body
CLIENT_OR_STAFF_QUERY = [{"manageToken": []}, {"bearerAuth": []}]
RATE_LIMITED = "Counted against a per-address rate limit (429 when exceeded)."


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


MEANING = {
    400: "Not possible with this kind of credential.",
    401: "No bearer, or a bearer that is not valid or has expired (`unauthorized`).",
    403: "Your role does not allow this (`forbidden`), a plugin of the business refused "
    "(`refusals` lists every refusal), or the bearer is a restricted login's token, which opens "
    "only the routes of its scope (the code of the refusal that restricted it, e.g. "
    "`otp_enrollment_required`).",
    404: "Unknown business, service, provider or booking, or a wrong token.",
    409: "The slot is taken or not offered (`slot_unavailable`), or the booking can no longer "
    "change (`booking_not_changeable`).",
    413: "The body is larger than the limit.",
    415: "The body is not JSON (`unsupported_media_type`): send it with "
    "`Content-Type: application/json`.",
    422: "Malformed, missing or unknown fields (`invalid`, with `fields` keyed by path; an "
    'unknown field is "Unknown field."), a query parameter that is malformed or empty, or an '
    "Idempotency-Key reused for another request (`idempotency_key_reused`).",
    429: "Too many requests from this address; see Retry-After.",
    503: "The booking could not take its lock in time (`busy`), or a check of a plugin of the "
    "business could not run (`plugin_failed`): nothing changed; retry after Retry-After.",
}
# The staff's reads of client details, when a plugin asks core to audit them (data_protection).
VIEW_NOT_AUDITED = (
    "A plugin of the business asks for every view of client details to be audited, and the "
    "audit entry could not be written (`audit_unavailable`): nothing is shown; retry after "
    "Retry-After."
)
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _errors(*statuses: int, **meanings: str) -> dict[str, Any]:
    """Error responses; ``meanings`` (keyed ``e404`` etc.) replace the general wording."""
    answers = {}
    for status in statuses:
        answer = _json(_ref("Error"), meanings.get(f"e{status}", MEANING[status]))
        if status in (429, 503):
            answer["headers"] = RETRY_AFTER
        answers[str(status)] = answer
    return answers


def _status(value: str, description: str, **more: dict[str, Any]) -> dict[str, Any]:
    """A ``{"status": value, ...}`` answer."""
    return _json(
        {
            "type": "object",
            "required": ["status", *more],
            "properties": {"status": {"const": value}, **more},
        },
        description,
    )


def _years(first: int, last: int) -> str:
    """A regular expression for the four-digit years ``first`` to ``last``: JSON Schema has no
    bounds for dates, and a generated client must not be sent off to book in the year 9999."""
    pieces, year = [], first
    while year <= last:
        size = next(
            size for size in (1000, 100, 10, 1) if year % size == 0 and year + size <= last + 1
        )
        free = len(str(size)) - 1
        digits = "" if free == 0 else "[0-9]" if free == 1 else f"[0-9]{{{free}}}"
        pieces.append(str(year)[: 4 - free] + digits)
        year += size
    return "(" + "|".join(pieces) + ")"


YEARS = _years(EARLIEST_YEAR, LATEST_YEAR)
CALENDAR_DAY = f"{YEARS}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
# What the server parses, within RFC 3339: seconds always, no leap second, an offset always.
INSTANT_PATTERN = (
    f"^{CALENDAR_DAY}[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]+)?"
    "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
BOUNDS = f"Between the years {EARLIEST_YEAR} and {LATEST_YEAR}."
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
PASSWORD_RULES = {
    "minLength": passwords.MIN_LENGTH,
    "maxLength": passwords.MAX_LENGTH,
    "description": f"At least {passwords.MIN_LENGTH} and at most {passwords.MAX_LENGTH:,} "
    "characters, counted after Unicode NFKC normalisation; the business's password policy (a "
    "plugin) may add rules. A password breaking any rule answers 422, every broken rule listed "
    "in `fields`.",
}


def _any_case(word: str) -> str:
    return "".join(f"[{letter.lower()}{letter.upper()}]" for letter in word)


# The shape of what email-validator accepts (no quoted name, no IP address, a dot in the
# domain) and the reserved domains it refuses, named from its own list so that they cannot drift.
RESERVED_DOMAINS = "|".join(_any_case(name) for name in sorted(SPECIAL_USE_DOMAIN_NAMES))
# A mailbox name's characters unquoted (RFC 5322's atext, and any non-ASCII letter), and a
# domain label's: letters and digits, hyphens inside only, at most 63.
_ATEXT = r'[^\s"(),.:;<>@\[\\\]]'
_LABEL_END = r"[^\s!-/:-@\[-`{-~]"
_LABEL_INSIDE = r"[^\s!-,./:-@\[-`{-~]{0,61}"
_LABEL = _LABEL_END + "(?:" + _LABEL_INSIDE + _LABEL_END + ")?"
# A top-level domain ends with a letter.
_TOP_LABEL = _LABEL_END + "(?:" + _LABEL_INSIDE + r"[^\s!-@\[-`{-~])?"
EMAIL_RULES = {
    "pattern": (
        rf"^(?![\s\S]*\s)(?!.*[.@]({RESERVED_DOMAINS})$)"
        # No label with "--" as its 3rd and 4th characters: an IDNA (xn--) label is valid only
        # if its decoding is, which no pattern can say; send the Unicode form instead.
        r"(?!.*@(?:[^.]*[.])*[^.@]{2}--)"
        rf"{_ATEXT}+(?:[.]{_ATEXT}+)*@(?:{_LABEL}[.])+{_TOP_LABEL}$"
    ),
    "description": "An address that could receive mail: no quoted name or IP address, no "
    "leading, trailing or double dot, domain labels of letters, digits and inner hyphens (never "
    "`--` as the 3rd and 4th characters: give an internationalised domain in its Unicode form, "
    "not as `xn--`), a top-level domain ending with a letter, and not a reserved domain: "
    + ", ".join(f"`.{name}`" for name in sorted(SPECIAL_USE_DOMAIN_NAMES))
    + ". The server also checks the overall lengths.",
}
IDEMPOTENCY_KEY = {
    "type": "string",
    "minLength": idempotency.MIN_KEY_LENGTH,
    "maxLength": idempotency.MAX_KEY_LENGTH,
    "pattern": "^[!-~]+$",
    "examples": ["3f1c9b6e-8a42-4d7e-b5c1-0e9a7d2f6c84"],
}


def _stated(schemas: dict[str, Any]) -> dict[str, Any]:
    """The bodies' schemas as pydantic writes them, plus what the server enforces beyond what
    pydantic can say: the years of an instant, the addresses e-mail takes, the rules of a new
    password."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("format") == "date-time":
                node["pattern"] = INSTANT_PATTERN
                said = node.get("description", "").rstrip(".")
                node["description"] = f"{said}. {BOUNDS}" if said else BOUNDS
            if node.get("format") == "email":
                node.update(EMAIL_RULES)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schemas)
    for model, field in (("PasswordChangeIn", "new_password"), ("ClientSignUpIn", "password")):
        schemas[model]["properties"][field].update(PASSWORD_RULES)
    return schemas


def _json_bodies_only(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation that takes a body answers 415 to one that is not JSON."""
    for item in paths.values():
        for operation in item.values():
            if "requestBody" in operation:
                operation["responses"].update(_errors(415))
    return paths


def _slug() -> dict[str, Any]:
    return {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}


def _reference() -> dict[str, Any]:
    return {"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any], required: bool, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


DAY = {
    "type": "string",
    "format": "date",
    "pattern": f"^{CALENDAR_DAY}$",
    "description": f"YYYY-MM-DD. {BOUNDS}",
}
AUDIT_BOUND = {
    "anyOf": [DAY, {**INSTANT, "pattern": INSTANT_PATTERN}],
    "description": "YYYY-MM-DD, or an RFC 3339 date and time with its offset. " + BOUNDS,
}
CLIENT_OR_STAFF_BOOKING = {
    "oneOf": [_ref("ClientBooking"), _ref("StaffBooking")],
    "description": "A ClientBooking for the client, a StaffBooking for staff.",
}


@cache
def document() -> dict[str, Any]:
    _, body_schemas = models_json_schema(
        [
            (model, "validation")
            for model in (
                BookingIn,
                CancelIn,
                RescheduleIn,
                StaffBookingIn,
                StaffCancelIn,
                StaffRescheduleIn,
                LoginIn,
                PasswordChangeIn,
                ClientSignUpIn,
                PluginChangeIn,
            )
        ],
        ref_template="#/components/schemas/{model}",
    )
    schemas = {**SCHEMAS, **_stated(body_schemas.get("$defs", {}))}
    base = "/api/v1/tenants/{slug}"
    described = {
        "openapi": "3.1.0",
        "info": {
            "title": "Bookwell public API",
            "version": "1",
            "description": "Find a free slot and book it, then see, cancel or reschedule it "
            "with its manage token. A business's staff log in for a bearer token and see its "
            "bookings. Instants of bookings and slots are ISO 8601 with the business's offset. "
            "Any route of a business may also be refused by one of its plugins (the plugin's "
            "status, usually 403, with `refusals`, the first refusal's `details`, and `fields` "
            "when a refusal names an input) or fail in one (503, `plugin_failed`, with "
            "Retry-After). A restricted login's token gets 403 outside the routes of its "
            "scope.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "getOpenApiDocument",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document.")},
                }
            },
            f"{base}/services": {
                "get": {
                    "summary": "The services a client can book",
                    "operationId": "listServices",
                    "parameters": [_slug()],
                    "responses": {
                        "200": _json({"type": "array", "items": _ref("Service")}, "Services."),
                        **_errors(404),
                    },
                }
            },
            f"{base}/providers": {
                "get": {
                    "summary": "The providers, optionally only those offering one service",
                    "operationId": "listProviders",
                    "parameters": [
                        _slug(),
                        _query("service_id", ID, False, "Only providers of it."),
                    ],
                    "responses": {
                        "200": _json({"type": "array", "items": _ref("Provider")}, "Providers."),
                        **_errors(404, 422),
                    },
                }
            },
            f"{base}/availability": {
                "get": {
                    "summary": "Free slots of a service between two days (inclusive, ≤ 62 days)",
                    "operationId": "getAvailability",
                    "parameters": [
                        _slug(),
                        _query("service_id", ID, True, "The service."),
                        _query("from", DAY, True, "First day."),
                        _query("to", DAY, True, "Last day."),
                        _query("provider_id", ID, False, "One provider only."),
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["slots"],
                                "properties": {"slots": {"type": "array", "items": _ref("Slot")}},
                            },
                            "Free slots, by start then provider.",
                        ),
                        **_errors(404, 422),
                    },
                }
            },
            f"{base}/booking-requirements": {
                "get": {
                    "summary": "The consents a booking must carry",
                    "operationId": "getBookingRequirements",
                    "parameters": [_slug()],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["consents"],
                                "properties": {
                                    "consents": {"type": "array", "items": _ref("Consent")}
                                },
                            },
                            "Consents to ask the client for.",
                        ),
                        **_errors(404),
                    },
                }
            },
            f"{base}/password-rules": {
                "get": {
                    "summary": "The rules a new password must meet, in words",
                    "description": "Core's rules, then those of the business's plugins (a "
                    "password policy), to show beside a password field before anyone types. "
                    "Without a bearer: a client's sign-up's; with a bearer of this business: "
                    "the caller's own. Only words: the password set is judged when it is sent, "
                    "and a refusal lists every rule broken.",
                    "operationId": "getPasswordRules",
                    "parameters": [_slug()],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["rules"],
                                "properties": {
                                    "rules": {"type": "array", "items": {"type": "string"}}
                                },
                            },
                            "The rules, core's first.",
                        ),
                        **_errors(401, 404),
                    },
                }
            },
            f"{base}/bookings": {
                "post": {
                    "summary": "Book a slot",
                    "description": "A client sends BookingIn and gets its booking with the "
                    "manage token (201 ClientBooking). The business's staff book for a client "
                    "with an Authorization: Bearer header and StaffBookingIn (`prepaid_cents`: "
                    "what the client already paid, 0 to the service's price) and get a "
                    "StaffBooking, without the token (the client is e-mailed it); staff "
                    "bookings take no Idempotency-Key (422 `invalid`). Any other bearer (a "
                    "client's account, another business's staff) books as a client. "
                    f"{RATE_LIMITED}",
                    "operationId": "createBooking",
                    # Open to anyone: a bearer only changes whose booking it is (staff's).
                    "parameters": [
                        _slug(),
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": IDEMPOTENCY_KEY,
                            "description": "A retry with the same key and body within 24 h "
                            "returns the first answer, manage token included, and never books "
                            "twice: the key must be unguessable (a fresh random UUID for each "
                            "booking), or whoever guesses it with the body gets the token. "
                            f"{idempotency.MIN_KEY_LENGTH} to {idempotency.MAX_KEY_LENGTH} "
                            "printable characters (422 `invalid` otherwise).",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"anyOf": [_ref("BookingIn"), _ref("StaffBookingIn")]}
                            }
                        },
                    },
                    "responses": {
                        "201": _json(
                            CLIENT_OR_STAFF_BOOKING,
                            "Booked; a client keeps `manage_token`.",
                        ),
                        **_errors(
                            401,
                            403,
                            404,
                            409,
                            413,
                            422,
                            429,
                            503,
                            e401="A bearer that is not valid or has expired.",
                            e403="A plugin of the business refused (`refusals` lists them), or "
                            "the bearer's role may not manage bookings.",
                            e422=MEANING[422] + " Staff: `prepaid_out_of_range` (`fields."
                            "prepaid_cents`) for a prepaid amount above the service's price.",
                        ),
                    },
                },
                "get": {
                    "summary": "The business's bookings starting between two days, for its staff",
                    "description": "Days are the business's, inclusive, at most 93 at once; "
                    "bookings come by start, then provider.",
                    "operationId": "listBookings",
                    "security": BEARER,
                    "parameters": [
                        _slug(),
                        _query("from", DAY, True, "First day."),
                        _query("to", DAY, True, "Last day."),
                    ],
                    "responses": {
                        "200": _json(
                            {"type": "array", "items": _ref("StaffBooking")}, "The bookings."
                        ),
                        **_errors(
                            401,
                            403,
                            404,
                            422,
                            503,
                            e404="Unknown business, or a bearer of another business.",
                            e503=VIEW_NOT_AUDITED,
                        ),
                    },
                },
            },
            f"{base}/bookings/{{reference}}": {
                "get": {
                    "summary": "A booking, for its client (manage token) or the staff (bearer)",
                    "description": "With an Authorization header the request is the staff's "
                    "and the token is not read.",
                    "operationId": "getBooking",
                    "security": CLIENT_OR_STAFF_QUERY,
                    "parameters": [_slug(), _reference()],
                    "responses": {
                        "200": _json(CLIENT_OR_STAFF_BOOKING, "The booking."),
                        **_errors(
                            401,
                            403,
                            404,
                            503,
                            e401="A bearer that is not valid or has expired.",
                            e403="The bearer's role may not read bookings.",
                            e404="Unknown business or booking, a wrong token, or a bearer of "
                            "another business.",
                            e503=VIEW_NOT_AUDITED,
                        ),
                    },
                }
            },
            f"{base}/bookings/{{reference}}/cancel": {
                "post": {
                    "summary": "Cancel a booking and free its slot",
                    "description": "The client sends its manage token (CancelIn); staff send "
                    "an Authorization: Bearer header and an optional reason (StaffCancelIn, or "
                    f"no body). {RATE_LIMITED}",
                    "operationId": "cancelBooking",
                    "security": CLIENT_OR_STAFF_BODY,
                    "parameters": [_slug(), _reference()],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"anyOf": [_ref("CancelIn"), _ref("StaffCancelIn")]}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(CLIENT_OR_STAFF_BOOKING, "Cancelled."),
                        **_errors(
                            401,
                            403,
                            404,
                            409,
                            413,
                            422,
                            429,
                            503,
                            e401="A bearer that is not valid or has expired.",
                            e403="The bearer's role may not manage bookings, or a plugin of "
                            "the business refused (`refusals` lists them).",
                        ),
                    },
                }
            },
            f"{base}/bookings/{{reference}}/reschedule": {
                "post": {
                    "summary": "Move a booking; it keeps its reference and token",
                    "description": "The client sends its manage token (RescheduleIn); staff "
                    "send an Authorization: Bearer header instead (StaffRescheduleIn). "
                    + RATE_LIMITED,
                    "operationId": "rescheduleBooking",
                    "security": CLIENT_OR_STAFF_BODY,
                    "parameters": [_slug(), _reference()],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "anyOf": [_ref("RescheduleIn"), _ref("StaffRescheduleIn")]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(CLIENT_OR_STAFF_BOOKING, "The booking at its new time."),
                        **_errors(
                            401,
                            403,
                            404,
                            409,
                            413,
                            422,
                            429,
                            503,
                            e403="A plugin of the business refused (`refusals` lists them).",
                        ),
                    },
                }
            },
            f"{base}/clients": {
                "post": {
                    "summary": "Sign up as a client of the business",
                    "description": "The account opens when its owner uses the e-mailed link "
                    "with the password chosen here: until then it has no password and cannot "
                    "log in (`email_unverified`). Signing up again for an unverified address "
                    "sends a new link carrying the new password. An address that already has "
                    "an account answers exactly like a new one; its owner is e-mailed a reset "
                    f"link instead. {RATE_LIMITED}",
                    "operationId": "signUpClient",
                    "parameters": [_slug()],
                    "requestBody": _body("ClientSignUpIn"),
                    "responses": {
                        "201": _json(_ref("ClientSignUp"), "Signed up; verify the address."),
                        **_errors(
                            404,
                            413,
                            422,
                            429,
                            e404="Unknown business, or one with client accounts off (`not_found`).",
                            e422="Malformed or missing fields (`invalid`); `fields.password` "
                            "lists every password rule broken.",
                        ),
                    },
                }
            },
            f"{base}/auth/login": {
                "post": {
                    "summary": "Log in to the business for a bearer token",
                    "description": "When a plugin asks for a further step the answer is a 401 "
                    "with a `challenge`: repeat the login with its answer (e.g. `otp`). When "
                    "every plugin that refused granted a scope instead, the login goes through "
                    "restricted to it (RestrictedLoginToken). "
                    f"{RATE_LIMITED}",
                    "operationId": "logIn",
                    "parameters": [_slug()],
                    "requestBody": _body("LoginIn"),
                    "responses": {
                        "200": _json(
                            {"oneOf": [_ref("LoginToken"), _ref("RestrictedLoginToken")]},
                            "Logged in: in full, or restricted to one step (`code` says which).",
                        ),
                        **_errors(
                            401,
                            403,
                            404,
                            413,
                            422,
                            429,
                            503,
                            e403="A client who signed up but has not yet confirmed the address "
                            "(`email_unverified`), given only for the password chosen at "
                            "sign-up: use the e-mailed link first.",
                            e401="A wrong e-mail or password (`invalid_credentials`, the same "
                            "for an unknown e-mail), or a plugin's refusal, whatever the status "
                            "it names: its code (e.g. `locked`, the same whatever the password), "
                            "`details` (e.g. `locked_until`), `fields`, `refusals`, and a "
                            "`challenge` when it asks for a further step.",
                            e404="Unknown business.",
                            e429="Too many requests from this address (see Retry-After).",
                            e503="A plugin's check of the login could not run "
                            "(`plugin_failed`); retry after Retry-After.",
                        ),
                    },
                }
            },
            f"{base}/plugins": {
                "get": {
                    "summary": "The installed plugins and which ones the business uses",
                    "operationId": "listPlugins",
                    "security": BEARER,
                    "parameters": [_slug()],
                    "responses": {
                        "200": _json({"type": "array", "items": _ref("Plugin")}, "By name."),
                        **_errors(
                            401,
                            403,
                            404,
                            e403="Your role may not see the business's plugins.",
                            e404="Unknown business, or a bearer of another business.",
                        ),
                    },
                }
            },
            f"{base}/plugins/{{name}}": {
                "put": {
                    "summary": "Switch a plugin on or off, or change its settings (the owner)",
                    "description": "Switching a plugin on also switches on what it `requires` "
                    "(listed in `also_enabled`) and may raise their settings to its floors. "
                    "`settings` merge into the current ones. Without `enabled` the plugin stays "
                    "on or off as it is and only its settings change (a disabled plugin keeps "
                    "them for when it is switched on).",
                    "operationId": "changePlugin",
                    "security": BEARER,
                    "parameters": [
                        _slug(),
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "The plugin's `name`.",
                        },
                    ],
                    "requestBody": _body("PluginChangeIn"),
                    "responses": {
                        "200": _json(_ref("PluginChanged"), "Done."),
                        **_errors(
                            401,
                            403,
                            404,
                            409,
                            413,
                            422,
                            503,
                            e403="Only the owner changes plugins.",
                            e404="Unknown business or plugin, or a bearer of another business.",
                            e409="Refused by the rules between plugins, with the reason: "
                            "`plugin_conflict` (it conflicts with, or breaks what is needed "
                            "by, an enabled plugin), `plugin_required` (an enabled plugin "
                            "requires it, or it requires one that is missing or broken), "
                            "`plugin_broken` (it is broken), `plugin_busy` (it was switched on "
                            "or off meanwhile: try again).",
                            e422="A malformed body, or one with neither `enabled` nor "
                            "`settings` (`invalid`), or settings that are not valid "
                            "(`invalid_settings`, with a message for each key in `fields`), "
                            "each on its own or by the plugin's own `check_settings`.",
                            e503="The change could not take its lock in time (`busy`), or the "
                            "plugin's own check of its settings failed (`plugin_failed`); "
                            "nothing changed.",
                        ),
                    },
                }
            },
            f"{base}/audit": {
                "get": {
                    "summary": "Export the business's audit trail (owners and managers)",
                    "description": "Oldest entry first, only this business's chain, as JSON "
                    "(`format=json`, the default) or CSV (`format=csv`: a header row with the "
                    "fields of AuditEntry, `details` as JSON). Needs `audit.read` and "
                    "`data.export`. Every export is itself audited (`audit.exported`) before it "
                    "is answered. A day is the business's; `to` takes all of its day (or, as a "
                    "date and time, that instant).",
                    "operationId": "exportAuditTrail",
                    "security": BEARER,
                    "parameters": [
                        _slug(),
                        _query("from", AUDIT_BOUND, False, "The first day or instant."),
                        _query("to", AUDIT_BOUND, False, "The last day or instant."),
                        _query(
                            "format",
                            {"type": "string", "enum": ["json", "csv"], "default": "json"},
                            False,
                            "json or csv.",
                        ),
                    ],
                    "responses": {
                        "200": {
                            "description": "The entries.",
                            "content": {
                                "application/json": {"schema": _ref("AuditExport")},
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        **_errors(
                            401,
                            403,
                            404,
                            422,
                            e403="The bearer's role may not read the audit trail or export "
                            "the business's data.",
                            e404="Unknown business, or a bearer of another business.",
                            e422="`from`, `to` or `format` malformed or empty, or `to` before "
                            "`from` (`invalid`, with `fields`).",
                        ),
                    },
                }
            },
            "/api/v1/auth/logout": {
                "post": {
                    "summary": "End the session of this bearer token",
                    "operationId": "logOut",
                    "security": BEARER,
                    "responses": {
                        "200": _status("logged_out", "The token no longer works."),
                        **_errors(
                            400,
                            401,
                            e400="The bearer is an API key (`not_a_session`): revoke it with "
                            "`bookwell tokens revoke`.",
                        ),
                    },
                }
            },
            "/api/v1/auth/sessions": {
                "get": {
                    "summary": "Your live sessions, in browsers and API clients",
                    "operationId": "listSessions",
                    "security": BEARER,
                    "responses": {
                        "200": _json({"type": "array", "items": _ref("Session")}, "Sessions."),
                        **_errors(401),
                    },
                }
            },
            "/api/v1/auth/sessions/{session_id}/revoke": {
                "post": {
                    "summary": "End one of your sessions",
                    "operationId": "revokeSession",
                    "security": BEARER,
                    "parameters": [
                        {
                            "name": "session_id",
                            "in": "path",
                            "required": True,
                            "schema": ID,
                            "description": "An `id` from the list of your sessions.",
                        }
                    ],
                    "responses": {
                        "200": _status("revoked", "That session's token no longer works."),
                        **_errors(401, 404, e404="No live session of yours has this id."),
                    },
                }
            },
            "/api/v1/auth/password": {
                "post": {
                    "summary": "Change your password; your other sessions and API keys end",
                    "description": "A token restricted to `password_change` may call it too: "
                    "the login's plugins are asked again and `session` says what the token is "
                    f"now. {RATE_LIMITED}",
                    "operationId": "changePassword",
                    "security": BEARER,
                    "requestBody": _body("PasswordChangeIn"),
                    "responses": {
                        "200": _json(
                            _ref("PasswordChanged"),
                            "Changed; this session stays, the others ended.",
                        ),
                        **_errors(
                            401,
                            403,
                            413,
                            422,
                            429,
                            e403="The current password is not right (`invalid_credentials`), "
                            "or the token is restricted to another step (its code).",
                            e422="Malformed or missing fields (`invalid`); "
                            "`fields.new_password` lists every password rule broken.",
                        ),
                    },
                }
            },
        },
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }
    _json_bodies_only(described["paths"])
    return described


@openapi.get("/api/v1/openapi.json")
def openapi_document():
    return jsonify(document())
