"""One error shape for the whole API: ``{"error": {"code", "message", "fields"?}}``; a guard's
refusal adds ``details`` (the first refusal's) and ``refusals`` (each with its own)."""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from flask import Flask, Response, current_app, has_request_context, jsonify, request
from flask_babel import gettext
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from bookwell.core.booking.lifecycle import BookingError, ConsentMissing
from bookwell.core.context.protection import ViewNotAudited
from bookwell.core.pluginhost.host import PluginFailed, PluginRefusal, Refused
from bookwell.core.storage.db import LockTimeout
from bookwell.core.web.error_pages import error_page

log = logging.getLogger("bookwell.api")

PLUGIN_FAILED = "plugin_failed"
AUDIT_UNAVAILABLE = "audit_unavailable"
# A safety check that could not run (a plugin that raised, overran or is broken) is not fixed
# in a moment; a client that retries at once only adds to the load.
PLUGIN_FAILED_RETRY_AFTER = "30"

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, str | list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str | list[str]] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    body.update(extra)
    response = jsonify(error=body)
    response.status_code = status
    return response


def answer(status: int, code: str, message: str, *, messages: list[str] | None = None) -> Response:
    """The API's JSON error, or for a browser on a page the error page saying ``messages``."""
    if has_request_context() and not _is_api_request():
        return error_page(status, messages or [message])
    return error_response(status, code, message)


def invalid(
    fields: dict[str, str], message: str = "Some fields are missing or invalid."
) -> ApiError:
    return ApiError(422, "invalid", message, fields)


def fields_of(error: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for problem in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in problem["loc"]) or "body"
        message = problem["msg"]
        if problem["type"] == "json_invalid":
            message = "The body is not valid JSON."
        elif problem["type"] == "missing":
            message = "This field is required."
        elif problem["type"] == "extra_forbidden":
            message = "Unknown field."
        fields.setdefault(path, message)
    return fields


def json_safe(value: Any) -> Any:
    """``value`` as JSON can hold it: instants as ISO 8601 in UTC (a naive one is taken as
    UTC, as core's own are), dates and times ISO 8601, enums their value, other sequences
    lists, and anything else its text. What a plugin puts in a refusal's ``details`` reaches
    the client this way, never as a 500."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def refusal_body(refusals: Iterable[PluginRefusal]) -> dict[str, Any]:
    """What the API says of guards' refusals, beside the first one's ``code`` and ``message``:
    ``details`` (the first refusal's, if it has any), ``fields`` (``{field: message}`` for each
    refusal that names an input; the first to name one wins) and every refusal in
    ``refusals``, each with its own ``details``."""
    items = [item for item in refusals if hasattr(item.refusal, "code")]
    listed, fields = [], {}
    for item in items:
        refusal = item.refusal
        entry = {
            "plugin": item.plugin,
            "code": refusal.code,
            "message": refusal.message,
            "field": refusal.field,
        }
        if refusal.details:
            entry["details"] = json_safe(refusal.details)
        listed.append(entry)
        if refusal.field:
            fields.setdefault(refusal.field, refusal.message)
    body: dict[str, Any] = {}
    if items and items[0].refusal.details:
        body["details"] = json_safe(items[0].refusal.details)
    if fields:
        body["fields"] = fields
    body["refusals"] = listed
    return body


def retry_later(response: Response, code: str) -> Response:
    """A check that could not run says when to try again (``Retry-After``)."""
    if code == PLUGIN_FAILED:
        response.headers["Retry-After"] = PLUGIN_FAILED_RETRY_AFTER
    return response


def _is_api_request() -> bool:
    return request.path.startswith("/api/")


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def on_api_error(error: ApiError):
        response = error_response(error.status, error.code, error.message, error.fields)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="bookwell"'  # RFC 6750
        return response

    @app.errorhandler(ValidationError)
    def on_validation_error(error: ValidationError):
        return error_response(
            422, "invalid", "Some fields are missing or invalid.", fields_of(error)
        )

    @app.errorhandler(BookingError)
    def on_booking_error(error: BookingError):
        fields = {"consents": error.message} if isinstance(error, ConsentMissing) else None
        if fields is None and isinstance(getattr(error, "field", None), str):
            fields = {error.field: error.message}  # type: ignore[attr-defined]
        return error_response(error.status, error.code, error.message, fields)

    @app.errorhandler(Refused)
    def on_refused(error: Refused):
        first = error.first
        if not _is_api_request():
            messages = [item.refusal.message for item in error.refusals if item.refusal.message]
            return retry_later(error_page(first.status, messages), first.code)
        body = refusal_body(error.refusals)
        fields = body.pop("fields", None)
        response = error_response(first.status, first.code, first.message, fields, **body)
        return retry_later(response, first.code)

    @app.errorhandler(PluginFailed)
    def on_plugin_failed(error: PluginFailed):
        response = answer(
            503,
            PLUGIN_FAILED,
            gettext("A feature of this business is not working; please try later."),
        )
        return retry_later(response, PLUGIN_FAILED)

    @app.errorhandler(ViewNotAudited)
    def on_view_not_audited(error: ViewNotAudited):
        # Shown unaudited, a view a plugin wants in the trail would be a hole in it: refused.
        response = answer(
            503,
            AUDIT_UNAVAILABLE,
            "This cannot be shown right now: the view could not be recorded. Please try again.",
        )
        response.headers["Retry-After"] = "2"
        return response

    @app.errorhandler(LockTimeout)
    def on_lock_timeout(error: LockTimeout):
        log.warning("write lock not granted in time: %s", error)
        response = answer(
            503, "busy", "We are busy right now; nothing was changed. Please try again."
        )
        response.headers["Retry-After"] = "2"
        return response

    @app.errorhandler(HTTPException)
    def on_http_exception(error: HTTPException):
        if error.code is None or error.code < 400:
            return error  # a redirect (a missing trailing slash), not an error
        if not _is_api_request():
            response = error_page(error.code, None)
            _copy_advice(error, response)
            return response
        message = error.description or ""
        if error.code == 429:
            message = f"Too many requests from your address (limit: {message}); please wait."
        response = error_response(
            error.code or 500, HTTP_CODES.get(error.code or 500, "http_error"), message
        )
        _copy_advice(error, response)
        return response

    @app.errorhandler(Exception)
    def on_unexpected(error: Exception):
        # The trace goes to the log only; the user gets a plain message.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _is_api_request():
            return error_response(500, "internal_error", "Something went wrong on our side.")
        try:
            return error_page(500)
        except Exception:  # the page itself failed (a broken template or database)
            log.exception("the error page failed too")
            return Response("Something went wrong on our side.", status=500, mimetype="text/plain")


def _copy_advice(error: HTTPException, response: Response) -> None:
    """The headers that tell a client what to do next: when to retry, which methods work."""
    if error.code == 429:
        from bookwell.core.web.ratelimits import seconds_until_reset

        response.headers["Retry-After"] = str(seconds_until_reset(current_app))
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
