"""The test kit Bookwell ships to plugin authors (``bookwell.core.testing``): staff of each role
signed in, a second business, the schedule run at a given time, the outbox and the audit trail;
loaded by pytest wherever Bookwell is installed, with or without a ``pytest_plugins`` line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from bookwell.core.testing import (
    STAFF_PASSWORD,
    AuditRecord,
    Mail,
    StaffMember,
    api_login,
    page_login,
)
from bookwell.hooks import Manifest, Refusal, Setting, hookimpl
from bookwell.hooks.pages import plugin_settings

TUESDAY = "2027-03-02T10:00:00+01:00"


class Nightly:
    """Mails each client of the next day's bookings once, on the schedule."""

    MANIFEST = Manifest(
        "nightly",
        "Nightly",
        "Mails tomorrow's clients.",
        "1.0",
        "tests",
        "tests",
        (Setting("subject", "str", "See you tomorrow", "Subject"),),
    )
    runs: list[tuple[str, datetime, bool]] = []

    @hookimpl
    def on_schedule(ctx, settings):
        Nightly.runs.append((ctx.tenant.slug, ctx.now, ctx.dry_run))
        for booking in ctx.data.bookings(
            starts_from=ctx.now, starts_before=ctx.now + timedelta(days=1)
        ):
            ctx.data.send_mail(
                to=booking.client_email,
                subject=settings["subject"],
                text=f"Hello {booking.client_name}.",
                kind="nightly.reminder",
                booking=booking.reference,
                once=f"nightly:{booking.reference}",
            )


class ClosedOnTuesdays:
    MANIFEST = Manifest("closed_on_tuesdays", "Closed", "No Tuesdays.", "1.0", "tests", "tests")

    @hookimpl
    def before_confirm(ctx):
        if ctx.booking.start.weekday() == 1:
            return Refusal("Closed on Tuesdays.", code="closed", field="start")
        return None


@pytest.fixture
def bookwell_plugins():
    Nightly.runs.clear()
    return [Nightly, ClosedOnTuesdays]


@pytest.fixture
def app(make_app, bookwell_plugins):
    """The kit's own ``app`` (this folder's conftest makes one without the plugins)."""
    return make_app(plugins=bookwell_plugins)


# --- staff -------------------------------------------------------------------------------------


def test_each_role_is_signed_in_to_the_api_and_the_staff_pages(
    owner, manager, staff_member, receptionist
):
    members = (owner, manager, staff_member, receptionist)
    assert [member.role for member in members] == ["owner", "manager", "staff", "receptionist"]
    for member in members:
        assert isinstance(member, StaffMember) and member.business.slug == "salon"
        assert member.api.get("plugins").status_code == 200, member.role
        day = member.pages.get("/admin/salon/")
        assert day.status_code == 200 and "Log out" in day.text, member.role
    # What the roles may do is core's: only the owner switches plugins on.
    assert owner.api.put("plugins/nightly", json={"enabled": True}).status_code == 200
    assert manager.api.put("plugins/nightly", json={"enabled": False}).status_code == 403


def test_a_staff_page_form_is_submitted_with_its_csrf_token(owner, audit_trail):
    switched = owner.submit(
        "/admin/salon/marketplace/switch",
        {"plugin": "nightly", "enabled": "on"},
        form_on="/admin/salon/marketplace",
    )
    assert switched.status_code == 302
    assert [entry.subject for entry in audit_trail(action="plugin.enabled")] == ["plugin:nightly"]
    forged = owner.pages.post("/admin/salon/marketplace/switch", data={"plugin": "nightly"})
    assert forged.status_code in (400, 422)  # the same form without its token
    assert len(audit_trail(action="plugin.disabled")) == 0


def test_staff_of_the_second_business_see_only_theirs(staff_login, second_business, owner):
    spa_owner = staff_login("owner", business=second_business)
    assert spa_owner.email == owner.email and spa_owner.user_id != owner.user_id
    assert staff_login("owner", business=second_business) is spa_owner
    assert spa_owner.api.get("plugins").status_code == 200
    assert spa_owner.api.get("/api/v1/tenants/salon/plugins").status_code in (403, 404)
    assert spa_owner.pages.get("/admin/salon/").status_code in (302, 403, 404)
    assert STAFF_PASSWORD and spa_owner.token != owner.token


def test_logins_answer_as_they_are_for_the_test_to_check(owner, tenant):
    refused = api_login(owner.app, owner.email, "not the password")
    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "invalid_credentials"
    accepted = api_login(owner.app, owner.email, business=tenant)
    assert accepted.status_code == 200 and accepted.json["scope"] == "tenant:salon"
    answer, browser = page_login(owner.app, owner.email, "not the password")
    assert answer.status_code == 401
    assert browser.get("/admin/salon/").status_code == 302  # still to the login page
    answer, browser = page_login(owner.app, owner.email)
    assert answer.status_code == 302 and browser.get("/admin/salon/").status_code == 200


def test_sessions_age_with_the_clock_and_a_member_signs_in_again(owner, clock):
    clock.advance(hours=1)  # past the idle timeout: both sessions have ended
    assert owner.api.get("plugins").status_code == 401
    assert owner.pages.get("/admin/salon/").status_code == 302
    old_token = owner.token
    owner.sign_in_again()
    assert owner.token != old_token
    assert owner.api.get("plugins").status_code == 200
    assert owner.pages.get("/admin/salon/").status_code == 200


# --- the operator's commands, a plugin's context, the database ----------------------------------


def test_bookwell_cli_runs_on_the_tests_app_database(bookwell_cli, tenant, audit_trail):
    done = bookwell_cli("plugins", "enable", "nightly", "--tenant", "salon", "--set", "subject=Hi")
    assert done.exit_code == 0, done.output
    assert [entry.subject for entry in audit_trail(action="plugin.enabled")] == ["plugin:nightly"]
    listed = bookwell_cli("plugins", "list", "--tenant", "salon", "--json")
    assert listed.exit_code == 0, listed.output
    unknown = bookwell_cli("plugins", "enable", "nightly", "--tenant", "nobody")
    assert unknown.exit_code != 0


def test_plugin_context_for_gives_a_plugins_context_and_settings(
    plugin_context_for, enable_plugin, second_business
):
    enable_plugin("nightly", subject="Tomorrow")
    with plugin_context_for("nightly") as ctx:
        assert (ctx.plugin, ctx.tenant.slug, ctx.actor) == ("nightly", "salon", None)
        ctx.store.set("seen", 1)
        assert plugin_settings("salon")["subject"] == "Tomorrow"
    with plugin_context_for("nightly", business=second_business) as spa:
        assert spa.store.get("seen") is None  # the spa's own store
        assert plugin_settings("spa")["subject"] == "See you tomorrow"


def test_the_database_url_works_with_create_engine(app, database_url):
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM tenants")).scalar() == 0
    finally:
        engine.dispose()


# --- a second business ---------------------------------------------------------------------------


def test_a_plugin_on_at_one_business_changes_nothing_at_the_other(
    make_client, second_client, enable_plugin
):
    enable_plugin("closed_on_tuesdays")
    refused = make_client().try_book(TUESDAY)
    assert refused.status_code == 403
    assert refused.json["error"]["refusals"][0]["code"] == "closed"
    assert second_client.email == "ann@example.com"
    assert second_client.book(TUESDAY)["status"] == "confirmed"


# --- the schedule, the outbox, the audit trail --------------------------------------------------


def test_run_schedule_runs_the_plugins_at_the_time_given_and_moves_the_clock(
    make_client, enable_plugin, run_schedule, outbox, clock
):
    enable_plugin("nightly", subject="Tomorrow at the salon")
    booking = make_client().book(TUESDAY)
    reports = run_schedule(at="2027-03-01T18:00:00+01:00")
    assert clock() == datetime.fromisoformat("2027-03-01T18:00:00+01:00")
    assert [(report.tenant, report.plugins) for report in reports] == [("salon", ("nightly",))]
    assert Nightly.runs == [("salon", clock(), False)]
    mail = outbox(kind="nightly.reminder")
    assert mail == [
        Mail(
            to="ann@example.com",
            subject="Tomorrow at the salon",
            text=mail[0].text,
            kind="nightly.reminder",
            html=mail[0].html,
            booking=booking["reference"],
            sent=mail[0].sent,
        )
    ]
    assert mail[0].text.startswith("Hello Ann.")
    run_schedule()  # again, at the same time: sent once
    assert len(outbox(kind="nightly.reminder")) == 1


def test_a_dry_run_changes_nothing(make_client, enable_plugin, run_schedule, outbox):
    enable_plugin("nightly")
    make_client().book(TUESDAY)
    run_schedule(at="2027-03-01T18:00:00+01:00", dry_run=True)
    assert Nightly.runs[-1][2] is True
    assert outbox(kind="nightly.reminder") == []


def test_outbox_and_audit_trail_are_each_one_business(
    make_client, second_business, second_client, enable_plugin, outbox, audit_trail
):
    make_client().book("2027-03-03T10:00:00+01:00")
    enable_plugin("nightly", business=second_business)
    assert {mail.kind for mail in outbox()} == {"booking.confirmed"}
    assert outbox(business=second_business) == []
    trail = audit_trail(business=second_business)
    assert [entry.action for entry in trail] == ["plugin.enabled"]
    assert isinstance(trail[0], AuditRecord) and trail[0].subject == "plugin:nightly"
    assert trail[0].details["new"] == {"subject": "See you tomorrow"}
    assert "plugin.enabled" not in [entry.action for entry in audit_trail()]
    second_client.book("2027-03-03T10:00:00+01:00")
    assert [mail.to for mail in outbox(business=second_business)] == ["ann@example.com"]


def test_run_schedule_wants_an_instant_with_an_offset(run_schedule):
    with pytest.raises(ValueError, match="offset"):
        run_schedule(at="2027-03-01T18:00:00")


# --- how pytest finds the kit ------------------------------------------------------------------

AN_AUTHORS_TESTS = """
from bookwell.core.testing import InvalidSettings, PluginConflict, PluginRequired, create_user


def test_the_kit_is_there(client, owner, second_business, run_schedule, outbox, audit_trail):
    assert client.book("2027-03-02T10:00:00+01:00")["status"] == "confirmed"
    assert owner.api.get("plugins").status_code == 200
    assert second_business.slug == "spa"
    assert [report.tenant for report in run_schedule()] == ["salon", "spa"]
    assert [mail.kind for mail in outbox()] == ["booking.confirmed"]
    assert audit_trail(business=second_business) == []
    assert all((InvalidSettings, PluginConflict, PluginRequired, create_user))
"""


@pytest.mark.parametrize(
    ("conftest_line", "autoload", "passes"),
    [(True, True, True), (False, True, True), (True, False, True), (False, False, False)],
    ids=["with-the-line", "without-it", "autoload-off-with-the-line", "autoload-off-without"],
)
def test_an_authors_tests_find_the_kit(tmp_path, conftest_line, autoload, passes):
    """Registered under the module's own name, the kit's ``pytest11`` entry point and a
    ``pytest_plugins`` line load one plugin, not two clashing ones."""
    tests = tmp_path / "tests"
    tests.mkdir()
    line = 'pytest_plugins = ["bookwell.core.testing"]\n' if conftest_line else ""
    (tests / "conftest.py").write_text(line)
    (tests / "test_author.py").write_text(textwrap.dedent(AN_AUTHORS_TESTS))
    environment = {
        name: value
        for name, value in os.environ.items()
        if name != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
    }
    if not autoload:
        environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if passes:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "1 passed" in run.stdout and "warning" not in run.stdout.lower(), run.stdout
    else:
        assert run.returncode != 0 and "fixture 'client' not found" in run.stdout, run.stdout
