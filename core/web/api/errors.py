"""One error shape for the whole API: ``{"error": {"code", "message", "fields"?}}``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, has_request_context, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from bookwell.core.booking.lifecycle import BookingError, ConsentMissing
from bookwell.core.pluginhost.host import PluginFailed, Refused
from bookwell.core.storage.db import LockTimeout
from bookwell.core.web.error_pages import error_page

log = logging.getLogger("bookwell.api")

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
        fields.setdefault(path, message)
    return fields


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
        return error_response(error.status, error.code, error.message, fields)

    @app.errorhandler(Refused)
    def on_refused(error: Refused):
        first = error.first
        refusals = [
            {
                "plugin": item.plugin,
                "code": item.refusal.code,
                "message": item.refusal.message,
                "field": item.refusal.field,
            }
            for item in error.refusals
        ]
        if not _is_api_request():
            messages = [item.refusal.message for item in error.refusals if item.refusal.message]
            return error_page(first.status, messages)
        return error_response(first.status, first.code, first.message, refusals=refusals)

    @app.errorhandler(PluginFailed)
    def on_plugin_failed(error: PluginFailed):
        return answer(
            503, "plugin_failed", "A feature of this business is not working; please try later."
        )

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
