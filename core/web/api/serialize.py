"""How domain objects look in the API. Instants carry the tenant's offset."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bookwell.core.booking.availability import Slot
from bookwell.core.storage.models import Booking, Provider, Service


def instant(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat()


def service_json(service: Service, currency: str) -> dict[str, Any]:
    return {
        "id": service.id,
        "name": service.name,
        "description": service.description,
        "duration_minutes": service.duration_minutes,
        "price_cents": service.price_cents,
        # Prices are integers in this currency's minor unit (cents; yen for JPY).
        "currency": currency,
    }


def provider_json(provider: Provider, service_ids: list[int]) -> dict[str, Any]:
    return {"id": provider.id, "name": provider.name, "service_ids": service_ids}


def slot_json(slot: Slot, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "start": instant(slot.start, zone),
        "end": instant(slot.end, zone),
        "provider_id": slot.provider_id,
    }


def slots_body(slots: list[Slot], zone: ZoneInfo) -> str:
    """``{"slots": [slot_json(...), ...]}`` as the JSON text ``jsonify`` would make of it,
    byte for byte (compact, keys sorted, a newline at the end), written directly: a 30-day
    answer holds thousands of slots, and "any provider" repeats each instant once per provider,
    so each instant is formatted once and nothing is escaped (ISO instants and integers need
    no escaping)."""
    texts: dict[int, str] = {}

    def local(epoch: int) -> str:
        text = texts.get(epoch)
        if text is None:
            text = texts[epoch] = datetime.fromtimestamp(epoch, zone).isoformat()
        return text

    items = ",".join(
        f'{{"end":"{local(end)}","provider_id":{int(provider)},"start":"{local(start)}"}}'
        for start, end, provider in slots
    )
    return f'{{"slots":[{items}]}}\n'


def booking_json(
    booking: Booking, zone: ZoneInfo, manage_token: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": booking.reference,
        "status": booking.status,
        "start": instant(booking.starts_at, zone),
        "end": instant(booking.ends_at, zone),
        "service_id": booking.service_id,
        "provider_id": booking.provider_id,
        "client": {
            "name": booking.client_name,
            "email": booking.client_email,
            "phone": booking.client_phone,
            "notes": booking.client_notes,
        },
        "price_cents": booking.price_cents,
        "prepaid_cents": booking.prepaid_cents,
        # Set when a cancelled prepaid booking is cancelled under a plugin's refund rule.
        "refund_due_cents": booking.refund_due_cents,
        "discount_cents": booking.discount_cents,
        "discount_label": booking.discount_label,
        "total_cents": booking.price_cents - booking.discount_cents,
        "created_at": instant(booking.created_at, zone),
        "rescheduled_from": [
            {
                "start": instant(change.previous_starts_at, zone),
                "end": instant(change.previous_ends_at, zone),
                "provider_id": change.previous_provider_id,
                "rescheduled_at": instant(change.rescheduled_at, zone),
            }
            for change in booking.reschedules
        ],
    }
    if booking.cancelled_at is not None:
        body["cancelled_at"] = instant(booking.cancelled_at, zone)
    if manage_token is not None:
        body["manage_token"] = manage_token
    return body
