"""The availability API's answer, written without jsonify for speed, is jsonify's byte for byte;
and the tenant's walls hold now that the provider is checked only when nothing is offered."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bookwell.core.booking.availability import Slot
from bookwell.core.testing import open_business
from bookwell.core.web.api.serialize import slot_json, slots_body

API = "/api/v1/tenants/salon/availability"


def as_jsonify_writes_it(slots, zone) -> str:
    body = {"slots": [slot_json(slot, zone) for slot in slots]}
    return json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"


def test_the_body_is_what_jsonify_made_across_a_change_of_clocks():
    zone = ZoneInfo("Europe/Paris")
    # 2027-03-28 02:00 Paris does not exist: 00:30 UTC is 01:30+01:00, 01:30 UTC 03:30+02:00.
    starts = [int(datetime(2027, 3, 28, hour, 30, tzinfo=UTC).timestamp()) for hour in (0, 1)]
    slots = [Slot(start, start + 1800, provider) for start in starts for provider in (7, 12)]
    assert slots_body(slots, zone) == as_jsonify_writes_it(slots, zone)
    assert '"start":"2027-03-28T03:30:00+02:00"' in slots_body(slots, zone)
    assert slots_body([], zone) == '{"slots":[]}\n'


def test_the_api_answers_json_of_every_provider_and_day(app, client, business):
    answer = client.get(f"{API}?service_id={business.service_id}&from=2027-03-02&to=2027-03-03")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    found = answer.json["slots"]
    assert len(found) == 2 * 2 * 16  # two providers, two days, 09:00 to 16:30 every 30 minutes
    assert found[0] == {
        "start": "2027-03-02T09:00:00+01:00",
        "end": "2027-03-02T09:30:00+01:00",
        "provider_id": business.provider_id,
    }
    assert answer.headers["Content-Security-Policy"].startswith("default-src")


def test_another_tenants_provider_is_not_found_whether_or_not_it_would_be_free(
    app, client, business, clock
):
    other = open_business(app, clock(), slug="barber", name="Barber")
    for day in ("2027-03-02", "2026-03-02"):  # a day with slots, and one long past
        answer = client.get(
            f"{API}?service_id={business.service_id}&from={day}&to={day}"
            f"&provider_id={other.provider_id}"
        )
        assert answer.status_code == 404, answer.json
        assert answer.json["error"]["message"] == "No such provider."
    unknown = client.get(
        f"{API}?service_id={business.service_id}&from=2027-03-02&to=2027-03-02&provider_id=999"
    )
    assert unknown.status_code == 404
    # Its own provider, on a day long past: nothing offered, and no 404.
    past = client.get(
        f"{API}?service_id={business.service_id}&from=2026-03-02&to=2026-03-02"
        f"&provider_id={business.provider_id}"
    )
    assert past.status_code == 200 and past.json == {"slots": []}
    # Another tenant's service stays unknown here.
    foreign = client.get(f"{API}?service_id={other.service_id}&from=2027-03-02&to=2027-03-02")
    assert foreign.status_code == 404
