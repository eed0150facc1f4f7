"""Client accounts: sign-up through the API (verification by e-mail comes with the pages)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from .. import clock, users
from ..models import Role
from .auth import tenant_or_404
from .errors import ApiError
from .ratelimits import rate_limited
from .schemas import ClientSignUpIn

clients = Blueprint("clients_api", __name__, url_prefix="/api/v1/tenants/<slug>")


@clients.post("/clients")
@rate_limited("write")
def sign_up(slug: str):
    tenant = tenant_or_404(slug)
    payload = ClientSignUpIn.model_validate_json(request.get_data(cache=True) or b"")
    try:
        users.create_user(
            current_app._get_current_object(),
            tenant_id=tenant.id,
            email=payload.email,
            role=Role.CLIENT,
            password=payload.password,
            name=payload.name,
            now=clock.now(),
            actor=f"client:{users.canonical_email(payload.email)}",
            email_verified=False,
        )
    except users.UserError as error:
        if "password" in error.fields:
            raise ApiError(
                422, "invalid", "The password does not meet the rules.", error.fields
            ) from error
        if "email" not in error.fields or error.fields["email"] != ["Taken."]:
            raise ApiError(422, "invalid", error.message, error.fields) from error
        # An existing account answers like a new one, so sign-up cannot tell who has an account;
        # the verification e-mail (with the pages) tells the owner of the address instead.
    return jsonify(email=users.canonical_email(payload.email), status="verification_pending"), 201
