"""The plugin guide's examples that no feature test runs, run here as the guide says they work:
each is loaded as a plugin (alone: ``LOAD_ENTRY_POINTS`` off, so an example named like an
installed package stands in for it), switched on for a business, and driven through the doors a
business and its clients use: the API, the login, the staff pages, the schedule. Where an
example is a fragment, the test adds only what the guide leaves out (imports, a manifest, the
template it names). ``tests/test_docs.py`` checks that every example has such a test."""

from __future__ import annotations

import base64
import importlib.resources
import sys
from datetime import UTC, datetime, timedelta

import pytest
from guide_examples import GUIDE, guide_block, guide_example, guide_package

from bookwell.core.context import make_context
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant
from bookwell.core.testing import (
    STAFF_PASSWORD,
    InvalidSettings,
    PluginConflict,
    create_user,
    host_of,
    page_login,
)
from bookwell.hooks import Manifest, Setting, hookimpl

LOGINS = "Logins: lockouts and restricted scopes"


def manifest(name: str) -> Manifest:
    """What a fragment of the guide leaves out."""
    return Manifest(name, name.title(), "From the guide.", "0.1", "Examples", "tests")


@pytest.fixture
def bookwell_plugins() -> list:
    return []


@pytest.fixture
def app(make_app, bookwell_plugins):
    """The kit's app, with the example alone (tests/conftest.py's has no plugins to add)."""
    return make_app(plugins=bookwell_plugins, LOAD_ENTRY_POINTS=False)


@pytest.fixture
def client(make_client):
    """Ann, the kit's client of ``tenant`` (tests/conftest.py's ``client`` is Flask's)."""
    return make_client()


def log_in(app, email, password=STAFF_PASSWORD, slug="salon"):
    return app.test_client().post(
        f"/api/v1/tenants/{slug}/auth/login", json={"email": email, "password": password}
    )


def account(app, tenant, clock, role="owner", email=None) -> int:
    with app.app_context():
        return create_user(
            app,
            tenant_id=tenant.tenant_id,
            email=email or f"{role}@example.com",
            role=role,
            password=STAFF_PASSWORD,
            now=clock(),
        ).id


def context_of(app, tenant, clock, plugin):
    """The context a hook of ``plugin`` gets for ``tenant``, to look at what it kept."""
    with app.app_context():
        return make_context(db.session().get(Tenant, tenant.tenant_id), clock()).for_plugin(plugin)


# --- The manifest and settings: the loyalty example's manifest ----------------------------------


class TestTheLoyaltyManifest:
    @pytest.fixture
    def bookwell_plugins(self):
        loyalty = guide_example("The manifest and settings", 'name="loyalty"')
        cleanup = guide_example("Files, progress, audit and deleting old bookings", "BATCH = ")
        return [loyalty, cleanup]

    def test_is_the_examples_own(self, bookwell_plugins):
        from bookwell_loyalty import MANIFEST  # examples/bookwell-loyalty, installed

        assert bookwell_plugins[0].MANIFEST == MANIFEST

    def test_bounds_its_settings_and_needs_an_intact_history(self, enable_plugin):
        with pytest.raises(InvalidSettings) as refused:
            enable_plugin("loyalty", visits=0)
        assert set(refused.value.fields) == {"visits"}
        assert enable_plugin("loyalty") == {"visits": 5, "percent": 10}
        with pytest.raises(PluginConflict) as conflict:
            enable_plugin("tidy_history")  # the guide's cleanup example
        assert conflict.value.message == (
            "Loyalty discount needs intact history, which Tidy history breaks."
        )
        # The guide quotes it under "Rules between plugins" for the built-in history cleanup
        # (plugins/history_cleanup/tests check that one against the installed loyalty example).
        said = "Loyalty discount needs intact history, which History cleanup breaks."
        assert f'"{said}"' in " ".join(GUIDE.split())


# --- Reading the tenant's data and sending mail: the reminder ------------------------------------


class TestTheReminder:
    @pytest.fixture
    def bookwell_plugins(self):
        reminder = guide_example(
            "Reading the tenant's data and sending mail",
            "See you tomorrow",
            hookimpl=hookimpl,
            timedelta=timedelta,
            MANIFEST=manifest("reminder"),
        )
        return [reminder]

    def test_mails_each_client_of_the_next_day_once(
        self, client, enable_plugin, run_schedule, outbox, second_business, second_client
    ):
        enable_plugin("reminder")
        today = client.book("2027-03-01T15:00:00+01:00")
        later = client.book("2027-03-03T10:00:00+01:00")
        second_client.book("2027-03-01T15:00:00+01:00")  # the spa has not enabled it
        run_schedule()
        run_schedule()  # runs repeat: `once` keeps it to one message
        (mail,) = outbox(kind="booking.reminder")
        assert (mail.to, mail.subject, mail.booking) == (
            "ann@example.com",
            "See you tomorrow",
            today["reference"],
        )
        assert mail.text.startswith("Hello Ann, ...")
        run_schedule(at="2027-03-02T11:00:00+01:00")
        assert [m.booking for m in outbox(kind="booking.reminder")] == [
            today["reference"],
            later["reference"],
        ]
        assert outbox(business=second_business, kind="booking.reminder") == []


# --- Tables and migrations: the visit notes ------------------------------------------------------


class TestTheVisitNotes:
    """The guide's ``migrations`` hook and its table's example, as one plugin named
    ``visit_notes``: its migrations are the installed test package's, whose ``env.py`` is the
    one the guide shows."""

    @pytest.fixture
    def bookwell_plugins(self):
        notes = guide_example(
            "Tables and migrations",
            "ctx.tables.insert",
            ("Tables and migrations", "def migrations"),
            hookimpl=hookimpl,
            MANIFEST=manifest("visit_notes"),
        )
        return [notes]

    def test_env_py_is_the_guides(self):
        shown = guide_block("Tables and migrations", "run_migrations()")
        env = importlib.resources.files("bookwell_visit_notes") / "migrations" / "env.py"
        assert env.read_text().endswith(shown)

    def test_an_event_writes_the_businesss_rows_of_its_table(
        self, app, bookwell_plugins, client, enable_plugin, tenant, second_business, clock
    ):
        (notes,) = bookwell_plugins
        assert notes.migrations() == "bookwell_visit_notes:migrations"
        assert host_of(app).installed["visit_notes"].status == "ok"
        enable_plugin("visit_notes")
        enable_plugin("visit_notes", business=second_business)
        booking = client.book("2027-03-02T10:00:00+01:00")

        salon = context_of(app, tenant, clock, "visit_notes")
        (note,) = notes.notes_of(salon, booking["reference"])
        assert note["text"] == "Booked." and note["tenant_id"] == tenant.tenant_id
        written = note["written_at"]  # SQLite keeps no zone: UTC, as it was given
        assert (written if written.tzinfo else written.replace(tzinfo=UTC)) == clock()
        spa = context_of(app, second_business, clock, "visit_notes")
        assert notes.notes_of(spa, booking["reference"]) == []


# --- Files, progress, audit: the plugin's own folder ---------------------------------------------


class TestTheFilesFolder:
    @pytest.fixture
    def bookwell_plugins(self):
        last_run = guide_example(
            "Files, progress, audit and deleting old bookings",
            "last-run.txt",
            hookimpl=hookimpl,
            MANIFEST=manifest("last_run"),
        )
        return [last_run]

    def test_scheduled_work_writes_in_its_folder_for_the_business(
        self, tenant, second_business, enable_plugin, run_schedule, clock, tmp_path
    ):
        enable_plugin("last_run")
        run_schedule(at="2027-03-02T06:00:00+01:00")
        files = tmp_path / "instance" / "files" / "last_run"
        written = (files / "salon" / "last-run.txt").read_text()
        assert datetime.fromisoformat(written) == clock()
        assert [folder.name for folder in files.iterdir()] == ["salon"]


# --- Logins: the lockout and its command ---------------------------------------------------------


def lockout_plugin():
    """The lockout of "A lockout", with the command "Commands for operators" adds to it."""
    return guide_example(
        LOGINS, 'name="lockout"', ("Commands for operators", "def unlock(slug, email)")
    )


class TestTheLockout:
    @pytest.fixture
    def bookwell_plugins(self):
        return [lockout_plugin()]

    @pytest.fixture
    def owner_id(self, app, tenant, clock, enable_plugin):
        enable_plugin("lockout", attempts=3, minutes=15)
        return account(app, tenant, clock)

    def test_after_n_wrong_passwords_it_answers_locked_whatever_the_password(
        self, app, owner_id, clock, audit_trail
    ):
        for typed in ("owner@example.com", " Owner@Example.com", "OWNER@example.com "):
            wrong = log_in(app, typed, "not the password")
            assert (wrong.status_code, wrong.json["error"]["code"]) == (401, "invalid_credentials")
        right, wrong = log_in(app, "owner@example.com"), log_in(app, "owner@example.com", "nope")
        for answer in (right, wrong):
            assert answer.status_code == 401 and "token" not in answer.json
            error = answer.json["error"]
            assert error["code"] == "locked"
            assert error["details"] == {"locked_until": "2027-03-01T08:15:00+00:00"}
            assert error["refusals"][0]["plugin"] == "lockout"
            assert error["refusals"][0]["details"] == error["details"]
        assert right.get_data() == wrong.get_data()  # nothing tells the right password apart
        (locked,) = audit_trail(action="plugin.lockout.locked")
        assert locked.subject_email == "owner@example.com"  # the subject names a pseudonym
        assert datetime.fromisoformat(locked.details["until"]) == clock() + timedelta(minutes=15)

        clock.advance(minutes=14)
        assert log_in(app, "owner@example.com").json["error"]["code"] == "locked"
        clock.advance(minutes=1)  # the lock follows ctx.now
        assert log_in(app, "owner@example.com").status_code == 200

    def test_an_unknown_address_locks_exactly_like_a_real_one(self, app, owner_id):
        for _ in range(3):
            assert log_in(app, "nobody@example.com").json["error"]["code"] == (
                "invalid_credentials"
            )
        unknown = log_in(app, "nobody@example.com")
        for _ in range(3):
            log_in(app, "owner@example.com", "not the password")
        known = log_in(app, "owner@example.com", "not the password")
        assert unknown.status_code == known.status_code == 401
        assert unknown.get_data() == known.get_data()

    def test_a_login_that_gets_through_clears_the_count(self, app, owner_id):
        for _ in range(2):
            for _ in range(2):
                log_in(app, "owner@example.com", "not the password")
            assert log_in(app, "owner@example.com").status_code == 200


# --- Logins: the authenticator's restricted scope ------------------------------------------------


class TestTheAuthenticator:
    @pytest.fixture
    def bookwell_plugins(self):
        return [guide_example(LOGINS, 'name="authenticator"')]

    @pytest.fixture
    def staff(self, app, tenant, clock, enable_plugin):
        enable_plugin("authenticator")  # required for the owner only, by default
        return {role: account(app, tenant, clock, role) for role in ("owner", "receptionist")}

    def test_an_owner_without_one_is_let_in_only_to_enrol(self, app, tenant, staff, clock):
        restricted = log_in(app, "owner@example.com")
        assert restricted.status_code == 200
        answer = restricted.json
        assert (answer["scope"], answer["code"], answer["role"]) == (
            "enroll_totp",
            "otp_enrollment_required",
            "owner",
        )
        assert answer["message"] == "Set up your authenticator app before you continue."
        assert answer["token"] and answer["expires_at"]
        bearer = {"Authorization": f"Bearer {answer['token']}"}
        http = app.test_client()

        elsewhere = http.get("/api/v1/tenants/salon/plugins", headers=bearer)
        assert elsewhere.status_code == 403
        assert elsewhere.json["error"]["code"] == "otp_enrollment_required"
        enrolment = "/api/v1/tenants/salon/authenticator/enrolment"
        assert http.post(enrolment).status_code == 401  # no bearer at all
        enrolled = http.post(enrolment, headers=bearer)
        assert enrolled.status_code == 200 and enrolled.json["status"] == "enrolled"
        seed = base64.b32decode(enrolled.json["seed"])
        assert len(seed) == 20

        ctx = context_of(app, tenant, clock, "authenticator")
        kept = ctx.store.get(f"seed:{staff['owner']}")
        assert enrolled.json["seed"] not in kept and ctx.secrets.decrypt(kept) == seed
        full = log_in(app, "owner@example.com").json
        assert full["scope"] == "tenant:salon" and "code" not in full

    def test_a_browser_is_let_in_only_to_its_enrolment_page(self, app, staff):
        answer, browser = page_login(app, "owner@example.com")
        assert answer.status_code == 303
        assert answer.location == "/admin/salon/authenticator/"
        page = browser.get(answer.location)
        assert page.status_code == 200 and page.text.startswith("Scan the code")
        assert browser.get("/admin/salon/").location == "/admin/salon/authenticator/"

    def test_other_roles_log_in_as_usual(self, app, staff):
        answer = log_in(app, "receptionist@example.com")
        assert answer.status_code == 200 and answer.json["scope"] == "tenant:salon"


# --- Routes and templates: the staff page --------------------------------------------------------

STAFF_TEMPLATE = """{% extends "admin/layout.html" %}
{% block content %}
<h1>Gift cards</h1>
<form method="post">{{ form.csrf_token }}<button>Save</button></form>
{% endblock %}
"""


class TestTheStaffPage:
    @pytest.fixture
    def bookwell_plugins(self, tmp_path, monkeypatch):
        """The example with the template it names, as files: its blueprint finds its
        templates beside its module."""
        monkeypatch.syspath_prepend(str(tmp_path / "src"))
        code = guide_block("Routes and templates", '"gift_cards_admin"')
        code += "\nfrom bookwell.hooks import Manifest\n"
        code += "MANIFEST = Manifest('gift_cards', 'Gift cards', 'Sells them.', '0.1', 'x', 'x')\n"
        module = guide_package(
            tmp_path / "src",
            "guide_staff_page",
            code,
            {"templates/gift_cards/manage.html": STAFF_TEMPLATE},
        )
        yield [module]
        sys.modules.pop(module.__name__, None)

    PAGE = "/admin/salon/gift_cards/"

    def test_staff_see_it_in_the_menu_and_only_the_owner_changes_anything(
        self, app, tenant, enable_plugin, owner, receptionist
    ):
        enable_plugin("gift_cards")
        for member in (owner, receptionist):
            page = member.pages.get(self.PAGE)
            assert page.status_code == 200
            assert "<h1>Gift cards</h1>" in page.text
            assert f'<a href="{self.PAGE}">Gift cards</a>' in page.text  # staff_menu
        assert owner.submit(self.PAGE).status_code == 200
        assert receptionist.submit(self.PAGE).status_code == 403
        assert owner.pages.post(self.PAGE, data={}).status_code == 400  # no CSRF token

    def test_nobody_signed_in_is_sent_to_log_in_and_a_business_without_it_gets_404(
        self, app, tenant, second_business, enable_plugin, staff_login
    ):
        enable_plugin("gift_cards")
        anonymous = app.test_client().get(self.PAGE)
        assert anonymous.status_code == 302 and "/admin/salon/login" in anonymous.location
        spa = staff_login("owner", business=second_business, email="spa@example.com")
        assert spa.pages.get("/admin/spa/gift_cards/").status_code == 404


# --- Hooks: after_outcome ------------------------------------------------------------------------


class TestTheNoShowNote:
    @pytest.fixture
    def bookwell_plugins(self):
        noted = guide_example(
            "Hooks", "no_show_noted", hookimpl=hookimpl, MANIFEST=manifest("no_shows")
        )
        return [noted]

    def test_a_no_show_is_noted_in_the_audit_trail_and_a_visit_is_not(
        self, client, enable_plugin, clock, audit_trail
    ):
        enable_plugin("no_shows")
        missed = client.book("2027-03-01T10:00:00+01:00")
        client.visit("2027-03-01T11:00:00+01:00")  # completed
        clock.set(datetime(2027, 3, 1, 12, 0, tzinfo=UTC))
        client.complete(missed, "no-show")
        (noted,) = audit_trail(action="plugin.no_shows.no_show_noted")
        assert noted.subject == f"booking:{missed['reference']}"
        # The address by pseudonym; the trail keeps it beside the entry, where it can be erased.
        assert noted.people == {noted.details["client"]: "ann@example.com"}


# --- Hooks: cancellation_refund -----------------------------------------------------------------


class TestTheRefundRule:
    @pytest.fixture
    def bookwell_plugins(self):
        rule = guide_example(
            "Hooks",
            'percent = 100 if in_time else settings["late_percent"]',
            hookimpl=hookimpl,
            timedelta=timedelta,
            MANIFEST=Manifest(
                "refunds",
                "Refunds",
                "From the guide.",
                "0.1",
                "Examples",
                "tests",
                settings=(
                    Setting("hours", "int", 24, "Hours"),
                    Setting("late_percent", "int", 50, "Late refund (%)"),
                ),
            ),
        )
        return [rule]

    def test_a_late_cancellation_of_a_prepaid_booking_is_due_its_share(
        self, client, enable_plugin, clock, owner, tenant
    ):
        enable_plugin("refunds", late_percent=40)
        made = owner.api.post(
            "bookings",
            json={
                "service_id": tenant.service_id,
                "provider_id": tenant.provider_id,
                "start": "2027-03-01T15:00:00+01:00",  # six hours ahead: late already
                "client": {"name": "Ann", "email": "ann@example.com"},
                "prepaid_cents": 2999,
            },
        )
        assert made.status_code == 201, made.json
        cancelled = owner.api.post(f"bookings/{made.json['reference']}/cancel", json={})
        assert cancelled.json["refund_due_cents"] == 1199  # 2999 x 40 / 100, rounded down
        free = owner.api.post(
            "bookings",
            json={
                "service_id": tenant.service_id,
                "provider_id": tenant.provider_id,
                "start": "2027-03-05T15:00:00+01:00",
                "client": {"name": "Ann", "email": "ann@example.com"},
            },
        )
        nothing_paid = owner.api.post(f"bookings/{free.json['reference']}/cancel", json={})
        assert nothing_paid.json["refund_due_cents"] is None  # not asked: nothing prepaid


# --- Hooks: closed_client_actions ---------------------------------------------------------------


class TestTheClosedActions:
    @pytest.fixture
    def bookwell_plugins(self):
        from bookwell.hooks import Refusal

        def before_cancel(ctx, settings, reason):
            late = ctx.booking.start - ctx.now < timedelta(hours=24)
            return Refusal("Too late to cancel online: call us.", "too_late") if late else None

        closing = guide_example(
            "Hooks",
            'closed["cancel"] = refusal.message',
            hookimpl=hookimpl,
            MANIFEST=manifest("late_cancels"),
        )
        closing.before_cancel = hookimpl(before_cancel)
        return [closing]

    def test_the_manage_page_says_so_instead_of_the_button(self, client, enable_plugin, clock):
        enable_plugin("late_cancels")
        booking = client.book("2027-03-01T15:00:00+01:00")  # six hours ahead
        page = client.http.get(
            f"/book/salon/manage/{booking['reference']}",
            query_string={"token": booking["manage_token"]},
        )
        assert "Too late to cancel online: call us." in page.text
        assert "Cancel the booking" not in page.text
        assert "Change the time" in page.text
