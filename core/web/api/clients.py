"""Client accounts: sign-up through the API, with the same verification e-mail as the pages
(a 404 where the business has client accounts off, as the pages are)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from bookwell.core.access import client_accounts as accounts
from bookwell.core.access import users
from bookwell.core.foundation import clock
from bookwell.core.web.api import bodies
from bookwell.core.web.api.auth import tenant_or_404
from bookwell.core.web.api.errors import ApiError
from bookwell.core.web.api.schemas import ClientSignUpIn
from bookwell.core.web.ratelimits import rate_limited

clients = Blueprint("clients_api", __name__, url_prefix="/api/v1/tenants/<slug>")


@clients.post("/clients")
@rate_limited("write")
def sign_up(slug: str):
    tenant = tenant_or_404(slug)
    if not tenant.client_accounts:
        raise ApiError(404, "not_found", "This business has no client accounts.")
    payload = bodies.read(ClientSignUpIn)
    try:
        # An existing account answers like a new one (its owner gets a "you already have an
        # account" e-mail instead of a link), so sign-up cannot tell who has an account.
        accounts.register(
            current_app._get_current_object(),
            tenant,
            email=payload.email,
            password=payload.password,
            name=payload.name,
            now=clock.now(),
        )
    except users.UserError as error:
        if "password" in error.fields:
            raise ApiError(
                422, "invalid", "The password does not meet the rules.", error.fields
            ) from error
        raise ApiError(422, "invalid", error.message, error.fields) from error
    return jsonify(email=users.canonical_email(payload.email), status="verification_pending"), 201
