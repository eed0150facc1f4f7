"""``/api/v1/openapi.json``: the OpenAPI 3.1 description of the public API.

Request bodies come from the pydantic models that validate them, so the document cannot drift
from what the API accepts; responses are described here beside the routes' contract.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, jsonify
from pydantic.json_schema import models_json_schema

from .schemas import BookingIn, CancelIn, RescheduleIn

openapi = Blueprint("openapi", __name__)

FIELD_PROBLEMS = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    "description": "What is wrong with this input: one message, or every rule it breaks.",
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
                "fields": {"type": "object", "additionalProperties": FIELD_PROBLEMS},
                "challenge": {
                    "type": "object",
                    "description": "A further login step a plugin asks for, e.g. "
                    '`{"field": "otp", "label": "6-digit code"}`: repeat the login with it.',
                },
                "refusals": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Refusal"},
                    "description": "Every plugin of the business that refused, in order; the "
                    "first one gives `code` and `message`.",
                },
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
            "manage_token": {"type": "string"},
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
            "prepaid_cents": {"type": "integer"},
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
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        404: "Unknown business, service, provider or booking, or a wrong token.",
        409: "The slot is taken or not offered (`slot_unavailable`), or the booking can no longer "
        "change (`booking_not_changeable`).",
        413: "The body is larger than the limit.",
        422: "Malformed or missing fields (`invalid`, with `fields` keyed by path), or an "
        "Idempotency-Key reused for another request (`idempotency_key_reused`).",
        429: "Too many requests from this address; see Retry-After.",
        503: "The booking could not take its lock in time; nothing changed; retry after "
        "Retry-After.",
    }
    return {str(status): _json(_ref("Error"), meaning[status]) for status in statuses}


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


@cache
def document() -> dict[str, Any]:
    _, body_schemas = models_json_schema(
        [(BookingIn, "validation"), (CancelIn, "validation"), (RescheduleIn, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    schemas = {**SCHEMAS, **body_schemas.get("$defs", {})}
    base = "/api/v1/tenants/{slug}"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bookwell public API",
            "version": "1",
            "description": "Find a free slot and book it, then see, cancel or reschedule it "
            "with its manage token. Instants are ISO 8601 with the business's offset.",
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
                        _query("service_id", {"type": "integer"}, False, "Only providers of it."),
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
                        _query("service_id", {"type": "integer"}, True, "The service."),
                        _query("from", {"type": "string", "format": "date"}, True, "First day."),
                        _query("to", {"type": "string", "format": "date"}, True, "Last day."),
                        _query("provider_id", {"type": "integer"}, False, "One provider only."),
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
            f"{base}/bookings": {
                "post": {
                    "summary": "Book a slot",
                    "operationId": "createBooking",
                    "parameters": [
                        _slug(),
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 255},
                            "description": "A retry with the same key within 24 h returns the "
                            "first answer and never books twice.",
                        },
                    ],
                    "requestBody": _body("BookingIn"),
                    "responses": {
                        "201": _json(_ref("Booking"), "Booked; keep `manage_token`."),
                        **_errors(404, 409, 413, 422, 429, 503),
                    },
                }
            },
            f"{base}/bookings/{{reference}}": {
                "get": {
                    "summary": "A booking, for the client holding its token",
                    "operationId": "getBooking",
                    "parameters": [
                        _slug(),
                        _reference(),
                        _query("token", {"type": "string"}, True, "The manage token."),
                    ],
                    "responses": {"200": _json(_ref("Booking"), "The booking."), **_errors(404)},
                }
            },
            f"{base}/bookings/{{reference}}/cancel": {
                "post": {
                    "summary": "Cancel a booking and free its slot",
                    "operationId": "cancelBooking",
                    "parameters": [_slug(), _reference()],
                    "requestBody": _body("CancelIn"),
                    "responses": {
                        "200": _json(_ref("Booking"), "Cancelled."),
                        **_errors(404, 409, 413, 422, 429, 503),
                    },
                }
            },
            f"{base}/bookings/{{reference}}/reschedule": {
                "post": {
                    "summary": "Move a booking; it keeps its reference and token",
                    "operationId": "rescheduleBooking",
                    "parameters": [_slug(), _reference()],
                    "requestBody": _body("RescheduleIn"),
                    "responses": {
                        "200": _json(_ref("Booking"), "The booking at its new time."),
                        **_errors(404, 409, 413, 422, 429, 503),
                    },
                }
            },
        },
        "components": {"schemas": schemas},
    }


@openapi.get("/api/v1/openapi.json")
def openapi_document():
    return jsonify(document())
