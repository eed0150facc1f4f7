"""Core's side of ``data_protection``: views of client details audited before they are shown
(refused when the entry cannot be written), and clients' phones and notes encrypted at rest (old
rows too), read in clear by every reader, across key rotation, behind the tenant wall."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bookwell.core.context import protection
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant, User
from bookwell.core.testing import as_tables_owner
from bookwell.hooks import DataProtection, Manifest, hookimpl

DAY = "2027-03-02"
PHONE, NOTES = "+33 6 12 34 56 78", "Allergic to latex.\nSecond line."


class Protects:
    """Asks what ``asked`` says; with ``failing``, its hook raises."""

    MANIFEST = Manifest("protects", "Protects", "Asks core to protect data.", "1", "test", "t")
    asked = DataProtection(audit_views=True, encrypt_client_fields=True)
    failing = False

    @hookimpl
    def data_protection(ctx, settings):
        if Protects.failing:
            raise RuntimeError("protects is down")
        return Protects.asked


class Witness:
    """What plugins are shown of a booking: its phone, as ``after_confirm`` sees it."""

    MANIFEST = Manifest("witness", "Witness", "Watches bookings.", "1", "test", "t")
    phones: list = []

    @hookimpl
    def after_confirm(ctx):
        Witness.phones.append(ctx.booking.client_phone)


@pytest.fixture(autouse=True)
def _reset():
    Protects.asked = DataProtection(audit_views=True, encrypt_client_fields=True)
    Protects.failing = False
    Witness.phones = []
    yield


@pytest.fixture
def app(make_app):
    return make_app(plugins=[Protects, Witness])


@pytest.fixture
def client(make_client):
    """Ann, a client of the salon, through the public API (the kit's, not a bare test client)."""
    return make_client()


def book(client, hour: str = "10:00", *, phone: str | None = PHONE, notes: str | None = NOTES):
    details = {"name": client.name, "email": client.email}
    if phone is not None:
        details["phone"] = phone
    if notes is not None:
        details["notes"] = notes
    response = client.post(
        service_id=client.business.service_id,
        provider_id=client.business.provider_id,
        start=f"{DAY}T{hour}:00+01:00",
        client=details,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def dump(app) -> list[tuple[str, str | None, str | None]]:
    """The bookings table as a database dump shows it: no ORM, no key."""
    with db.engine_of(app).connect() as connection:
        rows = connection.execute(
            text("SELECT reference, client_phone, client_notes FROM bookings ORDER BY id")
        )
        return [tuple(row) for row in rows]


def assert_nothing_in_clear(app) -> None:
    for reference, phone, notes in dump(app):
        for value in (phone, notes):
            assert value is None or value.startswith(protection.ENCRYPTED_PREFIX), reference
            assert value is None or ("12 34" not in value and "latex" not in value)


# --- audited views -------------------------------------------------------------------------------


def test_without_a_plugin_asking_nothing_is_audited_or_encrypted(
    app, tenant, client, owner, audit_trail
):
    booking = book(client)
    assert owner.pages.get(f"/admin/salon/bookings/{booking['reference']}").status_code == 200
    assert owner.api.get(f"bookings/{booking['reference']}").status_code == 200
    assert audit_trail(action="booking.viewed") == []
    assert dump(app) == [(booking["reference"], PHONE, NOTES)]


def test_every_view_of_booking_details_is_audited_before_it_is_shown(
    app, tenant, client, make_client, owner, receptionist, enable_plugin, audit_trail
):
    Protects.asked = DataProtection(audit_views=True)
    enable_plugin("protects")
    first = book(client, "10:00")
    second = book(make_client("Bob"), "11:00")
    page = receptionist.pages.get(f"/admin/salon/bookings/{first['reference']}")
    assert page.status_code == 200 and PHONE in page.text
    [entry] = audit_trail(action="booking.viewed")
    assert entry.subject == f"booking:{first['reference']}"
    assert entry.actor == f"user:{receptionist.user_id}"

    # An agenda shows clients' names: one entry per page, naming every booking on it.
    agenda = owner.pages.get(f"/admin/salon/?date={DAY}")
    assert agenda.status_code == 200 and "Bob" in agenda.text
    week = owner.pages.get(f"/admin/salon/week?start={DAY}")
    assert week.status_code == 200
    answer = owner.api.get(f"bookings/{second['reference']}")
    assert answer.status_code == 200 and answer.get_json()["client"]["phone"] == PHONE
    listed = owner.api.get(f"bookings?from={DAY}&to={DAY}")
    assert listed.status_code == 200 and len(listed.get_json()) == 2
    entries = audit_trail(action="booking.viewed")[1:]
    both = [first["reference"], second["reference"]]
    assert [(entry.subject, entry.details, entry.actor) for entry in entries] == [
        (f"bookings:{DAY}..{DAY}", {"references": both, "count": 2}, f"user:{owner.user_id}"),
        (f"bookings:{DAY}..2027-03-08", {"references": both, "count": 2}, f"user:{owner.user_id}"),
        (f"booking:{second['reference']}", {}, f"user:{owner.user_id}"),
        (f"bookings:{DAY}..{DAY}", {"references": both, "count": 2}, f"user:{owner.user_id}"),
    ]
    # A day without bookings shows nobody's details: nothing to record.
    assert owner.pages.get("/admin/salon/?date=2027-03-20").status_code == 200
    assert len(audit_trail(action="booking.viewed")) == 5


def _break_the_trail(app) -> None:
    """Make the database itself refuse new audit entries, as a full or failing disk would (as
    the tables' owner: the app's own role may not change the schema)."""
    with as_tables_owner(app) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text(
                    "CREATE FUNCTION test_trail_down() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'the trail is down'; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER test_trail_down BEFORE INSERT ON audit_entries "
                    "FOR EACH ROW EXECUTE FUNCTION test_trail_down()"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE TRIGGER test_trail_down BEFORE INSERT ON audit_entries "
                    "BEGIN SELECT RAISE(ABORT, 'the trail is down'); END"
                )
            )


def test_a_view_that_cannot_be_audited_is_refused(
    app, tenant, client, owner, enable_plugin, audit_trail
):
    booking = book(client)
    Protects.asked = DataProtection(audit_views=True)
    enable_plugin("protects")
    _break_the_trail(app)
    page = owner.pages.get(f"/admin/salon/bookings/{booking['reference']}")
    assert page.status_code == 503
    assert PHONE not in page.text and client.email not in page.text
    assert owner.pages.get(f"/admin/salon/?date={DAY}").status_code == 503
    answer = owner.api.get(f"bookings/{booking['reference']}")
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "audit_unavailable"
    assert PHONE not in answer.text
    assert owner.api.get(f"bookings?from={DAY}&to={DAY}").status_code == 503


@pytest.mark.parametrize("how", ["raises", "answers nonsense", "is broken"])
def test_a_failing_data_protection_hook_counts_as_asking_for_everything(
    app, tenant, client, make_client, owner, enable_plugin, audit_trail, run_schedule, how
):
    Protects.asked = DataProtection()
    enable_plugin("protects")
    before = book(client)
    assert dump(app)[0][1] == PHONE
    if how == "raises":
        Protects.failing = True
    elif how == "answers nonsense":
        Protects.asked = {"audit_views": False}
    else:
        host_of(app).mark_broken("protects", "failed at start", failed_in="test")
    run_schedule()
    assert_nothing_in_clear(app)
    if how == "is broken":
        return  # its guards fail closed too: no booking, no staff page (core's rule of old)
    after = book(make_client("Bob"), "11:00")
    assert_nothing_in_clear(app)
    for booking in (before, after):
        page = owner.pages.get(f"/admin/salon/bookings/{booking['reference']}")
        assert page.status_code == 200 and PHONE in page.text
    assert [entry.subject for entry in audit_trail(action="booking.viewed")] == [
        f"booking:{before['reference']}",
        f"booking:{after['reference']}",
    ]


def test_audit_view_of_a_client_record(app, tenant, owner, enable_plugin, audit_trail):
    """The function other views (a client's record) call: one client, or several listed."""
    enable_plugin("protects")
    with app.test_request_context("/admin/salon/clients/ann@example.com"):
        row = db.session().get(Tenant, tenant.tenant_id)
        user = db.session().get(User, owner.user_id)
        assert protection.audit_view(row, user, "client", ["ann@example.com"])
        assert protection.audit_view(row, user, "client", ["a@x.org", "b@x.org"], listing="clients")
        with pytest.raises(ValueError):
            protection.audit_view(row, user, "nonsense", ["x"])
    one, listing = audit_trail(action="client.viewed")
    # The trail names clients by pseudonym; the side table says who each stands for.
    assert one.subject.startswith("client:person:") and one.subject_email == "ann@example.com"
    assert listing.subject == "clients" and listing.details["count"] == 2
    named = [listing.people.get(name, name) for name in listing.details["clients"]]
    assert [name.removeprefix("client:") for name in named] == ["a@x.org", "b@x.org"]


# --- client fields encrypted at rest -------------------------------------------------------------


def test_phone_and_notes_are_encrypted_at_rest_and_read_in_clear_everywhere(
    app, tenant, client, owner, enable_plugin, outbox, plugin_context_for
):
    Protects.asked = DataProtection(encrypt_client_fields=True)
    enable_plugin("protects")
    enable_plugin("witness")
    with db.engine_of(app).begin() as connection:  # so that the provider is mailed the details
        connection.execute(
            text("UPDATE providers SET email = 'ana@example.com' WHERE id = :id"),
            {"id": tenant.provider_id},
        )
    booking = book(client)
    assert_nothing_in_clear(app)
    assert booking["client"]["phone"] == PHONE and booking["client"]["notes"] == NOTES
    assert client.get(booking)["client"] == {
        "name": "Ann",
        "email": "ann@example.com",
        "phone": PHONE,
        "notes": NOTES,
    }
    assert Witness.phones == [PHONE]
    [notice] = [mail for mail in outbox() if mail.to == "ana@example.com"]
    assert PHONE in notice.text and "Allergic to latex." in notice.text
    page = owner.pages.get(f"/admin/salon/bookings/{booking['reference']}")
    assert PHONE in page.text and "Allergic to latex." in page.text
    staff_view = owner.api.get(f"bookings/{booking['reference']}").get_json()
    assert staff_view["client"]["phone"] == PHONE and staff_view["client"]["notes"] == NOTES
    with plugin_context_for("witness") as ctx:
        [info] = ctx.data.client_bookings("ann@example.com")
        assert info.client_phone == PHONE

    # Changes to the booking keep the fields encrypted, and readable.
    moved = client.reschedule(booking, f"{DAY}T15:00:00+01:00")
    assert moved["client"]["phone"] == PHONE
    assert client.cancel(moved)["client"]["notes"] == NOTES
    assert_nothing_in_clear(app)
    assert client.stored(booking).client_phone == PHONE


def test_rows_written_before_are_encrypted_when_protection_is_asked(
    app, tenant, client, make_client, enable_plugin, disable_plugin, run_schedule, monkeypatch
):
    monkeypatch.setattr(protection, "SWEEP_BATCH", 1)
    monkeypatch.setattr(protection, "SWEEP_BATCHES_AT_CHANGE", 2)
    monkeypatch.setattr(protection, "SWEEP_BATCHES_PER_TICK", 1)
    old = [book(make_client(name), hour) for name, hour in (("Ann", "10:00"), ("Bob", "11:00"))]
    old.append(book(make_client("Cy"), "12:00", phone=None))
    old.append(book(make_client("Di"), "13:00", phone=None, notes=None))
    assert [phone for _, phone, _ in dump(app)] == [PHONE, PHONE, None, None]
    enable_plugin("protects")
    # Right after the change, a bounded slice (2 rows of 1): the ticks carry on.
    stored = dump(app)
    assert all(protection.is_encrypted(phone) for _, phone, _ in stored[:2])
    assert stored[2][2] == NOTES
    run_schedule()
    assert_nothing_in_clear(app)
    assert dump(app)[3] == (old[3]["reference"], None, None)
    assert [client.get(booking)["client"]["phone"] for booking in old[:2]] == [PHONE, PHONE]
    assert client.get(old[2])["client"]["notes"] == NOTES

    # A plaintext row that slipped in (a write racing the change) is found by the next tick.
    with db.engine_of(app).begin() as connection:
        connection.execute(
            text("UPDATE bookings SET client_notes = 'late' WHERE reference = :reference"),
            {"reference": old[3]["reference"]},
        )
    run_schedule()
    assert_nothing_in_clear(app)

    # Switched off: what is encrypted stays so, and reads in clear; new rows are plain again.
    disable_plugin("protects")
    assert_nothing_in_clear(app)
    assert client.get(old[0])["client"]["phone"] == PHONE
    fresh = book(make_client("Ed"), "14:00")
    assert dump(app)[-1] == (fresh["reference"], PHONE, NOTES)


def mail_dump(app) -> list[str]:
    """The outbox as a database dump shows it: every body and calendar file, no ORM, no key."""
    with db.engine_of(app).connect() as connection:
        rows = connection.execute(
            text("SELECT text_body, html_body, ics FROM outbox_messages ORDER BY id")
        )
        return [value for row in rows for value in row if value is not None]


def test_mail_copying_the_fields_is_encrypted_at_rest_too(
    app, tenant, make_client, enable_plugin, outbox
):
    """A provider's notice names the client's phone and notes: queued before protection was
    asked, or after, a dump of the outbox shows neither; the mail still goes out in clear."""
    with db.engine_of(app).begin() as connection:  # so that the provider is mailed the details
        connection.execute(
            text("UPDATE providers SET email = 'ana@example.com' WHERE id = :id"),
            {"id": tenant.provider_id},
        )
    book(make_client("Ann"), "10:00")
    assert any(PHONE in value for value in mail_dump(app))
    Protects.asked = DataProtection(encrypt_client_fields=True)
    enable_plugin("protects")
    book(make_client("Bob"), "11:00")
    stored = mail_dump(app)
    assert stored and all(value.startswith(protection.ENCRYPTED_PREFIX) for value in stored)
    assert not any(PHONE in value or "latex" in value for value in stored)
    notices = [mail for mail in outbox() if mail.to == "ana@example.com"]
    assert len(notices) == 2 and all(PHONE in mail.text for mail in notices)
    with db.engine_of(app).connect() as connection:  # nothing failed to go out of them
        errors = connection.execute(text("SELECT last_error FROM outbox_messages")).scalars()
        assert [error for error in errors if error] == []


def test_a_placeholder_not_yet_composed_is_encrypted_at_rest_too(
    app, tenant, make_client, enable_plugin, monkeypatch
):
    """The placeholder a booking leaves in the outbox is written by a plain INSERT, not the
    ORM's flush: under protection its mail columns are sealed all the same."""
    from bookwell.core.booking import lifecycle

    Protects.asked = DataProtection(encrypt_client_fields=True)
    enable_plugin("protects")
    # Left as the booking wrote it: the request's own compose does not run.
    monkeypatch.setattr(lifecycle.mailing, "compose_after_commit", lambda *_args: None)
    book(make_client("Ann"), "10:00")
    with db.engine_of(app).connect() as connection:
        rows = connection.execute(
            text("SELECT text_body, compose_event FROM outbox_messages ORDER BY id")
        ).all()
    assert [event for _, event in rows] == ["confirmed"]
    assert all(body.startswith(protection.ENCRYPTED_PREFIX) for body, _ in rows)


def test_encrypted_fields_stay_readable_across_a_key_rotation(
    app, tenant, client, enable_plugin, bookwell_cli, make_app
):
    enable_plugin("protects")
    booking = book(client)
    rotated = bookwell_cli("keys", "rotate", settings={"ENCRYPTION_KEY": "new,test-encryption-key"})
    assert rotated.exit_code == 0, rotated.output
    assert_nothing_in_clear(app)
    # The old key dropped: only the new one is left to open the tenant's key.
    after = make_app(plugins=[Protects, Witness], ENCRYPTION_KEY="new")
    answer = after.test_client().get(
        f"/api/v1/tenants/salon/bookings/{booking['reference']}",
        query_string={"token": booking["manage_token"]},
    )
    assert answer.status_code == 200
    assert answer.get_json()["client"]["phone"] == PHONE


def test_one_tenant_key_cannot_read_another_tenants_fields(
    app, tenant, client, second_business, second_client, enable_plugin
):
    enable_plugin("protects")
    enable_plugin("protects", business=second_business)
    ours = book(client)
    theirs = book(second_client, phone="+44 20 7946 0000", notes="Spa notes")
    with db.engine_of(app).connect() as connection:
        [(stolen,)] = connection.execute(
            text("SELECT client_phone FROM bookings WHERE reference = :reference"),
            {"reference": ours["reference"]},
        )
    # A phone of the salon's copied into the spa's row: the spa's key must not open it. (A
    # transaction of its own: one that read first could not write on SQLite once the app's
    # scheduled work wrote meanwhile.)
    with db.engine_of(app).begin() as connection:
        connection.execute(
            text("UPDATE bookings SET client_phone = :value WHERE reference = :reference"),
            {"value": stolen, "reference": theirs["reference"]},
        )
    with app.app_context():
        with pytest.raises(protection.ClientFieldUnreadable):
            protection.decrypt_field(app, second_business.tenant_id, stolen)
        assert protection.decrypt_field(app, tenant.tenant_id, stolen) == PHONE
    answer = second_client.http.get(
        f"/api/v1/tenants/spa/bookings/{theirs['reference']}",
        query_string={"token": theirs["manage_token"]},
    )
    assert answer.status_code == 500 and PHONE not in answer.text
    assert client.get(ours)["client"]["phone"] == PHONE


def test_a_typed_value_cannot_pass_for_an_encrypted_one(app, tenant, client):
    """The prefix starts with a control character that typed text may not hold."""
    response = client.post(
        service_id=tenant.service_id,
        provider_id=tenant.provider_id,
        start=f"{DAY}T10:00:00+01:00",
        client={"name": "Ann", "email": "ann@example.com", "notes": protection.ENCRYPTED_PREFIX},
    )
    assert response.status_code == 422
    assert dump(app) == []
