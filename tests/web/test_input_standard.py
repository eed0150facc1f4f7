"""One standard for typed text, at every door: the API, the pages' forms, the commands and core's
own functions refuse control and line-separator characters in one-line fields and NUL everywhere,
and a refused input changes nothing. Logs name people by id, never by their data; a name in a
mail header can never stop a message.

On PostgreSQL (``BOOKWELL_TEST_POSTGRES``) the NUL cases are the ones that answered 500: the
database cannot store NUL in text and failed the request.
"""

from __future__ import annotations

import email
import importlib
import logging
import os
import pkgutil
import socket
from datetime import datetime
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import add_staff_and_a_rival, booking_body, csrf_token_of, log_in_staff
from flask_wtf import FlaskForm
from sqlalchemy import func, select, text
from sqlalchemy.exc import DataError
from wtforms import PasswordField, StringField
from wtforms.fields.core import UnboundField

import bookwell.core.web
from bookwell.core.access import users
from bookwell.core.booking import catalogue, lifecycle
from bookwell.core.booking.tenants import TenantError, create_tenant
from bookwell.core.cli.root import main
from bookwell.core.foundation import text as typed
from bookwell.core.mail import deliver_due
from bookwell.core.pluginhost.settings import check_value
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    Booking,
    OutboxMessage,
    Provider,
    Service,
    Tenant,
    TimeOff,
    User,
)
from bookwell.core.testing import as_tables_owner
from bookwell.core.web.forms import STANDARD_VALIDATORS
from bookwell.hooks import Setting

BOOKINGS = "/api/v1/tenants/salon/bookings"
SLOT = "2027-03-02T10:00:00+01:00"
FORM_SLOT = "2027-03-02T11:00:00+01:00"
ONE_LINE_BREAKERS = {
    "line feed": "Staff Typed\nBcc: evil@example.com",
    "carriage return": "Ann\rBcc: evil@example.com",
    "escape": "Ann\x1b[31m",
    "NUL": "Ann\x00",
    "tab": "Ann\tLee",
    "DEL": "Ann\x7f",
    "NEL (U+0085)": "Ann\x85Bcc: evil@example.com",
    "line separator (U+2028)": "Ann\u2028Bcc: evil@example.com",
    "paragraph separator (U+2029)": "Ann\u2029Lee",
    "right-to-left override": "Ann\u202egpj.exe",
    "isolate": "Ann\u2067Lee",
}
MULTI_LINE_BREAKERS = {
    "NUL": "Please\x00 call first",
    "escape": "Please\x1b[2J call first",
    "bell": "Please\x07 call first",
    "C1 control": "Please\x9b call first",
}
POSTGRES = bool(os.environ.get("BOOKWELL_TEST_POSTGRES"))


# --- the rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ONE_LINE_BREAKERS.values(), ids=ONE_LINE_BREAKERS.keys())
def test_one_line_text_refuses_controls_separators_and_overrides(value):
    with pytest.raises(typed.TextError, match="single line"):
        typed.single_line(value)


@pytest.mark.parametrize("value", MULTI_LINE_BREAKERS.values(), ids=MULTI_LINE_BREAKERS.keys())
def test_multi_line_text_refuses_nul_and_other_controls(value):
    with pytest.raises(typed.TextError, match="control characters"):
        typed.multi_line(value)


def test_ordinary_text_passes_both_rules_and_lines_pass_in_multi_line_text():
    for value in ("Zoë O'Brien-Łukasz", "محمد", "山田 太郎", "+33 1 23 45", "a@b.example", ""):
        assert typed.single_line(value) == value and typed.multi_line(value) == value
    notes = "First line\r\nSecond\tline\n\u2028Third, with \u202bمرحبا\u202c"
    assert typed.multi_line(notes) == notes
    assert typed.folded("Ann\u2028Bcc: evil@example.com\r\n x") == "Ann Bcc: evil@example.com x"


# --- every form of the pages carries the standard -------------------------------------------------


def _forms_of_core() -> list[type]:
    """Every form class of core: forms are the web's, whose modules are imported first (some
    load only with the app)."""
    for module in pkgutil.walk_packages(bookwell.core.web.__path__, "bookwell.core.web."):
        importlib.import_module(module.name)
    found, waiting = [], list(FlaskForm.__subclasses__())
    while waiting:
        form = waiting.pop()
        waiting.extend(form.__subclasses__())
        if form.__module__.startswith("bookwell.core."):
            found.append(form)
    return found


def _validators(unbound: UnboundField) -> list:
    given = unbound.kwargs.get("validators")
    if given is None and len(unbound.args) > 1:
        given = unbound.args[1]
    return list(given or ())


def test_every_text_field_of_every_form_carries_the_standard_validator_first():
    forms = _forms_of_core()
    names = {form.__name__ for form in forms}
    assert {"NewBookingForm", "BusinessForm", "ServiceForm", "DetailsForm"} <= names
    checked, lacking = 0, []
    for form in forms:
        for name in dir(form):
            unbound = getattr(form, name)
            if not isinstance(unbound, UnboundField):
                continue
            if not issubclass(unbound.field_class, StringField):
                continue  # numbers, dates, choices and boxes: never free text
            if issubclass(unbound.field_class, PasswordField):
                continue  # hashed, never shown, logged or put in a header (see web/forms.py)
            checked += 1
            validators = _validators(unbound)
            if not (validators and isinstance(validators[0], STANDARD_VALIDATORS)):
                lacking.append(f"{form.__module__}.{form.__name__}.{name}")
    assert checked > 20
    assert lacking == []


# --- the API -------------------------------------------------------------------------------------


def table_rows(app, model) -> list[tuple]:
    with db.engine_of(app).connect() as connection:
        return [tuple(row) for row in connection.execute(select(model.__table__))]


def nothing_booked(app) -> bool:
    return table_rows(app, Booking) == [] and table_rows(app, OutboxMessage) == []


@pytest.mark.parametrize(
    "name",
    ["A\nB", "Ann\x1b", "Ann\x00", "Ann\u2028Lee", "Ann\x85Lee", "Ann\u202eLee"],
    ids=["line feed", "escape", "NUL", "U+2028", "U+0085", "bidi override"],
)
def test_the_api_refuses_a_client_name_that_is_not_one_line(app, client, business, name):
    body = booking_body(business, SLOT, name=name)
    body["client"]["email"] = "ann@example.com"
    response = client.post(BOOKINGS, json=body)
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["code"] == "invalid"
    assert error["fields"] == {"client.name": typed.SINGLE_LINE_MESSAGE}
    assert nothing_booked(app)


def test_the_api_refuses_nul_in_notes_but_keeps_line_breaks(app, client, business):
    body = booking_body(business, SLOT)
    body["client"]["notes"] = "Please\x00 call first"
    refused = client.post(BOOKINGS, json=body)
    assert refused.status_code == 422, refused.json  # a 500 on PostgreSQL before
    assert refused.json["error"]["fields"] == {"client.notes": typed.MULTI_LINE_MESSAGE}
    assert nothing_booked(app)
    body["client"]["notes"] = "Please call first,\r\nthen ring twice.\tThanks"
    assert client.post(BOOKINGS, json=body).status_code == 201
    with app.app_context():
        [row] = db.session().scalars(select(Booking))
        assert row.client_notes == "Please call first,\r\nthen ring twice.\tThanks"


# --- the staff pages -----------------------------------------------------------------------------


@pytest.fixture
def staffed(app, business, clock):
    add_staff_and_a_rival(app, business, clock(), ("owner", "manager", "receptionist"))
    return app


def post_form(client, url, data, page_url=None):
    token = csrf_token_of(client.get(page_url or url))
    return client.post(url, data={"csrf_token": token, **data})


def form_error(response, message: str) -> bool:
    return (
        response.status_code == 422
        and 'class="field-error"' in response.text
        and (message in response.text)
    )


def slot_value(provider_id: int, local_iso: str) -> str:
    return f"{provider_id}-{int(datetime.fromisoformat(local_iso).timestamp())}"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Staff Typed\nBcc: evil@example.com", typed.SINGLE_LINE_MESSAGE),
        ("name", "Staff\x1b[31mTyped", typed.SINGLE_LINE_MESSAGE),
        ("name", "Staff\x00Typed", typed.SINGLE_LINE_MESSAGE),
        ("name", "Staff\u2028Typed", typed.SINGLE_LINE_MESSAGE),
        ("phone", "+33 1\n23", typed.SINGLE_LINE_MESSAGE),
        ("notes", "Please\x00 call first", typed.MULTI_LINE_MESSAGE),
    ],
)
def test_the_book_for_a_client_form_refuses_it_and_books_nothing(
    staffed, business, field, value, message
):
    staff = log_in_staff(staffed, "receptionist@example.com")
    page_url = f"/admin/salon/bookings/new?service={business.service_id}&day=2027-03-02"
    details = {
        "service": business.service_id,
        "day": "2027-03-02",
        "slot": slot_value(business.provider_id, FORM_SLOT),
        "name": "Staff Typed",
        "email": "typed@example.com",
        field: value,
    }
    refused = post_form(staff, "/admin/salon/bookings/new", details, page_url)
    assert form_error(refused, message), refused.text[:2000]
    assert nothing_booked(staffed)
    details[field] = "+33 1 23" if field == "phone" else "Fine"
    assert post_form(staff, "/admin/salon/bookings/new", details, page_url).status_code == 302


SERVICE = {
    "name": "Colour",
    "description": "",
    "duration_minutes": "60",
    "buffer_before_minutes": "0",
    "buffer_after_minutes": "0",
    "price": "50",
    "min_notice_minutes": "0",
    "horizon_days": "90",
    "slot_step_minutes": "15",
    "active": "y",
}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Colour\nBcc: evil@example.com", typed.SINGLE_LINE_MESSAGE),
        ("name", "Colour\u2028", typed.SINGLE_LINE_MESSAGE),
        ("description", "Hair\x00colour", typed.MULTI_LINE_MESSAGE),
    ],
)
def test_the_service_form_refuses_it_and_changes_nothing(staffed, business, field, value, message):
    manager = log_in_staff(staffed, "manager@example.com")
    before = table_rows(staffed, Service)
    new = post_form(manager, "/admin/salon/services/new", {**SERVICE, field: value})
    assert form_error(new, message), new.text[:2000]
    edit = f"/admin/salon/services/{business.service_id}"
    edited = post_form(manager, edit, {**SERVICE, field: value})
    assert form_error(edited, message)
    assert table_rows(staffed, Service) == before
    described = {**SERVICE, "description": "Two lines:\r\nwash, then colour."}
    assert post_form(manager, "/admin/salon/services/new", described).status_code == 302


def test_the_provider_and_time_off_forms_refuse_it_and_change_nothing(staffed, business):
    manager = log_in_staff(staffed, "manager@example.com")
    before = (table_rows(staffed, Provider), table_rows(staffed, TimeOff))
    for fields in ({"name": "Cy\nBcc: x@example.com"}, {"name": "Cy", "email": "cy\x00@x.example"}):
        made = post_form(manager, "/admin/salon/providers/new", {"services": [], **fields})
        assert made.status_code == 422 and 'class="field-error"' in made.text
    edit = f"/admin/salon/providers/{business.provider_id}"
    renamed = post_form(manager, edit, {"name": "Ana\u2028Bcc: x@example.com"})
    assert form_error(renamed, typed.SINGLE_LINE_MESSAGE)
    off = post_form(
        manager,
        f"{edit}/time-off",
        {"starts_at": "2027-03-10T09:00", "ends_at": "2027-03-10T12:00", "reason": "Away\x00"},
        edit,
    )
    assert form_error(off, typed.SINGLE_LINE_MESSAGE)
    assert (table_rows(staffed, Provider), table_rows(staffed, TimeOff)) == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Salon\x00Ana", typed.SINGLE_LINE_MESSAGE),
        ("name", "Salon\nBcc: evil@example.com", typed.SINGLE_LINE_MESSAGE),
        ("phone", "+33 1\u2028", typed.SINGLE_LINE_MESSAGE),
        ("address", "1 rue\x00 de Paris", typed.MULTI_LINE_MESSAGE),
    ],
)
def test_the_business_form_refuses_it_and_changes_nothing(staffed, field, value, message):
    owner = log_in_staff(staffed, "owner@example.com")
    before = table_rows(staffed, Tenant)
    details = {"name": "Salon Ana", "contact_email": "", "phone": "", "address": "", field: value}
    refused = post_form(owner, "/admin/salon/business", details)
    assert form_error(refused, message), refused.text[:2000]  # a 500 on PostgreSQL before
    assert table_rows(staffed, Tenant) == before
    lines = {**details, field: "", "name": "Salon Ana", "address": "1 rue de Paris\r\n75001"}
    assert post_form(owner, "/admin/salon/business", lines).status_code == 302


def test_the_new_staff_form_refuses_a_name_that_is_not_one_line(staffed):
    manager = log_in_staff(staffed, "manager@example.com")
    before = table_rows(staffed, User)
    refused = post_form(
        manager,
        "/admin/salon/staff/new",
        {"name": "Eve\x1b[2J", "email": "eve@example.com", "role": "staff", "password": "x" * 20},
    )
    assert form_error(refused, typed.SINGLE_LINE_MESSAGE)
    assert table_rows(staffed, User) == before


# --- core's own functions: the last guard for any other caller ------------------------------------


def test_core_refuses_it_whoever_calls(app, business, clock):
    before = {model: table_rows(app, model) for model in (Booking, Provider, Tenant, User)}
    with app.app_context():
        with pytest.raises(lifecycle.InvalidText) as refused:
            lifecycle.create_booking(
                app,
                tenant_id=business.tenant_id,
                service_id=business.service_id,
                provider_id=business.provider_id,
                start=datetime.fromisoformat(SLOT),
                client=lifecycle.ClientDetails(name="Ann\u2028Bcc: x@example.com", email="a@b.c"),
                now=clock(),
            )
        assert refused.value.status == 422 and refused.value.field == "name"
        with pytest.raises(catalogue.CatalogueError) as refused:
            catalogue.save_provider(
                app,
                tenant_id=business.tenant_id,
                name="Cy\x00",
                email=None,
                service_ids=[],
                active=True,
                actor=None,
                now=clock(),
            )
        assert refused.value.fields == {"name": [typed.SINGLE_LINE_MESSAGE]}
        with pytest.raises(catalogue.CatalogueError) as refused:
            catalogue.update_business(
                app,
                tenant_id=business.tenant_id,
                name="Salon",
                contact_email=None,
                phone=None,
                address="1 rue\x00",
                actor=None,
                now=clock(),
            )
        assert refused.value.fields == {"address": [typed.MULTI_LINE_MESSAGE]}
        with pytest.raises(users.UserError) as refused:
            users.create_user(
                app,
                tenant_id=business.tenant_id,
                email="eve@example.com",
                role="staff",
                password="correct horse battery",
                name="Eve\nBcc: x@example.com",
                now=clock(),
            )
        assert refused.value.fields == {"name": [typed.SINGLE_LINE_MESSAGE]}
        with pytest.raises(TenantError, match="name"), db.write_transaction(app) as session:
            create_tenant(session, "spa", name="Spa\u0085", timezone="UTC", now=clock())
    assert {model: table_rows(app, model) for model in before} == before


# --- plugins' settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("str", "Closed\x00"),
        ("str", "Closed\u2028today"),
        ("str", "Closed\x1b[31m"),
        ("text", "Bring\x00 a towel"),
        ("list", ["vip", "qu\x00iet"]),
    ],
)
def test_a_plugins_text_setting_is_held_to_the_same_standard(kind, value):
    setting = Setting("note", kind, [] if kind == "list" else "", "Note")
    with pytest.raises(ValueError, match="control characters"):
        check_value(setting, value)
    assert check_value(Setting("note", "text", "", "Note"), "Two\r\nlines") == "Two\r\nlines"


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    for variable in ("BOOKWELL_SECRET_KEY", "BOOKWELL_INSTANCE"):
        monkeypatch.delenv(variable, raising=False)
    instance = tmp_path / "instance"

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(main, ["--instance", str(instance), *args], input=input)

    assert invoke("init").exit_code == 0
    return invoke


def count(database_url: str, model) -> int:
    engine = db.build_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(model))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--name", "Spa\nBcc: evil@example.com", typed.SINGLE_LINE_MESSAGE),
        ("--name", "Spa\x1b[31m", typed.SINGLE_LINE_MESSAGE),
        ("--name", "Spa\u2028", typed.SINGLE_LINE_MESSAGE),
        ("--email", "spa@example.com\r\nBcc: x@example.com", typed.SINGLE_LINE_MESSAGE),
        ("--phone", "+33\x85", typed.SINGLE_LINE_MESSAGE),
        ("--address", "1 rue\x07 de Paris", typed.MULTI_LINE_MESSAGE),
    ],
)
def test_tenants_create_refuses_it_in_one_line_and_creates_nothing(
    run, database_url, option, value, message
):
    before = count(database_url, Tenant)
    arguments = {"--name": "Spa", "--timezone": "UTC", option: value}
    result = run("tenants", "create", "spa", *[item for pair in arguments.items() for item in pair])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert count(database_url, Tenant) == before
    multi = run(
        "tenants", "create", "spa", "--name", "Spa", "--timezone", "UTC", "--address", "1\n2"
    )
    assert multi.exit_code == 0, multi.output


def test_users_create_refuses_a_name_that_is_not_one_line(run, database_url):
    assert run("tenants", "create", "spa", "--name", "Spa", "--timezone", "UTC").exit_code == 0
    before = count(database_url, User)
    for name in ("Eve\x1b[2J", "Eve\nBcc: x@example.com", "Eve\u2029"):
        result = run(
            "users",
            "create",
            "--tenant",
            "spa",
            "--email",
            "eve@example.com",
            "--role",
            "staff",
            "--name",
            name,
            "--password-stdin",
            input="correct horse battery\n",
        )
        assert result.exit_code != 0 and typed.SINGLE_LINE_MESSAGE in result.output
    assert count(database_url, User) == before


# --- logs name people by id ----------------------------------------------------------------------

CLIENT_DATA = ("Zoe Secretname", "zoe.secret@example.com", "my secret notes")


def _fail_every_booking_insert(app) -> None:
    """A database that refuses the booking's INSERT, as a full disk or a broken replica would."""
    with as_tables_owner(app) as connection:  # the app's own role may not add triggers
        if connection.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_bookings BEFORE INSERT ON bookings "
                    "BEGIN SELECT RAISE(ABORT, 'could not write'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_bookings() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'could not write'; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_bookings BEFORE INSERT ON bookings "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_bookings()"
                )
            )


def test_a_request_failing_in_the_database_logs_no_personal_data(app, client, business, caplog):
    _fail_every_booking_insert(app)
    name, address, notes = CLIENT_DATA
    body = booking_body(business, SLOT, name=name)
    body["client"].update(email=address, notes=notes)
    with caplog.at_level(logging.INFO):
        response = client.post(BOOKINGS, json=body)
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    failures = [record for record in caplog.records if record.exc_info]
    assert failures, "the failure must still be logged, with its trace"
    assert "could not write" in caplog.text  # the trace is there...
    for value in CLIENT_DATA:  # ...but nobody's data
        assert value not in caplog.text
        assert value not in response.get_data(as_text=True)


def test_a_failed_delivery_logs_the_message_not_the_address(make_app, business, clock, caplog):
    app = make_app(MAIL_DELIVERY="manual")
    with db.write_transaction(app) as session:
        session.get(Provider, business.provider_id).email = "ana.private@salon.example"
    with socket.socket() as probe:  # a port nobody listens on: every delivery fails
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{closed}"
    http = app.test_client()
    body = booking_body(business, SLOT, name="Zoe")
    body["client"]["email"] = "zoe.private@example.com"
    assert http.post(BOOKINGS, json=body).status_code == 201
    with caplog.at_level(logging.WARNING):
        report = deliver_due(app, clock())
    assert report.failed == 2
    with app.app_context():
        ids = list(db.session().scalars(select(OutboxMessage.message_id)))
    assert all(message_id in caplog.text for message_id in ids)
    assert "zoe.private@example.com" not in caplog.text
    assert "ana.private@salon.example" not in caplog.text


# --- a name in a mail header ---------------------------------------------------------------------


def test_a_name_stored_before_the_standard_never_stops_the_providers_mail(
    make_app, business, clock
):
    app = make_app(MAIL_DELIVERY="manual")
    with db.write_transaction(app) as session:
        session.get(Provider, business.provider_id).email = "ana@salon.example"
        session.get(Tenant, business.tenant_id).name = "Salon\nBcc: evil@example.com"
    http = app.test_client()
    booked = http.post(BOOKINGS, json=booking_body(business, SLOT)).json
    with db.write_transaction(app) as session:
        row = session.scalar(select(Booking).where(Booking.reference == booked["reference"]))
        row.client_name = "Ann\u2028Bcc: evil@example.com"
    cancelled = http.post(
        f"{BOOKINGS}/{booked['reference']}/cancel", json={"token": booked["manage_token"]}
    )
    assert cancelled.status_code == 200
    report = deliver_due(app, clock())
    assert (report.sent, report.failed) == (4, 0)
    folder = Path(app.instance_path) / "outbox"
    for path in folder.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert message["Bcc"] is None
        for header in ("From", "Subject"):
            assert "\n" not in str(message[header]).strip() and "\u2028" not in str(message[header])
    subjects = [
        email.message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"]
        for path in folder.glob("*.eml")
    ]
    assert "Booking cancelled: Cut with Ann Bcc: evil@example.com on" in " | ".join(subjects)


# --- PostgreSQL: what it cannot store ------------------------------------------------------------


@pytest.mark.skipif(not POSTGRES, reason="needs BOOKWELL_TEST_POSTGRES")
def test_postgresql_itself_cannot_store_nul_which_the_standard_refuses_first(app, business):
    """Why NUL is refused everywhere: PostgreSQL fails the statement, and the request with it."""
    with pytest.raises(DataError), db.write_transaction(app) as session:
        session.get(Tenant, business.tenant_id).name = "Salon\x00"
        session.flush()
