"""The public booking API: what a client (or a booking widget) needs to find a slot and book it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import bindparam, select

from bookwell.core.access import users
from bookwell.core.booking import idempotency, lifecycle
from bookwell.core.booking.availability import offered_slots
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Provider, ProviderService, Service, Tenant
from bookwell.core.web import identity
from bookwell.core.web.api import bodies, queries
from bookwell.core.web.api import staff as staff_api
from bookwell.core.web.api.auth import tenant_or_404
from bookwell.core.web.api.errors import ApiError, error_response, invalid
from bookwell.core.web.api.schemas import BookingIn, CancelIn, RescheduleIn
from bookwell.core.web.api.serialize import booking_json, provider_json, service_json, slots_body
from bookwell.core.web.ratelimits import rate_limited

# Built once: availability is the hottest read, and building a statement costs more than
# running it.
_OFFERED_SERVICE = select(Service).where(
    Service.id == bindparam("service_id"),
    Service.tenant_id == bindparam("tenant_id"),
    Service.active.is_(True),
)
_TENANTS_PROVIDER = select(Provider.id).where(
    Provider.id == bindparam("provider_id"), Provider.tenant_id == bindparam("tenant_id")
)

public = Blueprint("public_api", __name__, url_prefix="/api/v1/tenants/<slug>")


def _tenant(slug: str) -> Tenant:
    return tenant_or_404(slug)


def _from_staff() -> bool:
    """A bearer token makes a booking request the staff's; without one it is the client's."""
    return request.headers.get("Authorization", "").lower().startswith("bearer")


def _body(model: type[Any]) -> Any:
    return bodies.read(model)


@public.get("/services")
def list_services(slug: str):
    tenant = _tenant(slug)
    services = db.session().scalars(
        select(Service)
        .where(Service.tenant_id == tenant.id, Service.active.is_(True))
        .order_by(Service.name, Service.id)
    )
    return jsonify([service_json(service, tenant.currency) for service in services])


@public.get("/providers")
def list_providers(slug: str):
    tenant = _tenant(slug)
    service_id = queries.int_arg("service_id", required=False)
    session = db.session()
    providers = list(
        session.scalars(
            select(Provider)
            .where(Provider.tenant_id == tenant.id, Provider.active.is_(True))
            .order_by(Provider.name, Provider.id)
        )
    )
    if service_id is not None and not session.scalar(
        select(Service.id).where(
            Service.id == service_id, Service.tenant_id == tenant.id, Service.active.is_(True)
        )
    ):
        raise ApiError(404, "not_found", "No such service.")
    offered: dict[int, list[int]] = {provider.id: [] for provider in providers}
    for provider_id, offered_service in session.execute(
        select(ProviderService.provider_id, ProviderService.service_id)
        .join(Service, Service.id == ProviderService.service_id)
        .where(Service.tenant_id == tenant.id, Service.active.is_(True))
        .order_by(ProviderService.service_id)
    ):
        if provider_id in offered:
            offered[provider_id].append(offered_service)
    return jsonify(
        [
            provider_json(provider, offered[provider.id])
            for provider in providers
            if service_id is None or service_id in offered[provider.id]
        ]
    )


@public.get("/availability")
def availability(slug: str):
    tenant = _tenant(slug)
    problems: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, parse in (
        ("service_id", lambda: queries.int_arg("service_id", required=True)),
        ("provider_id", lambda: queries.int_arg("provider_id", required=False)),
        ("from", lambda: queries.day_arg("from")),
        ("to", lambda: queries.day_arg("to")),
    ):
        try:
            values[name] = parse()
        except ApiError as error:
            problems.update(error.fields or {})
    if not problems:
        span = (values["to"] - values["from"]).days + 1
        limit = int(current_app.config["MAX_AVAILABILITY_DAYS"])
        if span < 1:
            problems["to"] = "Must be on or after 'from'."
        elif span > limit:
            problems["to"] = f"At most {limit} days can be asked for at once."
    if problems:
        raise invalid(problems)
    session = db.session()
    service = session.scalar(
        _OFFERED_SERVICE, {"service_id": values["service_id"], "tenant_id": tenant.id}
    )
    if service is None:
        raise ApiError(404, "not_found", "No such service.")
    slots = offered_slots(
        session,
        tenant,
        service=service,
        day_from=values["from"],
        day_to=values["to"],
        now=clock.now(),
        provider_id=values["provider_id"],
    )
    # A slot of the provider proves it is the tenant's (find_slots reads only the tenant's
    # providers), so the check costs a query only when nothing is offered.
    if (
        not slots
        and values["provider_id"] is not None
        and not session.scalar(
            _TENANTS_PROVIDER, {"provider_id": values["provider_id"], "tenant_id": tenant.id}
        )
    ):
        raise ApiError(404, "not_found", "No such provider.")
    return current_app.response_class(slots_body(slots, tenant.zone), mimetype="application/json")


@public.get("/booking-requirements")
def booking_requirements(slug: str):
    tenant = _tenant(slug)
    required = lifecycle.requirements(current_app._get_current_object(), tenant, clock.now())
    return jsonify(
        consents=[
            {"id": consent.id, "label": consent.label, "url": consent.url}
            for _, consent in required
        ]
    )


@public.get("/password-rules")
def password_rules(slug: str):
    """The rules a new password must meet here, in words, for a form to show before anyone
    types: a client's sign-up's, or, with a bearer of this business, the caller's own."""
    tenant = _tenant(slug)
    rows = identity.signed_in_rows()
    actor = rows.user if rows is not None and rows.user.tenant_id == tenant.id else None
    rules = users.password_rules(
        current_app._get_current_object(), db.session(), tenant, clock.now(), actor
    )
    return jsonify(rules=rules)


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    problem = idempotency.key_problem(key)
    if problem is not None:
        raise invalid({"Idempotency-Key": problem})
    return key


@public.post("/bookings")
@rate_limited("booking")
def create_booking(slug: str):
    tenant = _tenant(slug)
    if _from_staff() and staff_api.is_staff_of(tenant):
        return staff_api.create_booking(tenant)
    key = _idempotency_key()
    payload = _body(BookingIn)
    zone = tenant.zone
    now = clock.now()
    idempotent = None
    if key is not None:
        fingerprint = idempotency.request_hash(
            "POST", request.path, payload.model_dump(mode="json")
        )
        replay = _replay_or_none(tenant.id, key, fingerprint, now)
        if replay is not None:
            return replay
        idempotent = lifecycle.IdempotentRequest(
            key, fingerprint, lambda booking, token: booking_json(booking, zone, token)
        )
    try:
        booking, token = lifecycle.create_booking(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            tenant_id=tenant.id,
            service_id=payload.service_id,
            provider_id=payload.provider_id,
            start=payload.start,
            client=lifecycle.ClientDetails(
                name=payload.client.name,
                email=payload.client.email,
                phone=payload.client.phone or None,
                notes=payload.client.notes or None,
            ),
            now=now,
            consents=tuple(payload.consents),
            idempotent=idempotent,
        )
    except (idempotency.Replay, idempotency.KeyReused) as answered:
        # A retry that overtook us inside the write lock: its first answer is ours.
        return _answer_for(answered)
    except idempotency.ConcurrentClaim:
        # The same key committed on another connection while we waited: read it afresh (this
        # request's own session may hold a snapshot from before that commit).
        with db.fresh_session() as session:
            try:
                idempotency.lookup(session, tenant.id, key, idempotent.request_hash, now)  # type: ignore[arg-type,union-attr]
            except (idempotency.Replay, idempotency.KeyReused) as answered:
                return _answer_for(answered)
        raise
    return jsonify(booking_json(booking, zone, token)), 201


def _replay_or_none(tenant_id: int, key: str, fingerprint: str, now):
    try:
        idempotency.lookup(db.session(), tenant_id, key, fingerprint, now)
    except (idempotency.Replay, idempotency.KeyReused) as answered:
        return _answer_for(answered)
    return None


def _answer_for(answered: Exception):
    if isinstance(answered, idempotency.Replay):
        response = jsonify(answered.body)
        response.status_code = answered.status
        response.headers["Idempotent-Replayed"] = "true"
        return response
    return error_response(
        422,
        "idempotency_key_reused",
        "This Idempotency-Key was already used for a different request.",
    )


def _client_token_check(token: str):
    def authorise(booking: Booking) -> None:
        if not lifecycle.token_matches(booking, token):
            # Same answer as an unknown reference: a wrong token must not reveal the booking.
            raise lifecycle.NotFound("No such booking.")

    return authorise


@public.get("/bookings/<reference>")
def show_booking(slug: str, reference: str):
    tenant = _tenant(slug)
    if _from_staff():
        return staff_api.show_booking(tenant, reference)
    token = request.args.get("token", "")
    booking = lifecycle.find_booking(db.session(), tenant.id, reference[:64])
    _client_token_check(token)(booking)
    return jsonify(booking_json(booking, tenant.zone, token))


@public.post("/bookings/<reference>/cancel")
@rate_limited("write")
def cancel_booking(slug: str, reference: str):
    tenant = _tenant(slug)
    if _from_staff():
        return staff_api.cancel_booking(tenant, reference)
    payload = _body(CancelIn)
    booking = lifecycle.cancel_booking(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        tenant_id=tenant.id,
        reference=reference[:64],
        authorise=_client_token_check(payload.token),
        now=clock.now(),
        reason=None,  # a client gives none; the booking says who cancelled
        manage_token=payload.token,
    )
    return jsonify(booking_json(booking, tenant.zone, payload.token))


@public.post("/bookings/<reference>/reschedule")
@rate_limited("write")
def reschedule_booking(slug: str, reference: str):
    tenant = _tenant(slug)
    if _from_staff():
        return staff_api.reschedule_booking(tenant, reference)
    payload = _body(RescheduleIn)
    booking = lifecycle.reschedule_booking(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        tenant_id=tenant.id,
        reference=reference[:64],
        authorise=_client_token_check(payload.token),
        start=payload.start,
        provider_id=payload.provider_id,
        now=clock.now(),
        manage_token=payload.token,
    )
    return jsonify(booking_json(booking, tenant.zone, payload.token))
