"""``/api/v1/openapi.json``: a valid OpenAPI 3.1 document that describes every API route, and
that the API answers as documented."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import booking_body
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from werkzeug.exceptions import MethodNotAllowed, NotFound

DOCUMENT = "/api/v1/openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}  # Flask adds these to every route by itself


def openapi_path(rule: str) -> str:
    """``/tenants/<slug>`` or ``/files/<path:name>`` → ``/tenants/{slug}``, ``/files/{name}``."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def schema_errors(instance: Any, schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    """Validate against a schema of the document, resolving its ``#/components/...`` refs."""
    validator = OAS31Validator(
        {**schema, "components": document["components"]}, format_checker=oas31_format_checker
    )
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def response_schema(operation: dict[str, Any], status: int) -> dict[str, Any]:
    return operation["responses"][str(status)]["content"]["application/json"]["schema"]


def request_schema(operation: dict[str, Any]) -> dict[str, Any]:
    return operation["requestBody"]["content"]["application/json"]["schema"]


@pytest.fixture
def document(client) -> dict[str, Any]:
    response = client.get(DOCUMENT)
    assert response.status_code == 200
    return response.get_json()


def test_the_document_is_valid_openapi_3_1(client):
    response = client.get(DOCUMENT)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1.")
    validate(document)
    validate(document, cls=OpenAPIV31SpecValidator)


def test_the_document_is_served_without_a_tenant_or_a_database_row(make_app):
    """It describes the API, not a business: an empty instance serves it too."""
    response = make_app().test_client().get(DOCUMENT)
    assert response.status_code == 200
    validate(response.get_json())


def test_every_api_route_is_documented_with_every_method(app, document):
    undocumented = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = openapi_path(rule.rule)
        documented = document["paths"].get(path, {})
        for method in sorted((rule.methods or set()) - AUTOMATIC_METHODS):
            if method.lower() not in documented:
                undocumented.append(f"{method} {path}")
    assert undocumented == []


def test_every_documented_operation_is_a_route(app, document):
    adapter = app.url_map.bind("localhost")
    missing = []
    for path, method, _operation in operations(document):
        concrete = re.sub(r"\{[^{}]+\}", "x", path)
        try:
            adapter.match(concrete, method=method.upper())
        except (NotFound, MethodNotAllowed) as error:
            missing.append(f"{method.upper()} {path}: {error.code}")
    assert missing == []


def test_every_documented_path_parameter_is_declared(document):
    for path, method, operation in operations(document):
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^{}]+)\}", path)), f"{method} {path}"


def test_every_documented_operation_answers_as_documented(client, business, document):
    """Called with its documented parameters and body, each operation answers its documented
    success status, with a body that matches the documented schema."""
    booked = client.post(
        "/api/v1/tenants/salon/bookings", json=booking_body(business, "2027-03-02T10:00:00+01:00")
    )
    assert booked.status_code == 201
    token = booked.json["manage_token"]
    path_values = {"slug": "salon", "reference": booked.json["reference"]}
    query_values = {
        "service_id": business.service_id,
        "provider_id": business.provider_id,
        "from": "2027-03-02",
        "to": "2027-03-03",
        "token": token,
    }
    bodies = {
        "BookingIn": booking_body(business, "2027-03-02T11:00:00+01:00", name="Bea"),
        "CancelIn": {"token": token},
        "RescheduleIn": {"token": token, "start": "2027-03-02T12:00:00+01:00"},
    }
    # Cancelling last, so the booking can still be shown and moved before it.
    ordered = sorted(
        operations(document), key=lambda entry: entry[2]["operationId"] == "cancelBooking"
    )
    assert len(ordered) >= 8
    for path, method, operation in ordered:
        url = re.sub(r"\{([^{}]+)\}", lambda match: str(path_values[match[1]]), path)
        parameters = operation.get("parameters", [])
        required = {
            p["name"]: query_values[p["name"]]
            for p in parameters
            if p["in"] == "query" and p.get("required")
        }
        every = {p["name"]: query_values[p["name"]] for p in parameters if p["in"] == "query"}
        body = None
        if "requestBody" in operation:
            body = bodies[request_schema(operation)["$ref"].rsplit("/", 1)[1]]
            assert schema_errors(body, request_schema(operation), document) == [], path
        queries = [required] if every == required else [required, every]
        for query in queries:
            response = client.open(url, method=method.upper(), query_string=query, json=body)
            where = f"{method.upper()} {path} {query}: {response.status_code} {response.json}"
            success = [int(code) for code in operation["responses"] if code.startswith("2")]
            assert response.status_code in success, where
            problems = schema_errors(
                response.get_json(), response_schema(operation, response.status_code), document
            )
            assert problems == [], where


def test_the_errors_the_api_gives_are_documented_and_shaped_as_documented(
    client, business, document
):
    """An unknown business (404) on every operation, an empty body (422) and an oversized one
    (413) on every operation that takes a body: each status is listed for the operation and the
    body matches the documented Error schema."""
    for path, method, operation in operations(document):
        if "{slug}" not in path:
            continue  # the document itself belongs to no business
        url = path.replace("{slug}", "salon").replace("{reference}", "AAAA-BBBB-CCCC-DDDD")
        attempts = [(404, url.replace("/salon/", "/nobody/"), {"token": "x"})]
        if "requestBody" in operation:
            attempts += [(422, url, {}), (413, url, {"pad": "x" * 70_000})]
        for status, target, body in attempts:
            json_body = body if method == "post" else None
            response = client.open(target, method=method.upper(), json=json_body)
            where = f"{method.upper()} {target[:80]} -> {response.status_code}"
            assert response.status_code == status, where
            assert str(status) in operation["responses"], where
            problems = schema_errors(
                response.get_json(), response_schema(operation, status), document
            )
            assert problems == [], where


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({}, True),
        ({"service_id": "1"}, False),
        ({"service_id": 0}, False),
        ({"provider_id": 2**31}, False),
        ({"start": "2027-03-02T11:00:00"}, False),
        ({"start": "next tuesday"}, False),
        ({"client": None}, False),
        ({"client": {"name": "Ann"}}, False),
        ({"client": {"name": "A" * 201, "email": "a@example.com"}}, False),
        ({"client": {"name": "Ann", "email": "a@example.com", "phone": "call me"}}, False),
        ({"consents": ["terms"] * 51}, False),
        ({"consents": ["terms"]}, True),
    ],
    ids=[
        "valid",
        "string-id",
        "zero-id",
        "id-beyond-int32",
        "start-without-offset",
        "start-in-words",
        "client-null",
        "client-without-email",
        "name-too-long",
        "phone-letters",
        "51-consents",
        "one-consent",
    ],
)
def test_the_documented_booking_body_accepts_what_the_api_accepts(
    client, business, document, change, valid
):
    body = {**booking_body(business, "2027-03-02T11:00:00+01:00"), **change}
    schema = request_schema(document["paths"]["/api/v1/tenants/{slug}/bookings"]["post"])
    assert (schema_errors(body, schema, document) == []) is valid
    response = client.post("/api/v1/tenants/salon/bookings", json=body)
    assert (response.status_code == 201) is valid, response.json
