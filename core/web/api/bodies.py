"""Request bodies of the JSON API: ``application/json`` or nothing, validated by their model.

A body in another media type (a form post, ``text/plain``, or one sent without a
``Content-Type``) is refused with 415 ``unsupported_media_type`` before it is read, rather than
parsed as JSON all the same: a client that sends a form believes it sent something else. Unknown
fields are refused by the models themselves (``extra="forbid"`` on :class:`schemas.Body`).
"""

from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel

from bookwell.core.web.api.errors import ApiError

JSON = "application/json"
# RFC 8259: JSON exchanged between systems is UTF-8; a charset parameter may only say so.
UTF_8 = {"utf-8", "utf8"}
Model = TypeVar("Model", bound=BaseModel)


def has_body() -> bool:
    return bool(request.content_length) or "Transfer-Encoding" in request.headers


def require_json() -> None:
    """415 for a body that is not JSON. No body at all passes: the model says what it lacks."""
    if not has_body():
        return
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if request.mimetype != JSON or charset not in UTF_8:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON, with the header Content-Type: application/json.",
        )


def read(model: type[Model], *, when_empty: bytes = b"") -> Model:
    """The body, as ``model`` validates it (``when_empty`` stands for a missing body)."""
    require_json()
    return model.model_validate_json(request.get_data(cache=True) or when_empty)
