"""``ctx.grants``: time-limited permissions a plugin records, and core's checks consulting them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bookwell.core.testing import create_user

PLUGIN = "reminders"  # any installed plugin: grants are recorded in its name


@pytest.fixture
def grants_of(plugin_context_for):
    """``with grants_of() as grants:`` ctx.grants of PLUGIN at ``tenant``, at the clock's now."""

    def open_grants(business=None):
        return _Grants(plugin_context_for(PLUGIN, business))

    return open_grants


def plugin_ctx(grants_of):
    """The whole context behind ``grants_of()``."""
    return grants_of()._manager


class _Grants:
    def __init__(self, manager):
        self._manager = manager

    def __enter__(self):
        return self._manager.__enter__().grants

    def __exit__(self, *exc):
        return self._manager.__exit__(*exc)


def test_a_grant_opens_a_page_the_role_lacks_until_it_expires(
    grants_of, receptionist, owner, clock, audit_trail
):
    assert receptionist.pages.get("/admin/salon/services").status_code == 403
    with grants_of() as grants:
        grant = grants.give(
            permission="catalogue.manage",
            hours=2,
            reason="Covering for the manager",
            user_id=receptionist.user_id,
            granted_by=owner.user_id,
        )
    assert grant.id > 0 and grant.expires_at == clock() + timedelta(hours=2)
    assert receptionist.pages.get("/admin/salon/services").status_code == 200
    clock.advance(hours=1, minutes=59)
    receptionist.sign_in_again()  # the sessions' idle timeout is shorter than the grant
    assert receptionist.pages.get("/admin/salon/services").status_code == 200
    clock.advance(minutes=1)
    assert receptionist.pages.get("/admin/salon/services").status_code == 403
    with grants_of() as grants:
        assert grants.active() == []
        assert [old.id for old in grants.history()] == [grant.id]

    [entry] = audit_trail(action="access.granted")
    assert entry.subject == f"grant:{grant.id}"
    assert entry.actor == f"user:{owner.user_id}"
    assert entry.details == {
        "plugin": PLUGIN,
        "grantee": f"user:{receptionist.user_id}",
        "permission": "catalogue.manage",
        "subject": None,
        "reason": "Covering for the manager",
        "expires_at": grant.expires_at.isoformat(timespec="microseconds"),
    }


def test_revoking_ends_a_grant_at_once_and_is_audited(grants_of, receptionist, owner, audit_trail):
    with grants_of() as grants:
        grant = grants.give(
            permission="catalogue.manage", hours=72, reason="Inventory", role="receptionist"
        )
    assert receptionist.pages.get("/admin/salon/services").status_code == 200
    with grants_of() as grants:
        assert [active.id for active in grants.active(role="receptionist")] == [grant.id]
        assert grants.active(user_id=receptionist.user_id) == []  # given to the role
        assert grants.revoke(grant.id, revoked_by=owner.user_id) is True
        assert grants.revoke(grant.id) is False  # already ended
        assert grants.revoke(grant.id + 1000) is False
        assert grants.active() == []
        [ended] = grants.history()
    assert ended.revoked_by == owner.user_id and ended.revoked_at is not None
    assert receptionist.pages.get("/admin/salon/services").status_code == 403
    [entry] = audit_trail(action="access.revoked")
    assert entry.actor == f"user:{owner.user_id}"
    assert entry.details["grantee"] == "role:receptionist"
    assert entry.details["reason"] == "Inventory"


def test_a_grant_of_one_business_never_helps_in_another(
    grants_of, staff_login, second_business, app, clock
):
    salon_receptionist = staff_login("receptionist")
    spa_receptionist = staff_login("receptionist", business=second_business)
    with grants_of() as grants:
        grants.give(permission="catalogue.manage", hours=1, reason="Cover", role="receptionist")
        grants.give(
            permission="staff.manage",
            hours=1,
            reason="Cover",
            user_id=salon_receptionist.user_id,
        )
    assert salon_receptionist.pages.get("/admin/salon/services").status_code == 200
    assert salon_receptionist.pages.get("/admin/salon/staff").status_code == 200
    assert spa_receptionist.pages.get("/admin/spa/services").status_code == 403
    assert spa_receptionist.pages.get("/admin/spa/staff").status_code == 403
    # Nor may a plugin give a grant to another business's account, nor revoke another's grant.
    with grants_of(second_business) as spa_grants:
        with pytest.raises(ValueError, match="staff account of this business"):
            spa_grants.give(
                permission="catalogue.manage",
                hours=1,
                reason="Cover",
                user_id=salon_receptionist.user_id,
            )
        assert spa_grants.active() == []
        with grants_of() as salon_grants:
            for grant in salon_grants.active():
                assert spa_grants.revoke(grant.id) is False
    assert salon_receptionist.pages.get("/admin/salon/services").status_code == 200


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"hours": 0}, "hours"),
        ({"hours": -1}, "hours"),
        ({"hours": 72.01}, "hours"),
        ({"hours": float("nan")}, "hours"),
        ({"hours": True}, "hours"),
        ({"reason": "  "}, "reason"),
        ({"permission": "bookings.everything"}, "permissions"),
        ({"permission": None}, "permissions"),
        ({"role": "receptionist"}, "exactly one"),  # and user_id
        ({"user_id": None}, "exactly one"),
        ({"user_id": None, "role": "client"}, "role"),
        ({"user_id": None, "role": "root"}, "role"),
        ({"subject": "booking:ABC"}, "subject"),
        ({"subject": "client:"}, "subject"),
        ({"granted_by": 99999}, "account"),
    ],
)
def test_bad_grants_are_refused_and_nothing_is_recorded(
    grants_of, receptionist, audit_trail, arguments, problem
):
    given = {
        "permission": "catalogue.manage",
        "hours": 1,
        "reason": "Cover",
        "user_id": receptionist.user_id,
        **arguments,
    }
    with grants_of() as grants:
        with pytest.raises(ValueError, match=problem):
            grants.give(**given)
        assert grants.history() == []
    assert audit_trail(action="access.granted") == []


def test_a_client_account_is_never_a_grantee(grants_of, app, tenant, clock):
    with app.app_context():
        client_account = create_user(
            app,
            tenant_id=tenant.tenant_id,
            email="patient@example.com",
            role="client",
            password="correct horse battery",
            now=clock(),
            actor="tests",
        )
    with grants_of() as grants, pytest.raises(ValueError, match="staff account"):
        grants.give(permission="bookings.read", hours=1, reason="No", user_id=client_account.id)


def test_a_subject_is_case_folded_and_a_dry_run_records_nothing(
    grants_of, plugin_context_for, receptionist, app, tenant
):
    from bookwell.hooks.pages import plugin_context

    with grants_of() as grants:
        grant = grants.give(
            permission="bookings.read",
            hours=1,
            reason="Emergency",
            user_id=receptionist.user_id,
            subject="client:Ann@Example.COM",
        )
    assert grant.subject == "client:ann@example.com"
    with plugin_context_for(PLUGIN):
        dry = plugin_context(tenant.slug, dry_run=True).grants
        preview = dry.give(
            permission="bookings.read", hours=1, reason="Preview", role="receptionist"
        )
        assert preview.id == 0
        assert dry.revoke(grant.id) is True  # it would
        assert [kept.id for kept in dry.active()] == [grant.id]
        assert len(dry.history()) == 1


def test_support_contexts_have_no_grants(app, clock):
    from bookwell.core.access import support

    with app.app_context():
        ctx = support.context(app, clock())
        assert ctx.for_plugin(PLUGIN).grants is None


def test_the_guides_example_gives_revokes_and_lists(grants_of, staff_login, owner, audit_trail):
    """docs/plugins.md, "Time-limited grants: ctx.grants": its example as written."""
    from types import SimpleNamespace

    from guide_examples import guide_example

    member = staff_login("receptionist")
    with plugin_ctx(grants_of) as ctx:
        example = guide_example(
            "Time-limited grants: `ctx.grants`",
            "grant = ctx.grants.give(",
            ctx=ctx,
            page=SimpleNamespace(user=SimpleNamespace(id=member.user_id)),
            email="Ann@Example.com",
            owner_id=owner.user_id,
        )
    assert example.grant.subject == "client:ann@example.com"
    assert example.grant.user_id == member.user_id
    assert [entry.action for entry in audit_trail() if entry.action.startswith("access.")] == [
        "access.granted",
        "access.revoked",
    ]
