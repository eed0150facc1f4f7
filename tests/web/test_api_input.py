"""The public API under hostile input: every malformed request gets its documented JSON error,
never a 500 or a stack trace, and a refused request stores nothing.

The battery below is a table: one row per malformed request, each with the status, the error code
and (for 422) the exact field paths it must name. Each row is checked against a snapshot of the
booking tables taken before the request.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import booking_body, open_every_day
from sqlalchemy import event, func, select, text

from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Tenant

API = "/api/v1/tenants/salon"
FREE = "2027-03-02T11:00:00+01:00"  # a free slot of the first provider
TAKEN = "2027-03-02T10:00:00+01:00"  # booked by the `ctx` fixture with the first provider
RESCHEDULE_TO = "2027-03-02T12:00:00+01:00"
MAX_BODY = 64 * 1024
ERROR_KEYS = {"code", "message", "fields"}


# --- helpers -------------------------------------------------------------------------------------


def booking_count(app) -> int:
    with db.engine_of(app).connect() as connection:
        return connection.scalar(select(func.count()).select_from(Booking))


def snapshot(app) -> dict[str, list[tuple]]:
    """Every row of the tables a request could write to: equal snapshots mean nothing stored."""
    with db.engine_of(app).connect() as connection:
        return {
            table: [
                tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            ]
            for table in ("bookings", "booking_reschedules", "idempotency_keys")
        }


def assert_error(response, status: int, code: str | None = None, fields=None) -> dict[str, Any]:
    """The response is the API's JSON error shape with this status (and code, and field paths)."""
    body_text = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, body_text[:500])
    assert response.mimetype == "application/json", (response.mimetype, body_text[:200])
    assert "Traceback" not in body_text and 'File "' not in body_text
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and {"code", "message"} <= set(error) <= ERROR_KEYS, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if "fields" in error:
        assert isinstance(error["fields"], dict) and error["fields"]
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in error["fields"].items())
    if fields is not None:
        assert set(error.get("fields", {})) == set(fields), error
    return error


@dataclass(frozen=True)
class Ctx:
    """What the table's rows may refer to: the business's ids and one existing booking."""

    service_id: int
    provider_id: int
    second_provider_id: int
    reference: str
    token: str


@pytest.fixture
def ctx(client, business) -> Ctx:
    response = client.post(f"{API}/bookings", json=booking_body(business, TAKEN))
    assert response.status_code == 201, response.json
    return Ctx(
        business.service_id,
        business.provider_id,
        business.second_provider_id,
        response.json["reference"],
        response.json["manage_token"],
    )


DROP = object()  # as a value in a body change: remove that key


def _apply(target: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        if value is DROP:
            target.pop(key, None)
        else:
            target[key] = value
    return target


def _booking(
    c: Ctx, client_changes: dict[str, Any] | None = None, **changes: Any
) -> dict[str, Any]:
    body = {
        "service_id": c.service_id,
        "provider_id": c.provider_id,
        "start": FREE,
        "client": {"name": "Ann", "email": "ann@example.com"},
    }
    _apply(body, changes)
    if client_changes is not None:
        _apply(body["client"], client_changes)
    return body


Body = Callable[[Ctx], bytes]


def raw(data: bytes) -> Body:
    return lambda c: data


def as_json(make: Callable[[Ctx], Any]) -> Body:
    return lambda c: json.dumps(make(c)).encode()


def book(client_changes: dict[str, Any] | None = None, **changes: Any) -> Body:
    return as_json(lambda c: _booking(c, client_changes, **changes))


def book_with_literal(field: str, literal: bytes) -> Body:
    """A booking body whose ``field`` holds a raw JSON literal json.dumps would not write."""
    return lambda c: json.dumps(_booking(c, **{field: "@@"})).encode().replace(b'"@@"', literal)


def cancel(**changes: Any) -> Body:
    return as_json(lambda c: _apply({"token": c.token}, changes))


def reschedule(**changes: Any) -> Body:
    return as_json(lambda c: _apply({"token": c.token, "start": RESCHEDULE_TO}, changes))


def huge_name(c: Ctx) -> bytes:
    return json.dumps(_booking(c, {"name": "A" * (1024 * 1024)})).encode()


def just_over_the_limit(c: Ctx) -> bytes:
    valid = json.dumps(_booking(c)).encode()
    return valid[:-1] + b" " * (MAX_BODY + 1 - len(valid)) + b"}"


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str  # "{ref}" and "{token}" are filled from the context
    status: int
    code: str
    fields: tuple[str, ...] | None = None
    body: Body | None = None

    def send(self, client, c: Ctx):
        path = self.path.replace("{ref}", c.reference).replace("{token}", c.token)
        data = self.body(c) if self.body is not None else None
        return client.open(
            path,
            method=self.method,
            data=data,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )


def _invalid(case_id, method, path, fields, body=None):
    return Case(case_id, method, path, 422, "invalid", tuple(fields), body)


def _status(case_id, method, path, status, code, body=None):
    return Case(case_id, method, path, status, code, None, body)


# --- the battery ---------------------------------------------------------------------------------

BOOK = f"{API}/bookings"
CANCEL = f"{API}/bookings/{{ref}}/cancel"
RESCHEDULE = f"{API}/bookings/{{ref}}/reschedule"
SHOW = f"{API}/bookings/{{ref}}"
AVAILABILITY = f"{API}/availability"
PROVIDERS = f"{API}/providers"

NOT_AN_OBJECT = [
    ("broken-json", raw(b'{"service_id": 1,')),
    ("empty-body", raw(b"")),
    ("whitespace-body", raw(b"  \n\t ")),
    ("json-array", raw(b"[]")),
    ("json-number", raw(b"42")),
    ("json-string", raw(b'"please book me"')),
    ("json-null", raw(b"null")),
    ("json-true", raw(b"true")),
    ("not-utf8", raw(b"\xff\xfe{\x00}")),
    ("two-objects", raw(b"{} {}")),
    ("lone-surrogate", raw(b'{"client": {"name": "\\ud800"}}')),
    ("nested-20000-deep", raw(b"[" * 20000 + b"]" * 20000)),
]

BOOKING_CASES = [
    *(_invalid(f"book-{name}", "POST", BOOK, ["body"], body) for name, body in NOT_AN_OBJECT),
    _invalid(
        "book-empty-object",
        "POST",
        BOOK,
        ["service_id", "provider_id", "start", "client"],
        raw(b"{}"),
    ),
    # wrong types and impossible ids
    *(
        _invalid(f"book-service_id-{name}", "POST", BOOK, ["service_id"], book(service_id=value))
        for name, value in [
            ("string", "1"),
            ("bool", True),
            ("float", 1.0),
            ("fraction", 1.5),
            ("null", None),
            ("zero", 0),
            ("negative", -1),
            ("2**31", 2**31),
            ("2**63", 2**63),
            ("minus-2**63", -(2**63)),
            ("list", [1]),
            ("object", {"id": 1}),
            ("missing", DROP),
        ]
    ),
    *(
        _invalid(f"book-provider_id-{name}", "POST", BOOK, ["provider_id"], book(provider_id=v))
        for name, v in [
            ("string", "2"),
            ("bool", False),
            ("negative", -5),
            ("2**63", 2**63),
            ("null", None),
        ]
    ),
    _invalid(
        "book-service_id-400-digits",
        "POST",
        BOOK,
        ["service_id"],
        book_with_literal("service_id", b"9" * 400),
    ),
    _invalid(
        "book-service_id-NaN", "POST", BOOK, ["service_id"], book_with_literal("service_id", b"NaN")
    ),
    _invalid(
        "book-service_id-1e400",
        "POST",
        BOOK,
        ["service_id"],
        book_with_literal("service_id", b"1e400"),
    ),
    _status("book-unknown-service", "POST", BOOK, 404, "not_found", book(service_id=987654)),
    _status("book-unknown-provider", "POST", BOOK, 404, "not_found", book(provider_id=987654)),
    # absurd instants
    *(
        _invalid(f"book-start-{name}", "POST", BOOK, ["start"], book(start=value))
        for name, value in [
            ("missing-offset", "2027-03-02T11:00:00"),
            ("date-only", "2027-03-02"),
            ("year-0", "0000-03-02T11:00:00+01:00"),
            ("year-9999", "9999-12-31T23:30:00+01:00"),
            ("feb-30", "2027-02-30T11:00:00+01:00"),
            ("hour-25", "2027-03-02T25:00:00+01:00"),
            ("offset-25h", "2027-03-02T11:00:00+25:00"),
            ("words", "tomorrow at eleven"),
            ("empty", ""),
            ("epoch-number", 1803970800),
            ("null", None),
            ("missing", DROP),
        ]
    ),
    # well-formed, but not a slot this provider offers
    *(
        _status(f"book-start-{name}", "POST", BOOK, 409, "slot_unavailable", book(start=value))
        for name, value in [
            ("taken", TAKEN),
            ("taken-written-in-utc", "2027-03-02T09:00:00Z"),
            ("off-the-grid", "2027-03-02T11:15:00+01:00"),
            ("a-second-off-the-grid", "2027-03-02T11:00:01+01:00"),
            ("at-night", "2027-03-02T23:00:00+01:00"),
            ("in-the-past", "2027-02-26T11:00:00+01:00"),
            ("year-1970", "1970-01-01T11:00:00+01:00"),
            ("year-2200", "2200-03-04T11:00:00+01:00"),
            ("in-the-dst-gap", "2027-03-28T02:30:00+01:00"),
        ]
    ),
    # the client
    *(
        _invalid(f"book-client-{name}", "POST", BOOK, ["client"], book(client=v))
        for name, v in [("string", "Ann"), ("list", []), ("null", None), ("missing", DROP)]
    ),
    *(
        _invalid(
            f"book-name-{name}", "POST", BOOK, ["client.name"], book(client_changes={"name": value})
        )
        for name, value in [
            ("missing", DROP),
            ("empty", ""),
            ("blank", "   "),
            ("number", 7),
            ("null", None),
            ("list", ["Ann"]),
            ("201-chars", "A" * 201),
            ("10k-chars", "A" * 10_000),
            ("nul-byte", "A\x00nn"),
            ("newline", "Ann\nBcc: all@example.com"),
            ("carriage-return", "Ann\rLee"),
            ("tab", "Ann\tLee"),
            ("escape-sequence", "\x1b[2JAnn"),
            ("delete-char", "Ann\x7f"),
            ("bell", "\x07Ann"),
        ]
    ),
    *(
        _invalid(
            f"book-notes-{name}", "POST", BOOK, ["client.notes"], book(client_changes={"notes": v})
        )
        for name, v in [
            ("nul-byte", "before\x00after"),
            ("escape-sequence", "\x1b[31mred"),
            ("bell", "ring \x07"),
            ("2001-chars", "n" * 2001),
            ("number", 5),
            ("object", {"text": "hi"}),
        ]
    ),
    *(
        _invalid(
            f"book-email-{name}", "POST", BOOK, ["client.email"], book(client_changes={"email": v})
        )
        for name, v in [
            ("missing", DROP),
            ("empty", ""),
            ("no-at", "not-an-email"),
            ("no-domain", "ann@"),
            ("no-local-part", "@example.com"),
            ("no-dot-in-domain", "ann@localhost"),
            ("space", "ann smith@example.com"),
            ("header-injection", "ann@example.com\r\nBcc: all@example.com"),
            ("nul-byte", "ann@exa\x00mple.com"),
            ("markup", "<script>@example.com"),
            ("too-long", "a" * 250 + "@example.com"),
            ("number", 1),
            ("null", None),
        ]
    ),
    *(
        _invalid(
            f"book-phone-{name}", "POST", BOOK, ["client.phone"], book(client_changes={"phone": v})
        )
        for name, v in [
            ("letters", "call me maybe"),
            ("41-chars", "1" * 41),
            ("newline", "+33 1\n23"),
            ("number", 33123456789),
        ]
    ),
    _invalid("book-consents-string", "POST", BOOK, ["consents"], book(consents="yes")),
    _invalid("book-consents-51", "POST", BOOK, ["consents"], book(consents=["terms"] * 51)),
    _invalid("book-consents-number-item", "POST", BOOK, ["consents.0"], book(consents=[1])),
    _invalid("book-consents-nul-item", "POST", BOOK, ["consents.0"], book(consents=["a\x00"])),
    # too large
    _status("book-1MB-name", "POST", BOOK, 413, "payload_too_large", huge_name),
    _status("book-1MB-garbage", "POST", BOOK, 413, "payload_too_large", raw(b"x" * 2**20)),
    _status("book-64KiB-plus-one", "POST", BOOK, 413, "payload_too_large", just_over_the_limit),
]

CANCEL_CASES = [
    *(_invalid(f"cancel-{name}", "POST", CANCEL, ["body"], body) for name, body in NOT_AN_OBJECT),
    *(
        _invalid(f"cancel-token-{name}", "POST", CANCEL, ["token"], cancel(token=value))
        for name, value in [
            ("missing", DROP),
            ("empty", ""),
            ("number", 5),
            ("null", None),
            ("list", ["x"]),
            ("201-chars", "t" * 201),
        ]
    ),
    _status("cancel-wrong-token", "POST", CANCEL, 404, "not_found", cancel(token="not-the-token")),
    _status("cancel-nul-token", "POST", CANCEL, 404, "not_found", cancel(token="\x00")),
    _status(
        "cancel-unknown-reference",
        "POST",
        f"{API}/bookings/AAAA-BBBB-CCCC-DDDD/cancel",
        404,
        "not_found",
        cancel(),
    ),
    _status(
        "cancel-nul-reference", "POST", f"{API}/bookings/%00/cancel", 404, "not_found", cancel()
    ),
    _status(
        "cancel-sql-reference",
        "POST",
        f"{API}/bookings/'%20OR%20'1'='1/cancel",
        404,
        "not_found",
        cancel(),
    ),
    _status(
        "cancel-10k-reference",
        "POST",
        f"{API}/bookings/{'R' * 10_000}/cancel",
        404,
        "not_found",
        cancel(),
    ),
    _status(
        "cancel-1MB-token",
        "POST",
        CANCEL,
        413,
        "payload_too_large",
        as_json(lambda c: {"token": "t" * 2**20}),
    ),
]

RESCHEDULE_CASES = [
    *(
        _invalid(f"reschedule-{name}", "POST", RESCHEDULE, ["body"], body)
        for name, body in NOT_AN_OBJECT
    ),
    _invalid("reschedule-empty-object", "POST", RESCHEDULE, ["token", "start"], raw(b"{}")),
    _invalid("reschedule-token-missing", "POST", RESCHEDULE, ["token"], reschedule(token=DROP)),
    _invalid("reschedule-token-number", "POST", RESCHEDULE, ["token"], reschedule(token=1)),
    *(
        _invalid(f"reschedule-start-{name}", "POST", RESCHEDULE, ["start"], reschedule(start=v))
        for name, v in [
            ("missing", DROP),
            ("missing-offset", "2027-03-02T12:00:00"),
            ("year-0", "0000-03-02T12:00:00+01:00"),
            ("year-9999", "9999-12-31T23:30:00+01:00"),
            ("feb-30", "2027-02-30T12:00:00+01:00"),
            ("number", 1803970800),
            ("null", None),
        ]
    ),
    *(
        _invalid(
            f"reschedule-provider_id-{name}",
            "POST",
            RESCHEDULE,
            ["provider_id"],
            reschedule(provider_id=v),
        )
        for name, v in [
            ("string", "2"),
            ("bool", True),
            ("zero", 0),
            ("fraction", 1.5),
            ("2**63", 2**63),
        ]
    ),
    _status(
        "reschedule-wrong-token", "POST", RESCHEDULE, 404, "not_found", reschedule(token="nope")
    ),
    _status(
        "reschedule-unknown-provider",
        "POST",
        RESCHEDULE,
        404,
        "not_found",
        reschedule(provider_id=987654),
    ),
    _status(
        "reschedule-nul-reference",
        "POST",
        f"{API}/bookings/%00/reschedule",
        404,
        "not_found",
        reschedule(),
    ),
    *(
        _status(
            f"reschedule-to-{name}",
            "POST",
            RESCHEDULE,
            409,
            "slot_unavailable",
            reschedule(start=v),
        )
        for name, v in [
            ("off-the-grid", "2027-03-02T12:10:00+01:00"),
            ("night", "2027-03-02T22:00:00+01:00"),
            ("the-past", "2027-02-27T12:00:00+01:00"),
            ("year-2200", "2200-03-04T12:00:00+01:00"),
        ]
    ),
    _status(
        "reschedule-1MB",
        "POST",
        RESCHEDULE,
        413,
        "payload_too_large",
        as_json(lambda c: {"token": c.token, "start": RESCHEDULE_TO, "pad": "p" * 2**20}),
    ),
]

SHOW_CASES = [
    _status("show-no-token", "GET", SHOW, 404, "not_found"),
    _status("show-empty-token", "GET", f"{SHOW}?token=", 404, "not_found"),
    _status("show-wrong-token", "GET", f"{SHOW}?token=not-the-token", 404, "not_found"),
    _status("show-nul-token", "GET", f"{SHOW}?token=%00", 404, "not_found"),
    _status("show-unicode-token", "GET", f"{SHOW}?token=%C3%A9%F0%9F%98%80", 404, "not_found"),
    _status("show-10k-token", "GET", f"{SHOW}?token={'t' * 10_000}", 404, "not_found"),
    _status(
        "show-unknown-reference",
        "GET",
        f"{API}/bookings/AAAA-BBBB-CCCC-DDDD?token={{token}}",
        404,
        "not_found",
    ),
    _status("show-nul-reference", "GET", f"{API}/bookings/%00?token={{token}}", 404, "not_found"),
    _status(
        "show-invalid-utf8-reference",
        "GET",
        f"{API}/bookings/%ED%A0%80%FF?token={{token}}",
        404,
        "not_found",
    ),
    _status(
        "show-10k-reference",
        "GET",
        f"{API}/bookings/{'R' * 10_000}?token={{token}}",
        404,
        "not_found",
    ),
]


def _availability(query: str) -> str:
    return f"{AVAILABILITY}?{query}"


DAYS = "from=2027-03-02&to=2027-03-02"
AVAILABILITY_CASES = [
    _invalid("availability-no-parameters", "GET", AVAILABILITY, ["service_id", "from", "to"]),
    *(
        _invalid(
            f"availability-service_id-{name}",
            "GET",
            _availability(f"service_id={v}&{DAYS}"),
            ["service_id"],
        )
        for name, v in [
            ("word", "abc"),
            ("negative", "-1"),
            ("zero", "0"),
            ("fraction", "1.5"),
            ("leading-space", "%201"),
            ("arabic-digit", "%D9%A1"),
            ("2**31", str(2**31)),
            ("9999999999", "9999999999"),
            ("2**63", str(2**63)),
            ("nul-byte", "1%00"),
            ("empty", ""),
        ]
    ),
    *(
        _invalid(
            f"availability-provider_id-{name}",
            "GET",
            _availability(f"service_id=1&provider_id={v}&{DAYS}"),
            ["provider_id"],
        )
        for name, v in [
            ("word", "x"),
            ("negative", "-2"),
            ("2**31", str(2**31)),
            ("2**63", str(2**63)),
            ("empty", ""),
        ]
    ),
    *(
        _invalid(
            f"availability-from-{name}",
            "GET",
            _availability(f"service_id=1&from={v}&to=2027-03-02"),
            ["from"],
        )
        for name, v in [
            ("feb-30", "2027-02-30"),
            ("year-0", "0000-01-01"),
            ("year-9999", "9999-12-31"),
            ("unpadded", "2027-3-2"),
            ("with-time", "2027-03-02T10:00"),
            ("words", "today"),
            ("nul-byte", "%00"),
            ("empty", ""),
            ("basic-format", "20270302"),
            ("week-date", "2027-W09-2"),
            ("year-1969", "1969-12-31"),
        ]
    ),
    _invalid(
        "availability-to-missing", "GET", _availability("service_id=1&from=2027-03-02"), ["to"]
    ),
    _invalid(
        "availability-from-after-to",
        "GET",
        _availability("service_id=1&from=2027-03-10&to=2027-03-02"),
        ["to"],
    ),
    _invalid(
        "availability-63-days",
        "GET",
        _availability("service_id=1&from=2027-03-02&to=2027-05-03"),
        ["to"],
    ),
    _invalid(
        "availability-230-years",
        "GET",
        _availability("service_id=1&from=1970-01-01&to=2200-12-31"),
        ["to"],
    ),
    _status(
        "availability-unknown-service",
        "GET",
        _availability(f"service_id=987654&{DAYS}"),
        404,
        "not_found",
    ),
    _status(
        "availability-unknown-provider",
        "GET",
        _availability(f"service_id=1&provider_id=987654&{DAYS}"),
        404,
        "not_found",
    ),
]

PROVIDER_CASES = [
    _invalid(f"providers-service_id-{name}", "GET", f"{PROVIDERS}?service_id={v}", ["service_id"])
    for name, v in [
        ("word", "abc"),
        ("negative", "-3"),
        ("zero", "0"),
        ("2**31", str(2**31)),
        ("2**63", str(2**63)),
        ("empty", ""),
    ]
]

TENANT_CASES = [
    _status(
        f"unknown-tenant-{slug_name}-{name}",
        method,
        path.replace("/salon/", f"/{slug}/"),
        404,
        "not_found",
        body,
    )
    for slug_name, slug in [
        ("nobody", "nobody"),
        ("upper-case", "SALON"),
        ("nul", "sa%00lon"),
        ("10k", "s" * 10_000),
    ]
    for name, method, path, body in [
        ("services", "GET", f"{API}/services", None),
        ("providers", "GET", PROVIDERS, None),
        ("availability", "GET", _availability(f"service_id=1&{DAYS}"), None),
        ("requirements", "GET", f"{API}/booking-requirements", None),
        ("book", "POST", BOOK, book()),
        ("show", "GET", f"{SHOW}?token={{token}}", None),
        ("cancel", "POST", CANCEL, cancel()),
        ("reschedule", "POST", RESCHEDULE, reschedule()),
    ]
]

ROUTE_CASES = [
    *(
        _status(f"route-unknown-{name}", method, path, 404, "not_found")
        for name, method, path in [
            ("api-root", "GET", "/api/"),
            ("v1-root", "GET", "/api/v1"),
            ("v1-nothing", "GET", "/api/v1/nothing"),
            ("v2", "GET", "/api/v2/tenants/salon/services"),
            ("tenant-nothing", "GET", f"{API}/nothing"),
            ("booking-delete-verb", "POST", f"{API}/bookings/{{ref}}/delete"),
            ("tenants-list", "GET", "/api/v1/tenants"),
        ]
    ),
    *(
        _status(f"route-wrong-method-{name}", method, path, 405, "method_not_allowed")
        for name, method, path in [
            ("delete-bookings", "DELETE", BOOK),
            ("put-bookings", "PUT", BOOK),
            ("patch-booking", "PATCH", SHOW),
            ("delete-booking", "DELETE", SHOW),
            ("get-cancel", "GET", CANCEL),
            ("get-reschedule", "GET", RESCHEDULE),
            ("post-availability", "POST", AVAILABILITY),
            ("post-services", "POST", f"{API}/services"),
            ("post-openapi", "POST", "/api/v1/openapi.json"),
        ]
    ),
]

CASES = [
    *BOOKING_CASES,
    *CANCEL_CASES,
    *RESCHEDULE_CASES,
    *SHOW_CASES,
    *AVAILABILITY_CASES,
    *PROVIDER_CASES,
    *TENANT_CASES,
    *ROUTE_CASES,
]


def test_the_battery_has_one_row_per_id():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_malformed_request_gets_its_json_error_and_stores_nothing(app, client, ctx, case):
    count, before = booking_count(app), snapshot(app)
    response = case.send(client, ctx)
    assert_error(response, case.status, case.code, case.fields)
    assert booking_count(app) == count
    assert snapshot(app) == before


def test_a_wrong_method_names_the_allowed_ones(client, ctx):
    response = client.delete(f"{API}/bookings/{ctx.reference}/cancel")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_the_battery_left_the_booking_usable(client, ctx):
    """After the refusals above the fixture's booking still answers to its token."""
    for case in CASES:
        if case.method == "POST" and case.status != 413:
            case.send(client, ctx)
    shown = client.get(f"{API}/bookings/{ctx.reference}", query_string={"token": ctx.token})
    assert shown.status_code == 200, shown.json
    assert shown.json["status"] == "confirmed"
    assert shown.json["start"] == TAKEN
    assert shown.json["rescheduled_from"] == []


# --- what is accepted is stored verbatim ---------------------------------------------------------

MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SQL = "'; DROP TABLE bookings; --"


@pytest.mark.parametrize(
    ("name", "notes"),
    [
        ("Ann", MARKUP),
        ("Ann", SQL),
        ("Robert'); DROP TABLE bookings;--", f"{SQL}\n{MARKUP}\n\ttabbed\r\n"),
        ("<b>Ann</b>", '" OR 1=1 -- /* */ %s %(x)s {0} ${x} \\x00'),
        ("Zoë Ångström-李小龍 😀", "Привет, مرحبا, שלום, 👩\u200d👩\u200d👧"),
        # A bidi override is refused in a name (test_input_standard.py), kept in notes.
        ("Ann\u200f", "\u202eevil\u202c \u200b\ufeff zero width and bidi"),
        ("😀" * 200, "🎉" * 2000),
    ],
    ids=["markup", "sql", "sql-and-markup", "quotes-and-formats", "unicode", "bidi", "astral-max"],
)
def test_markup_sql_and_unicode_are_stored_and_returned_verbatim(
    app, client, business, name, notes
):
    body = booking_body(business, FREE)
    body["client"] = {"name": name, "email": "client@example.com", "notes": notes}
    response = client.post(f"{API}/bookings", json=body)
    assert response.status_code == 201, response.json
    assert response.json["client"]["name"] == name
    assert response.json["client"]["notes"] == notes
    shown = client.get(
        f"{API}/bookings/{response.json['reference']}",
        query_string={"token": response.json["manage_token"]},
    )
    assert shown.status_code == 200
    assert shown.json["client"] == response.json["client"]
    with db.engine_of(app).connect() as connection:
        stored = connection.execute(
            select(Booking.client_name, Booking.client_notes).where(
                Booking.reference == response.json["reference"]
            )
        ).one()
    assert tuple(stored) == (name, notes)
    # The table still works: another booking lands beside it.
    second = client.post(
        f"{API}/bookings",
        json=booking_body(business, FREE, provider_id=business.second_provider_id),
    )
    assert second.status_code == 201, second.json
    assert booking_count(app) == 2


def test_a_name_is_trimmed_but_notes_are_kept_as_written(client, business):
    body = booking_body(business, FREE)
    body["client"].update(name="  Ann Lee  ", notes="  two spaces, then a newline\n")
    response = client.post(f"{API}/bookings", json=body)
    assert response.status_code == 201, response.json
    assert response.json["client"]["name"] == "Ann Lee"
    assert response.json["client"]["notes"] == "  two spaces, then a newline\n"


def test_unknown_fields_are_refused_by_name_and_nothing_is_stored(app, client, business):
    body = booking_body(
        business,
        FREE,
        status="cancelled",
        price_cents=0,
        reference="MINE-MINE-MINE-MINE",
        tenant_id=999,
        admin=True,
    )
    body["client"]["is_staff"] = True
    response = client.post(f"{API}/bookings", json=body)
    assert_error(response, 422, "invalid")
    fields = response.json["error"]["fields"]
    for name in ("status", "price_cents", "reference", "tenant_id", "admin", "client.is_staff"):
        assert fields[name] == "Unknown field.", name
    assert booking_count(app) == 0


def test_a_booking_with_an_end_is_refused_not_shortened(app, client, business):
    """The end comes from the service: one sent two hours after the start is not quietly
    turned into a 30-minute booking."""
    body = booking_body(business, FREE, end="2027-03-02T12:00:00+01:00")
    response = client.post(f"{API}/bookings", json=body)
    assert_error(response, 422, "invalid", ["end"])
    assert response.json["error"]["fields"]["end"] == "Unknown field."
    assert booking_count(app) == 0


def test_a_body_of_exactly_the_size_limit_is_accepted(client, business):
    valid = json.dumps(booking_body(business, FREE)).encode()
    padded = valid[:-1] + b" " * (MAX_BODY - len(valid)) + b"}"
    assert len(padded) == MAX_BODY
    response = client.post(
        f"{API}/bookings", data=padded, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.json


def test_the_same_instant_in_another_offset_is_the_same_slot(client, business):
    response = client.post(f"{API}/bookings", json=booking_body(business, "2027-03-02T10:00:00Z"))
    assert response.status_code == 201, response.json
    assert response.json["start"] == FREE
    again = client.post(
        f"{API}/bookings", json=booking_body(business, "2027-03-02T05:00:00-05:00", name="Bob")
    )
    assert_error(again, 409, "slot_unavailable")


def test_availability_of_62_days_is_answered(client, business):
    response = client.get(
        f"{API}/availability",
        query_string={"service_id": business.service_id, "from": "2027-03-02", "to": "2027-05-02"},
    )
    assert response.status_code == 200, response.json
    assert response.json["slots"]


# --- tenants are walled off ----------------------------------------------------------------------


@pytest.fixture
def barber(app, client, clock):
    """A second tenant, 'barber', with one booking of its own."""
    with db.write_transaction(app) as session:
        tenant = create_tenant(
            session, "barber", name="Barber", timezone="Europe/Paris", now=clock()
        )
        service = add_service(
            session,
            tenant,
            "Shave",
            description="",
            duration_minutes=30,
            price_cents=1500,
            slot_step_minutes=30,
            min_notice_minutes=0,
            horizon_days=365,
        )
        provider = add_provider(session, tenant, "Cy", [service], open_every_day())
        service_id, provider_id = service.id, provider.id
    response = client.post(
        "/api/v1/tenants/barber/bookings",
        json={
            "service_id": service_id,
            "provider_id": provider_id,
            "start": TAKEN,
            "client": {"name": "Dee", "email": "dee@example.com"},
        },
    )
    assert response.status_code == 201, response.json
    return {
        "service_id": service_id,
        "provider_id": provider_id,
        "reference": response.json["reference"],
        "token": response.json["manage_token"],
    }


def test_another_tenants_booking_is_not_found_under_this_tenant(app, client, business, barber):
    before = snapshot(app)
    reference, token = barber["reference"], barber["token"]
    shown = client.get(f"{API}/bookings/{reference}", query_string={"token": token})
    assert_error(shown, 404, "not_found")
    cancelled = client.post(f"{API}/bookings/{reference}/cancel", json={"token": token})
    assert_error(cancelled, 404, "not_found")
    moved = client.post(
        f"{API}/bookings/{reference}/reschedule", json={"token": token, "start": RESCHEDULE_TO}
    )
    assert_error(moved, 404, "not_found")
    assert snapshot(app) == before
    own = client.get(f"/api/v1/tenants/barber/bookings/{reference}", query_string={"token": token})
    assert own.status_code == 200 and own.json["status"] == "confirmed"


def test_another_tenants_service_and_provider_are_not_found(app, client, business, barber):
    before = snapshot(app)
    foreign_service = booking_body(business, FREE)
    foreign_service["service_id"] = barber["service_id"]
    assert_error(client.post(f"{API}/bookings", json=foreign_service), 404, "not_found")
    foreign_provider = booking_body(business, FREE, provider_id=barber["provider_id"])
    assert_error(client.post(f"{API}/bookings", json=foreign_provider), 404, "not_found")
    days = {"from": "2027-03-02", "to": "2027-03-02"}
    assert_error(
        client.get(
            f"{API}/availability", query_string={"service_id": barber["service_id"], **days}
        ),
        404,
        "not_found",
    )
    assert_error(
        client.get(
            f"{API}/availability",
            query_string={
                "service_id": business.service_id,
                "provider_id": barber["provider_id"],
                **days,
            },
        ),
        404,
        "not_found",
    )
    assert snapshot(app) == before


def test_a_provider_not_offering_the_service_has_no_slot_for_it(app, client, business):
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, business.tenant_id)
        dye = add_service(
            session,
            tenant,
            "Dye",
            description="",
            duration_minutes=30,
            price_cents=100,
            slot_step_minutes=30,
            min_notice_minutes=0,
            horizon_days=365,
        )
        colourist = add_provider(session, tenant, "Cy", [dye], open_every_day()).id
    response = client.post(
        f"{API}/bookings", json=booking_body(business, FREE, provider_id=colourist)
    )
    assert_error(response, 409, "slot_unavailable")
    assert booking_count(app) == 0


# --- Idempotency-Key -----------------------------------------------------------------------------


def _post(client, body, key=None, slug="salon"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/api/v1/tenants/{slug}/bookings", json=body, headers=headers)


def test_a_retry_with_the_same_key_returns_the_first_answer_and_books_once(app, client, business):
    body = booking_body(business, FREE)
    first = _post(client, body, "0b8f3c1e-retry-0001")
    assert first.status_code == 201, first.json
    for _ in range(3):
        again = _post(client, body, "0b8f3c1e-retry-0001")
        assert again.status_code == 201
        assert again.get_json() == first.get_json()
        assert again.get_data() == first.get_data()
    assert booking_count(app) == 1


def test_a_retry_is_answered_even_after_the_booking_was_cancelled(app, client, business):
    body = booking_body(business, FREE)
    first = _post(client, body, "0b8f3c1e-retry-0002")
    cancelled = client.post(
        f"{API}/bookings/{first.json['reference']}/cancel",
        json={"token": first.json["manage_token"]},
    )
    assert cancelled.status_code == 200
    again = _post(client, body, "0b8f3c1e-retry-0002")
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert booking_count(app) == 1


def test_the_same_key_with_a_different_body_is_refused(app, client, business):
    first = _post(client, booking_body(business, FREE), "0b8f3c1e-reused-0001")
    assert first.status_code == 201
    before = snapshot(app)
    for different in (
        booking_body(business, "2027-03-02T14:00:00+01:00"),
        booking_body(business, FREE, name="Bob"),
        booking_body(business, FREE, provider_id=business.second_provider_id),
    ):
        assert_error(
            _post(client, different, "0b8f3c1e-reused-0001"), 422, "idempotency_key_reused"
        )
    assert snapshot(app) == before


def test_a_retry_with_an_unknown_field_is_refused_and_the_key_stays_usable(app, client, business):
    body = booking_body(business, FREE)
    key = "0b8f3c1e-extras-0001"
    refused = _post(client, {**body, "utm_source": "newsletter"}, key)
    assert_error(refused, 422, "invalid", ["utm_source"])
    first = _post(client, body, key)
    assert first.status_code == 201
    assert _post(client, body, key).get_json() == first.get_json()
    assert booking_count(app) == 1


def test_the_same_key_on_another_tenant_is_independent(app, client, business, barber):
    before = booking_count(app)
    here = _post(client, booking_body(business, FREE), "0b8f3c1e-shared-0001")
    there = _post(
        client,
        {
            "service_id": barber["service_id"],
            "provider_id": barber["provider_id"],
            "start": FREE,
            "client": {"name": "Ann", "email": "ann@example.com"},
        },
        "0b8f3c1e-shared-0001",
        slug="barber",
    )
    assert here.status_code == 201, here.json
    assert there.status_code == 201, there.json
    assert here.json["reference"] != there.json["reference"]
    assert booking_count(app) == before + 2


def test_a_key_is_kept_for_a_day_and_then_forgotten(app, client, business, clock):
    body = booking_body(business, "2027-03-05T10:00:00+01:00")
    first = _post(client, body, "0b8f3c1e-daily-0001")
    assert first.status_code == 201
    clock.advance(hours=23)
    again = _post(client, body, "0b8f3c1e-daily-0001")
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert_error(
        _post(client, booking_body(business, "2027-03-05T11:00:00+01:00"), "0b8f3c1e-daily-0001"),
        422,
        "idempotency_key_reused",
    )
    clock.advance(hours=2)  # 25 hours after the first request
    anew = _post(client, booking_body(business, "2027-03-05T11:00:00+01:00"), "0b8f3c1e-daily-0001")
    assert anew.status_code == 201, anew.json
    assert anew.json["reference"] != first.json["reference"]
    assert booking_count(app) == 2


def test_a_refused_booking_does_not_use_up_its_key(app, client, business, ctx):
    before = snapshot(app)
    assert_error(
        _post(client, booking_body(business, TAKEN), "0b8f3c1e-after-0409"), 409, "slot_unavailable"
    )
    assert_error(
        _post(client, {**booking_body(business, FREE), "start": "soon"}, "0b8f3c1e-after-0422"),
        422,
        "invalid",
    )
    assert snapshot(app) == before
    assert _post(client, booking_body(business, FREE), "0b8f3c1e-after-0409").status_code == 201
    free_too = booking_body(business, FREE, provider_id=business.second_provider_id)
    assert _post(client, free_too, "0b8f3c1e-after-0422").status_code == 201


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k-1", id="short"),
        pytest.param("k" * 15, id="15-chars"),
        pytest.param("k" * 256, id="256-chars"),
        pytest.param("a\tb", id="tab"),
        pytest.param("a\x7fb", id="delete-char"),
    ],
)
def test_an_unusable_key_is_refused(app, client, business, key):
    assert_error(
        _post(client, booking_body(business, FREE), key), 422, "invalid", ["Idempotency-Key"]
    )
    assert booking_count(app) == 0


def test_a_retry_crossing_the_first_request_gets_the_first_answer(app, client, business):
    """The retry checks its key, then the first request books and commits, then the retry takes
    its write transaction: it must replay the first answer, not fail."""
    body = booking_body(business, FREE)
    writer_sessions = app.extensions[db.EXTENSION]["writer_sessions"]
    retry_at_the_door, first_committed = threading.Event(), threading.Event()
    answers = []

    def send_retry():
        answers.append(_post(app.test_client(), body, "0b8f3c1e-crossing-01"))

    retry = threading.Thread(target=send_retry)

    def hold_the_retry(session, transaction):
        if threading.current_thread() is retry and transaction.parent is None:
            retry_at_the_door.set()
            first_committed.wait(10)

    event.listen(writer_sessions, "after_transaction_create", hold_the_retry)
    try:
        retry.start()
        assert retry_at_the_door.wait(10)
        first = _post(client, body, "0b8f3c1e-crossing-01")
        first_committed.set()
        retry.join(20)
    finally:
        first_committed.set()
        event.remove(writer_sessions, "after_transaction_create", hold_the_retry)
    assert first.status_code == 201, first.json
    (second,) = answers
    assert second.status_code == 201, second.get_data(as_text=True)
    assert second.get_json() == first.get_json()
    assert booking_count(app) == 1


def test_concurrent_retries_with_one_key_book_once_and_share_the_answer(app, business):
    for round_number, day in enumerate(("02", "03", "04")):
        body = booking_body(business, f"2027-03-{day}T10:00:00+01:00")
        barrier = threading.Barrier(6)
        answers = []

        def send(
            body=body, barrier=barrier, answers=answers, key=f"0b8f3c1e-burst-{round_number:04d}"
        ):
            client = app.test_client()
            barrier.wait()
            answers.append(_post(client, body, key))

        threads = [threading.Thread(target=send) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] * 6, statuses
        assert len({answer.json["reference"] for answer in answers}) == 1
    assert booking_count(app) == 3


# --- fuzz ----------------------------------------------------------------------------------------

ATOMS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    2**31 - 1,
    2**31,
    2**63,
    -(2**63),
    10**30,
    0.5,
    -0.0,
    1e308,
    "",
    " ",
    "1",
    "abc",
    "\x00",
    "\x1b[0m",
    "\u202e",
    "\ud800",
    "😀" * 50,
    "<script>alert(1)</script>",
    "'; DROP TABLE bookings; --",
    "ann@example.com",
    "not@an@email",
    "2027-03-02T11:00:00+01:00",
    "2027-03-02T11:00:00",
    "2027-02-30T11:00:00+01:00",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "x" * 3000,
    [],
    {},
]
FREE_STARTS = [
    f"2027-03-0{day}T{hour}:{minute}:00+01:00"
    for day in (3, 4)
    for hour in (10, 11, 14)
    for minute in ("00", "30")
]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.1:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if depth < 3 and roll < 0.2:
        return {
            rng.choice(["service_id", "name", "client", "start", "x", ""]): _random_value(
                rng, depth + 1
            )
            for _ in range(rng.randrange(4))
        }
    if roll < 0.3:
        return rng.randrange(-(2**64), 2**64)
    if roll < 0.4:
        return "".join(
            chr(rng.choice([rng.randrange(0, 0x80), rng.randrange(0x80, 0x2FFFF)]))
            for _ in range(rng.randrange(20))
        )
    return rng.choice(ATOMS)


def _random_body(rng: random.Random, c: Ctx) -> tuple[bytes, str | None]:
    strategy = rng.random()
    body: Any = _booking(c, start=rng.choice(FREE_STARTS))
    body["provider_id"] = rng.choice([c.provider_id, c.second_provider_id])
    if strategy < 0.6:  # a valid body with a few fields broken, dropped or added
        for _ in range(rng.randrange(4)):
            target = (
                body["client"]
                if rng.random() < 0.5 and isinstance(body.get("client"), dict)
                else body
            )
            key = rng.choice(list(target) + ["notes", "phone", "consents", "extra"])
            if rng.random() < 0.2:
                target.pop(key, None)
            else:
                target[key] = _random_value(rng)
    elif strategy < 0.75:  # anything at all
        body = _random_value(rng)
    text_body = json.dumps(body)
    if 0.75 <= strategy < 0.9:  # damaged JSON text
        cut = rng.randrange(len(text_body) + 1)
        text_body = (
            text_body[:cut]
            + rng.choice(["", "\x00", "}", "{", '"', "\\", "\ud800", "]]"])
            + text_body[cut + 1 :]
        )
    data = text_body.encode("utf-8", "surrogatepass")
    key = rng.choice([None, None, None, "0b8f3c1e-fuzz-000a", "0b8f3c1e-fuzz-000b"])
    return data, key


@pytest.mark.parametrize("seed", range(4))
def test_random_bodies_never_crash_and_only_a_201_stores_a_booking(app, client, ctx, seed):
    rng = random.Random(seed)
    seen_references = {ctx.reference}
    for attempt in range(50):
        data, key = _random_body(rng, ctx)
        count = booking_count(app)
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = client.post(f"{API}/bookings", data=data, headers=headers)
        where = f"seed {seed} attempt {attempt}: {data[:300]!r} -> {response.status_code}"
        assert response.status_code in (201, 404, 409, 413, 422), where
        if response.status_code == 201:
            reference = response.json["reference"]
            expected = (
                count if reference in seen_references else count + 1
            )  # a replay books nothing
            seen_references.add(reference)
            assert booking_count(app) == expected, where
        else:
            assert_error(response, response.status_code)
            assert booking_count(app) == count, where


def test_providers_of_an_unknown_service_is_a_404(client, business):
    response = client.get("/api/v1/tenants/salon/providers?service_id=999")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


# --- JSON only ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, id="form"),
        pytest.param({"Content-Type": "text/plain"}, id="text"),
        pytest.param({"Content-Type": "application/json; charset=latin-1"}, id="not-utf-8"),
        pytest.param({"Content-Type": "application/jsonx"}, id="json-lookalike"),
        pytest.param({}, id="no-content-type"),
    ],
)
def test_a_body_that_is_not_json_is_refused_with_415(app, client, business, headers):
    data = json.dumps(booking_body(business, FREE)).encode()
    response = client.post(f"{API}/bookings", data=data, headers=headers)
    assert_error(response, 415, "unsupported_media_type")
    assert booking_count(app) == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_a_json_body_is_accepted_with_or_without_its_charset(app, client, business, content_type):
    data = json.dumps(booking_body(business, FREE)).encode()
    response = client.post(f"{API}/bookings", data=data, headers={"Content-Type": content_type})
    assert response.status_code == 201, response.json
