"""People in the audit trail by pseudonym: the format change of core migration 0012, new entries,
and erasure, after which the chain still verifies."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from audit_tampering import tampering
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from bookwell.core import audit, schema
from bookwell.core.access.users import create_user
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, AuditPerson, AuditPersonal
from bookwell.core.testing import (
    POSTGRES_ENV,
    as_tables_owner,
)

T0 = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)


def v1_entry(session, tenant_id, sequence, previous, *, actor, subject, details, ip, at):
    """An entry as the first format wrote it: addresses and IP inside the hash."""
    fields = dict(
        chain=audit.chain_of(tenant_id),
        sequence=sequence,
        at=at,
        actor=actor,
        ip=ip,
        action="booking.created",
        subject=subject,
        details=json.dumps(details, sort_keys=True, separators=(",", ":")),
        previous_hash=previous,
    )
    digest = audit.entry_hash(**fields, hash_format=audit.HASH_FORMAT_V1)
    session.add(AuditEntry(tenant_id=tenant_id, entry_hash=digest, **fields))
    session.flush()
    return digest


def v1_chain(session, tenant_id, count=4):
    previous = audit.GENESIS_HASH
    for number in range(1, count + 1):
        previous = v1_entry(
            session,
            tenant_id,
            number,
            previous,
            actor="client:Ann@Example.com" if number % 2 else "user:1",
            subject=f"client:ann@example.com booking:{number}",
            details={"email": "bob@example.org", "note": f"for ann@example.com #{number}"},
            ip="203.0.113.7",
            at=T0 + timedelta(minutes=number),
        )
    return previous


def migrate(engine, revision):
    with engine.begin() as connection:
        command.upgrade(schema.alembic_config(connection), revision)


def test_migration_0012_converts_first_format_trails_and_marks_the_change(blank_database_url):
    engine = create_engine(blank_database_url)
    migrate(engine, "0011")
    with Session(engine) as session, session.begin():
        # Rows as revision 0011 had them: the ORM's model has columns added since.
        salon, barber = (
            session.execute(
                text(
                    "INSERT INTO tenants (slug, name, timezone, created_at) "
                    "VALUES (:slug, :slug, 'UTC', :now) RETURNING id"
                ),
                {"slug": slug, "now": T0.replace(tzinfo=None)},
            ).scalar_one()
            for slug in ("salon", "barber")
        )
        old_head = v1_chain(session, salon)
        v1_chain(session, barber, 3)
    with tampering(engine) as connection:  # barber's trail was tampered with before the upgrade
        connection.execute(
            text("UPDATE audit_entries SET action = 'x' WHERE tenant_id = :t AND sequence = 2"),
            {"t": barber},
        )
    migrate(engine, "head")

    with Session(engine) as session:
        assert audit.verify(session, salon).ok
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.tenant_id == salon).order_by(AuditEntry.sequence)
        ).all()
        assert len(entries) == 5
        stored = " ".join(f"{e.actor} {e.subject} {e.details} {e.ip}" for e in entries)
        assert "example" not in stored.casefold() and "203.0.113.7" not in stored
        assert all(audit.format_of(entry) == audit.HASH_FORMAT for entry in entries)
        people = {p.email: p for p in session.scalars(select(AuditPerson)).all()}
        assert set(people) == {"ann@example.com", "bob@example.org"}  # one per address
        ann = people["ann@example.com"].pseudonym
        assert entries[0].actor == f"client:{ann}"
        assert entries[1].subject == f"client:{ann} booking:2"
        assert json.loads(entries[1].details) == {
            "email": people["bob@example.org"].pseudonym,
            "note": f"for {ann} #2",
        }
        assert [audit.ip_of(session, entry) for entry in entries[:4]] == ["203.0.113.7"] * 4
        acting = session.get(AuditPersonal, entries[0].id)
        assert acting.person_id == people["ann@example.com"].id
        marker = entries[-1]
        assert (marker.action, marker.actor) == (audit.FORMAT_CHANGED, "migration:0012")
        assert json.loads(marker.details) == {
            "previous_format": "bookwell-audit-1",
            "format": "bookwell-audit-2",
            "previous_head_hash": old_head,
            "entries_converted": 4,
        }
        # The tampered trail is left as it was: verify still names the entry.
        broken = audit.verify(session, barber)
        assert not broken.ok and broken.reason == "entry 2 was edited"
        assert session.scalar(
            select(AuditEntry.actor).where(AuditEntry.tenant_id == barber, AuditEntry.sequence == 1)
        ) == ("client:Ann@Example.com")
    if engine.dialect.name == "postgresql":  # the trigger is back on after the rewrite
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text("UPDATE audit_entries SET action = 'y'"))
    engine.dispose()


def test_both_formats_verify_in_one_chain(app, clock, tenant):
    with db.write_transaction(app) as session:
        v1_chain(session, tenant.tenant_id, 3)
    with db.write_transaction(app) as session:
        entry = audit.record(
            session,
            tenant_id=tenant.tenant_id,
            actor="client:ann@example.com",
            ip="198.51.100.2",
            action="booking.cancelled",
            subject="booking:3",
            now=clock(),
        )
        assert entry.sequence == 4 and audit.format_of(entry) == audit.HASH_FORMAT
    with db.write_transaction(app) as session:
        result = audit.verify(session, tenant.tenant_id)
    assert result.ok and result.checked == 4


def test_one_pseudonym_per_address_and_tenant(app, clock, tenant, second_business):
    def write(tenant_id, actor):
        with db.write_transaction(app) as session:
            return audit.record(
                session,
                tenant_id=tenant_id,
                actor=actor,
                ip=None,
                action="booking.created",
                subject="booking:X",
                now=clock(),
            ).actor

    first = write(tenant.tenant_id, "client:ann@example.com")
    again = write(tenant.tenant_id, "client:ANN@Example.COM")
    elsewhere = write(second_business.tenant_id, "client:ann@example.com")
    assert first == again != elsewhere
    assert audit.pseudonyms_in(first) and audit.pseudonyms_in(elsewhere)


def test_an_address_inside_a_path_or_query_is_that_persons_pseudonym(app, clock, tenant):
    """Support's reads record the path they opened: the client's address in it is the client's
    own pseudonym, so erasing the client empties it too (not a "person" named by the path)."""
    with db.write_transaction(app) as session:
        subject = audit.record(
            session,
            tenant_id=tenant.tenant_id,
            actor="user:1",
            ip=None,
            action="booking.created",
            subject="client:ann@example.com",
            now=clock(),
        ).subject
        entry = audit.record(
            session,
            tenant_id=tenant.tenant_id,
            actor="support:1",
            ip=None,
            action="support.access",
            subject="scope:client",
            details={
                "path": "/admin/salon/clients/ann@example.com",
                "query": "?email=ann@example.com&page=2",
            },
            now=clock(),
        )
    ann = subject.removeprefix("client:")
    details = json.loads(entry.details)
    assert details == {
        "path": f"/admin/salon/clients/{ann}",
        "query": f"?email={ann}&page=2",
    }


def erase(app, clock, tenant_id, email):
    with db.write_transaction(app) as session:
        return audit.erase(
            session, tenant_id=tenant_id, email=email, actor="cli", ip=None, now=clock()
        )


def test_erasure_empties_the_personal_data_and_the_chain_still_verifies(
    app, clock, tenant, second_business
):
    for tenant_id in (tenant.tenant_id, second_business.tenant_id):
        with db.write_transaction(app) as session:
            audit.record(
                session,
                tenant_id=tenant_id,
                actor="client:ann@example.com",
                ip="203.0.113.9",
                action="booking.created",
                subject="booking:A",
                details={"contact": "ann@example.com"},
                now=clock(),
            )
            audit.record(
                session,
                tenant_id=tenant_id,
                actor="user:1",
                ip="192.0.2.1",
                action="client.blocked",
                subject="client:ann@example.com",
                now=clock(),
            )
    done = erase(app, clock, tenant.tenant_id, " Ann@Example.com")
    assert len(done.pseudonyms) == 1 and done.ips_erased == 1
    with db.write_transaction(app) as session:
        assert audit.verify(session).ok
        shown = audit.listing(session, tenant.tenant_id)
        person = session.scalars(
            select(AuditPerson).where(AuditPerson.pseudonym == done.pseudonyms[0])
        ).one()
        assert person.email is None and person.erased_at == clock()
        untouched = audit.listing(session, second_business.tenant_id)  # another tenant's wall
    assert [(e.actor_email, e.ip) for e in shown[:2]] == [
        (audit.ERASED, None),
        (None, "192.0.2.1"),  # the staff member's IP is not the client's to erase
    ]
    assert shown[1].subject_email == audit.ERASED
    erased = shown[2]
    assert erased.action == audit.PERSON_ERASED and erased.subject == done.pseudonyms[0]
    assert "example.com" not in json.dumps(erased.as_json())
    assert erased.details == {"ips_erased": 1}
    assert untouched[0].actor_email == "ann@example.com" and untouched[0].ip == "203.0.113.9"
    with pytest.raises(audit.NobodyToErase):
        erase(app, clock, tenant.tenant_id, "ann@example.com")  # nothing left to erase
    # Who comes back later is someone new to the trail: a new pseudonym, not the erased one.
    with db.write_transaction(app) as session:
        later = audit.record(
            session,
            tenant_id=tenant.tenant_id,
            actor="client:ann@example.com",
            ip=None,
            action="booking.created",
            subject="booking:B",
            now=clock(),
        )
    assert done.pseudonyms[0] not in later.actor


def test_a_pseudonym_in_an_actor_keeps_its_prefix_and_an_address_in_text_is_replaced(
    app, clock, tenant
):
    with db.write_transaction(app) as session:
        entry = audit.record(
            session,
            tenant_id=tenant.tenant_id,
            actor="login:bob@example.org",
            ip=None,
            action="login.failed",
            subject="user:bob@example.org",
            details={"reason": "mail bob@example.org. or <x@y.example>", "n": [1, "a@b.c"]},
            now=clock(),
        )
    assert entry.actor.startswith("login:person:")
    bob = entry.actor.removeprefix("login:")
    assert entry.subject == f"user:{bob}"
    details = json.loads(entry.details)
    assert details["reason"].startswith(f"mail {bob}. or <person:")
    assert details["n"][1].startswith("person:")


@pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason="PostgreSQL only")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET action = 'x'",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries CASCADE",
    ],
)
def test_postgresql_refuses_to_change_or_remove_an_entry(app, clock, tenant, statement):
    with db.write_transaction(app) as session:
        audit.record(
            session,
            tenant_id=tenant.tenant_id,
            actor="user:1",
            ip=None,
            action="booking.created",
            subject="booking:A",
            now=clock(),
        )
    # Even the tables' owner is refused by the trigger (the app's own role, when the roles are
    # separate, lacks the privilege already: tests/audit/test_audit_roles.py).
    with pytest.raises(Exception, match="append-only"), as_tables_owner(app) as connection:
        connection.execute(text(statement))
    with db.write_transaction(app) as session:
        assert audit.verify(session, tenant.tenant_id).checked == 1


def test_erasure_reaches_the_entries_of_a_client_account_but_not_of_staff(app, clock, tenant):
    with app.app_context():
        client = create_user(
            app,
            tenant_id=tenant.tenant_id,
            email="dee@example.com",
            role="client",
            password=None,
            now=clock(),
        ).id
        staff = create_user(
            app,
            tenant_id=tenant.tenant_id,
            email="eve@example.com",
            role="staff",
            password=None,
            now=clock(),
        ).id
    for account in (client, staff):
        with db.write_transaction(app) as session:
            audit.record(
                session,
                tenant_id=tenant.tenant_id,
                actor=f"user:{account}",
                ip="203.0.113.50",
                action="booking.viewed",
                subject="booking:A",
                now=clock(),
            )
    done = erase(app, clock, tenant.tenant_id, "Dee@example.com")
    assert done.accounts == (f"user:{client}",) and done.ips_erased == 1
    with pytest.raises(audit.NobodyToErase):
        erase(app, clock, tenant.tenant_id, "eve@example.com")
    with db.write_transaction(app) as session:
        shown = {entry.actor: entry for entry in audit.listing(session, tenant.tenant_id)}
        assert audit.verify(session, tenant.tenant_id).ok
    assert shown[f"user:{client}"].ip is None
    # The account keeps its address in ``users``; the trail shows it erased all the same.
    assert shown[f"user:{client}"].actor_email == audit.ERASED
    assert shown[f"user:{staff}"].ip == "203.0.113.50"
    assert shown[f"user:{staff}"].actor_email == "eve@example.com"
    assert shown["cli"].subject == f"user:{client}" and shown["cli"].details == {"ips_erased": 1}


def test_an_address_with_an_apostrophe_is_one_person_and_erasable(app, clock, tenant):
    with db.write_transaction(app) as session:
        entry = audit.record(
            session,
            tenant_id=tenant.tenant_id,
            actor="client:mary.o'connor@example.com",
            ip="203.0.113.7",
            action="booking.created",
            subject="booking:A",
            details={"note": "quoted 'jo`hn@example.com'"},
            now=clock(),
        )
    assert "mary" not in entry.actor and "connor" not in entry.actor
    assert "jo`hn" not in entry.details and "'person:" in entry.details
    done = erase(app, clock, tenant.tenant_id, "Mary.O'Connor@example.com")
    assert len(done.pseudonyms) == 1 and done.ips_erased == 1
    with pytest.raises(audit.NobodyToErase):  # nobody was filed under the part after the '
        erase(app, clock, tenant.tenant_id, "connor@example.com")


def test_the_ip_of_a_failed_login_goes_with_the_person_it_names(app, clock, tenant):
    """A lockout's actor is nobody signed in: its IP is the person's in the subject, and goes
    when they are erased."""
    with db.write_transaction(app) as session:
        audit.record(
            session,
            tenant_id=tenant.tenant_id,
            actor="anonymous",
            ip="127.0.0.23",
            action="plugin.password_policy.account.locked",
            subject="login:erin@example.com",
            now=clock(),
        )
    done = erase(app, clock, tenant.tenant_id, "erin@example.com")
    assert done.ips_erased == 1
    with db.write_transaction(app) as session:
        [locked, _erased] = audit.listing(session, tenant.tenant_id)
        assert audit.verify(session, tenant.tenant_id).ok
    assert locked.ip is None and locked.subject_email == audit.ERASED
