"""Passwords on the pages: changing one's own (staff, support, clients), staff's and support's
forgotten password, staff invited by e-mail, the "password changed" e-mail, and the rules shown
beside every password field before anyone types (core's and the plugins' ``password_rules``)."""

from __future__ import annotations

import html
import re

import pytest
from client_signups import accounts_on, signed_up
from conftest import STAFF_PASSWORD, add_staff_and_a_rival, csrf_token_of, log_in_staff
from sqlalchemy import select

from bookwell.core.access import passwords, sessions
from bookwell.core.access.users import create_user
from bookwell.core.cli.root import redacted_path
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import ApiKey, AuditEntry, OutboxMessage, User
from bookwell.hooks import Manifest, Refusal, hookimpl

BASE_URL = "https://book.example"
NEW_PASSWORD = "a brand new passphrase"
LENGTH_RULE = "At least 12 characters."
WORD_RULE = "Not the word 'salon'."


class LongPasswords:
    """A small password policy: its rule shown, and enforced."""

    MANIFEST = Manifest("t_long", "Long", "Long passwords.", "1", "security", "tests")

    @hookimpl
    def password_rules(ctx):
        return [LENGTH_RULE]

    @hookimpl
    def before_password_set(ctx, password):
        if len(password) < 12:
            return Refusal("Use at least 12 characters.", code="too_short", field="password")


class NoSalon:
    MANIFEST = Manifest("t_word", "Word", "No salon.", "1", "security", "tests")
    actors: list = []

    @hookimpl
    def password_rules(ctx):
        NoSalon.actors.append(ctx.actor.email if ctx.actor else None)
        return [WORD_RULE]

    @hookimpl
    def before_password_set(ctx, password):
        if "salon" in password.lower():
            return Refusal("Do not use the word 'salon'.", code="salon", field="password")


class BrokenRules:
    MANIFEST = Manifest("t_broken", "Broken", "Fails to say.", "1", "security", "tests")

    @hookimpl
    def password_rules(ctx):
        raise RuntimeError("the rules are lost")


class CrashingPolicy:
    MANIFEST = Manifest("t_crash", "Crash", "Cannot judge.", "1", "security", "tests")

    @hookimpl
    def before_password_set(ctx, password):
        raise RuntimeError("the policy is down")


PLUGINS = [LongPasswords, NoSalon, BrokenRules, CrashingPolicy]


@pytest.fixture
def app(make_app, business, clock):
    app = make_app(
        MAIL_DELIVERY="manual",
        BASE_URL=BASE_URL,
        EXTRA_PLUGINS=PLUGINS,
        SUPPORT_PLUGINS={"t_long": {}},
    )
    add_staff_and_a_rival(app, business, clock(), ("owner", "staff"))
    with app.app_context():
        create_user(
            app,
            tenant_id=None,
            email="help@example.com",
            role="support",
            password=STAFF_PASSWORD,
            now=clock(),
        )
    return app


def enable(app, business, clock, *names):
    with app.app_context():
        for name in names:
            plugin_changes.enable(app, business.tenant_id, name, {}, clock())


def post_form(client, url, data, status=200):
    page = client.get(url)
    assert page.status_code == status, page.text
    return client.post(url, data={"csrf_token": csrf_token_of(page), **data})


def mail_to(app, address, kind=None) -> list[OutboxMessage]:
    with db.fresh_session(app) as session:
        query = select(OutboxMessage).where(OutboxMessage.to_address == address)
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        return list(session.scalars(query.order_by(OutboxMessage.id)))


def link_of(message: OutboxMessage, path: str) -> str:
    found = re.search(
        rf"{re.escape(BASE_URL)}({re.escape(path)}/[A-Za-z0-9_-]+)", message.text_body
    )
    assert found, message.text_body
    return found.group(1)


def actions(app, subject_user_id=None) -> list[str]:
    with db.fresh_session(app) as session:
        query = select(AuditEntry.action).order_by(AuditEntry.id)
        if subject_user_id is not None:
            query = query.where(AuditEntry.subject == f"user:{subject_user_id}")
        return list(session.scalars(query))


def account(app, email, realm_tenant=None) -> User:
    with db.fresh_session(app) as session:
        return session.scalars(select(User).where(User.email == email)).first()


def log_in(client, url, email, password):
    return post_form(client, url, {"email": email, "password": password})


def rules_listed(page, field_id: str) -> list[str]:
    """The rules listed under a field, and that the field points at them."""
    assert re.search(rf'id="{field_id}"[^>]*aria-describedby="[^"]*{field_id}-rules', page.text)
    listed = re.search(rf'<ul id="{field_id}-rules"[^>]*>(.*?)</ul>', page.text, re.S).group(1)
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", listed)]


# --- changing one's own password ---------------------------------------------------------------


def test_staff_change_their_password_and_everything_else_of_theirs_ends(app, business, clock):
    enable(app, business, clock, "t_long", "t_word", "t_broken")
    here = log_in_staff(app, "staff@example.com")
    elsewhere = log_in_staff(app, "staff@example.com")
    staff_id = account(app, "staff@example.com").id
    with app.app_context(), db.write_transaction(app) as writer:
        sessions.create_api_key(writer, db.session().get(User, staff_id), clock())

    menu = here.get("/admin/salon/")
    assert 'href="/admin/salon/password"' in menu.text
    page = here.get("/admin/salon/password")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    # Core's rule, then each plugin's; the one whose contribution fails is left out.
    assert rules_listed(page, "new_password") == [*passwords.CORE_RULES, LENGTH_RULE, WORD_RULE]
    assert "staff@example.com" in NoSalon.actors  # the rules were asked about this account

    wrong = post_form(
        here,
        "/admin/salon/password",
        {
            "current_password": "not it at all",
            "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 403 and "The current password is not right." in wrong.text
    refused = post_form(
        here,
        "/admin/salon/password",
        {"current_password": STAFF_PASSWORD, "new_password": "salon 1", "confirm": "salon 1"},
    )
    assert refused.status_code == 422
    for rule in ("Use at least 8 characters.", "Use at least 12 characters.", "salon"):
        assert rule in html.unescape(refused.text)
    assert 'aria-invalid="true"' in refused.text
    differ = post_form(
        here,
        "/admin/salon/password",
        {"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD, "confirm": "other"},
    )
    assert differ.status_code == 422 and "The two passwords differ." in differ.text
    assert mail_to(app, "staff@example.com") == []

    done = post_form(
        here,
        "/admin/salon/password",
        {"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert done.status_code == 302
    shown = here.get(done.headers["Location"]).text
    assert "Your password is changed." in shown and "1 API key was revoked." in shown
    assert here.get("/admin/salon/").status_code == 200  # this session stays
    assert elsewhere.get("/admin/salon/").status_code == 302  # the other one ended
    with db.fresh_session(app) as session:
        keys = session.scalars(select(ApiKey).where(ApiKey.user_id == staff_id)).all()
        assert [key.revoked_at is not None for key in keys] == [True]
    assert "user.password_changed" in actions(app, staff_id)
    assert (
        log_in(
            app.test_client(), "/admin/salon/login", "staff@example.com", STAFF_PASSWORD
        ).status_code
        == 401
    )
    log_in_staff(app, "staff@example.com", password=NEW_PASSWORD)

    (notice,) = mail_to(app, "staff@example.com", "account.password_changed")
    assert notice.subject == "Your password for Salon was changed"
    assert "Monday 1 March 2027, 09:00 (Europe/Paris)" in notice.text_body
    assert f"{BASE_URL}/admin/salon/forgot" in notice.text_body
    assert f"{BASE_URL}/admin/salon/forgot" in notice.html_body


def test_the_change_page_is_only_for_this_tenants_staff(app, business):
    rival = log_in_staff(app, "spa@example.com", slug="spa")
    assert rival.get("/admin/salon/password").status_code == 404
    nobody = app.test_client().get("/admin/salon/password")
    assert nobody.status_code == 302 and nobody.headers["Location"].endswith("/admin/salon/login")
    no_token = log_in_staff(app, "staff@example.com").post(
        "/admin/salon/password",
        data={
            "current_password": STAFF_PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert no_token.status_code in (400, 422)
    with db.fresh_session(app) as session:
        stored = session.scalar(select(User).where(User.email == "staff@example.com"))
        assert passwords.passwords(app).verify(stored.password_hash, STAFF_PASSWORD)


def test_support_changes_their_password(app, clock):
    support = app.test_client()
    assert log_in(support, "/support/login", "help@example.com", STAFF_PASSWORD).status_code == 302
    assert 'href="/support/password"' in support.get("/support/").text
    page = support.get("/support/password")
    # The instance's support plugins say the rules.
    assert rules_listed(page, "new_password") == [*passwords.CORE_RULES, LENGTH_RULE]
    short = post_form(
        support,
        "/support/password",
        {"current_password": STAFF_PASSWORD, "new_password": "ten chars!", "confirm": "ten chars!"},
    )
    assert short.status_code == 422 and "Use at least 12 characters." in short.text
    done = post_form(
        support,
        "/support/password",
        {"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert done.status_code == 302
    assert "Your password is changed." in support.get("/support/password").text
    (notice,) = mail_to(app, "help@example.com", "account.password_changed")
    assert "Bookwell support" in notice.subject
    assert f"{BASE_URL}/support/forgot" in notice.text_body
    assert (
        log_in(app.test_client(), "/support/login", "help@example.com", NEW_PASSWORD).status_code
        == 302
    )


def test_clients_change_their_password_from_their_account(app, business, clock):
    accounts_on(app, business.tenant_id)
    enable(app, business, clock, "t_long")
    ann = app.test_client()
    signed_up(app, ann, "ann@example.com", "ann's first passphrase")
    login = log_in(ann, "/book/salon/account/login", "ann@example.com", "ann's first passphrase")
    assert login.status_code == 302
    bookings = ann.get("/book/salon/account/")
    assert 'href="/book/salon/account/password"' in bookings.text
    page = ann.get("/book/salon/account/password")
    assert rules_listed(page, "new_password") == [*passwords.CORE_RULES, LENGTH_RULE]
    wrong = post_form(
        ann,
        "/book/salon/account/password",
        {"current_password": "not mine", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert wrong.status_code == 403 and "The current password is not right." in wrong.text
    done = post_form(
        ann,
        "/book/salon/account/password",
        {
            "current_password": "ann's first passphrase",
            "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert done.status_code == 200 and "Your password is changed." in done.text
    (notice,) = mail_to(app, "ann@example.com", "account.password_changed")
    assert f"{BASE_URL}/book/salon/account/forgot" in notice.text_body
    assert app.test_client().get("/book/salon/account/password").status_code == 302


# --- staff's and support's forgotten password ------------------------------------------------


def test_staff_forget_their_password_and_choose_a_new_one(app, business, clock):
    enable(app, business, clock, "t_long", "t_word")
    login_page = app.test_client().get("/admin/salon/login")
    assert 'href="/admin/salon/forgot"' in login_page.text
    signed_in = log_in_staff(app, "staff@example.com")

    asker = app.test_client()
    known = post_form(asker, "/admin/salon/forgot", {"email": "Staff@Example.com"})
    unknown = post_form(asker, "/admin/salon/forgot", {"email": "nobody@example.com"})
    rival = post_form(asker, "/admin/salon/forgot", {"email": "spa@example.com"})
    assert known.status_code == unknown.status_code == rival.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"] == rival.headers["Location"]
    sent = asker.get(known.headers["Location"])
    assert "If the address has an account here" in sent.text
    assert mail_to(app, "nobody@example.com") == [] and mail_to(app, "spa@example.com") == []
    (message,) = mail_to(app, "staff@example.com", "account.reset")
    link = link_of(message, "/admin/salon/reset")

    page = asker.get(link)
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    assert rules_listed(page, "new_password") == [*passwords.CORE_RULES, LENGTH_RULE, WORD_RULE]
    weak = post_form(asker, link, {"new_password": "salon", "confirm": "salon"})
    assert weak.status_code == 422
    assert "Use at least 12 characters." in html.unescape(weak.text)
    assert "Do not use the word 'salon'." in html.unescape(weak.text)
    done = post_form(asker, link, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 200 and "Password changed" in done.text
    assert signed_in.get("/admin/salon/").status_code == 302  # every session ended
    again = asker.get(link)
    assert again.status_code == 410 and 'href="/admin/salon/forgot"' in again.text
    log_in_staff(app, "staff@example.com", password=NEW_PASSWORD)
    assert [m.kind for m in mail_to(app, "staff@example.com")] == [
        "account.reset",
        "account.password_changed",
    ]


def test_a_reset_link_expires_and_belongs_to_its_own_business(app, business, clock):
    spa = app.test_client()
    post_form(spa, "/admin/spa/forgot", {"email": "spa@example.com"})
    spa_link = link_of(mail_to(app, "spa@example.com", "account.reset")[0], "/admin/spa/reset")
    token = spa_link.rsplit("/", 1)[1]
    assert spa.get(f"/admin/salon/reset/{token}").status_code == 410
    assert spa.get(f"/support/reset/{token}").status_code == 410
    # Posted with a good form where it does not belong, it changes nothing.
    page = spa.get("/admin/salon/forgot")
    refused = spa.post(
        f"/admin/salon/reset/{token}",
        data={
            "csrf_token": csrf_token_of(page),
            "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert refused.status_code == 410
    # Nor on the client pages of its own business (clients' links are theirs).
    accounts_on(app, business.tenant_id)
    post_form(spa, "/admin/salon/forgot", {"email": "owner@example.com"})
    salon_link = link_of(mail_to(app, "owner@example.com")[0], "/admin/salon/reset")
    on_client_page = salon_link.replace("/admin/salon/", "/book/salon/account/")
    assert spa.get(on_client_page).status_code == 410
    clock.advance(minutes=61)
    assert spa.get(spa_link).status_code == 410
    log_in_staff(app, "spa@example.com", slug="spa")  # the old password still works


def test_an_address_gets_a_bounded_number_of_links_an_hour(app):
    asker = app.test_client()
    for _ in range(7):
        assert (
            post_form(asker, "/admin/salon/forgot", {"email": "owner@example.com"}).status_code
            == 302
        )
    assert len(mail_to(app, "owner@example.com", "account.reset")) == 5


def test_support_forget_their_password(app, clock):
    assert 'href="/support/forgot"' in app.test_client().get("/support/login").text
    asker = app.test_client()
    assert post_form(asker, "/support/forgot", {"email": "help@example.com"}).status_code == 302
    # A tenant's staff address asked on support's page gets nothing.
    assert post_form(asker, "/support/forgot", {"email": "owner@example.com"}).status_code == 302
    assert mail_to(app, "owner@example.com") == []
    (message,) = mail_to(app, "help@example.com", "account.reset")
    assert "Bookwell support" in message.subject
    link = link_of(message, "/support/reset")
    assert asker.get(link.replace("/support/", "/admin/salon/")).status_code == 410
    short = post_form(asker, link, {"new_password": "ten chars!", "confirm": "ten chars!"})
    assert short.status_code == 422 and "Use at least 12 characters." in short.text
    assert (
        post_form(asker, link, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code
        == 200
    )
    assert (
        log_in(app.test_client(), "/support/login", "help@example.com", NEW_PASSWORD).status_code
        == 302
    )


# --- staff invited by e-mail -----------------------------------------------------------------


def invite(owner, email="newbie@example.com", role="staff"):
    return post_form(
        owner, "/admin/salon/staff/new", {"email": email, "role": role, "name": "Nina"}
    )


def test_the_owner_invites_staff_who_choose_their_password_and_are_signed_in(app, business, clock):
    enable(app, business, clock, "t_long", "t_word")
    owner = log_in_staff(app, "owner@example.com")
    form = owner.get("/admin/salon/staff/new")
    assert 'type="password"' not in form.text
    sent = invite(owner)
    assert sent.status_code == 302
    assert "Invited newbie@example.com" in owner.get(sent.headers["Location"]).text
    invited = account(app, "newbie@example.com")
    assert invited.password_hash == passwords.NO_PASSWORD and invited.role == "staff"
    nobody = log_in(app.test_client(), "/admin/salon/login", "newbie@example.com", "")
    assert nobody.status_code == 422
    (message,) = mail_to(app, "newbie@example.com", "account.invite")
    assert message.subject == "You are invited to Salon" and "within 7 days" in message.text_body
    link = link_of(message, "/admin/salon/invite")

    newbie = app.test_client()
    page = newbie.get(link)
    assert page.status_code == 200 and "newbie@example.com" in page.text
    assert rules_listed(page, "new_password") == [*passwords.CORE_RULES, LENGTH_RULE, WORD_RULE]
    weak = post_form(newbie, link, {"new_password": "my salon", "confirm": "my salon"})
    assert weak.status_code == 422 and "Use at least 12 characters." in weak.text
    joined = post_form(newbie, link, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert joined.status_code == 302 and joined.headers["Location"].startswith("/admin/salon/")
    assert newbie.get("/admin/salon/").status_code == 200  # signed in
    assert app.test_client().get(link).status_code == 410  # once only
    log_in_staff(app, "newbie@example.com", password=NEW_PASSWORD)
    assert actions(app, invited.id)[:3] == [
        "user.created",
        "user.invited",
        "user.invitation_accepted",
    ]
    # The first password is no change: no "password changed" e-mail.
    assert mail_to(app, "newbie@example.com", "account.password_changed") == []


def test_an_invitation_can_be_sent_again_and_expires(app, business, clock):
    owner = log_in_staff(app, "owner@example.com")
    invite(owner)
    invited = account(app, "newbie@example.com")
    first = link_of(mail_to(app, "newbie@example.com")[0], "/admin/salon/invite")
    listing = owner.get("/admin/salon/staff")
    assert "invited: no password chosen yet" in listing.text
    details = owner.get(f"/admin/salon/staff/{invited.id}")
    assert "Send the invitation again" in details.text
    again = owner.post(
        f"/admin/salon/staff/{invited.id}/invitation", data={"csrf_token": csrf_token_of(details)}
    )
    assert again.status_code == 302
    assert owner.post(f"/admin/salon/staff/{invited.id}/invitation").status_code == 400
    second = link_of(mail_to(app, "newbie@example.com")[-1], "/admin/salon/invite")
    assert second != first
    assert app.test_client().get(first).status_code == 410  # the earlier link is closed
    assert actions(app, invited.id).count("user.invited") == 2
    # Another business's staff cannot use it on theirs; nor a reset page.
    token = second.rsplit("/", 1)[1]
    assert app.test_client().get(f"/admin/spa/invite/{token}").status_code == 410
    assert app.test_client().get(f"/admin/salon/reset/{token}").status_code == 410
    clock.advance(days=7, minutes=1)
    assert app.test_client().get(second).status_code == 410


def test_an_invitation_answers_for_another_business_only_as_unknown(app, business, clock):
    """The rival's owner cannot send a salon invitation again, nor see the account."""
    owner = log_in_staff(app, "owner@example.com")
    invite(owner)
    invited = account(app, "newbie@example.com")
    rival = log_in_staff(app, "spa@example.com", slug="spa")
    page = rival.get("/admin/spa/staff")
    answer = rival.post(
        f"/admin/spa/staff/{invited.id}/invitation", data={"csrf_token": csrf_token_of(page)}
    )
    assert answer.status_code == 404
    assert len(mail_to(app, "newbie@example.com")) == 1


def test_a_staff_member_below_owner_cannot_invite(app, business):
    staff = log_in_staff(app, "staff@example.com")
    assert staff.get("/admin/salon/staff/new").status_code == 403


# --- rules beside the clients' password fields -------------------------------------------------


def test_rules_are_shown_on_the_clients_sign_up_and_reset_pages(app, business, clock):
    accounts_on(app, business.tenant_id)
    enable(app, business, clock, "t_long", "t_broken")
    page = app.test_client().get("/book/salon/account/register")
    assert rules_listed(page, "password") == [*passwords.CORE_RULES, LENGTH_RULE]
    ann = app.test_client()
    signed_up(app, ann, "ann@example.com", "ann's first passphrase")
    asker = app.test_client()
    post_form(asker, "/book/salon/account/forgot", {"email": "ann@example.com"})
    link = link_of(mail_to(app, "ann@example.com", "account.reset")[0], "/book/salon/account/reset")
    assert rules_listed(asker.get(link), "password") == [*passwords.CORE_RULES, LENGTH_RULE]
    # A client's link opens nothing on the staff pages.
    assert asker.get(link.replace("/book/salon/account/", "/admin/salon/")).status_code == 410


def test_without_plugins_core_rules_are_shown(app, business):
    page = log_in_staff(app, "owner@example.com").get("/admin/salon/password")
    assert rules_listed(page, "new_password") == list(passwords.CORE_RULES)


# --- the access log --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/admin/salon/reset/abc_DEF-123", "/admin/salon/reset/…"),
        ("/admin/salon/invite/abc_DEF-123", "/admin/salon/invite/…"),
        ("/support/reset/abc_DEF-123", "/support/reset/…"),
        ("/book/salon/account/reset/abc", "/book/salon/account/reset/…"),
        ("/book/salon/account/verify/abc", "/book/salon/account/verify/…"),
        ("/admin/salon/password", "/admin/salon/password"),
    ],
)
def test_the_access_log_never_shows_a_links_secret(path, shown):
    assert redacted_path(path) == shown


# --- a policy that cannot judge refuses ---------------------------------------------------------


def test_a_crashing_password_policy_refuses_every_new_password(app, business, clock):
    owner = log_in_staff(app, "owner@example.com")
    invite(owner)
    invitation = link_of(mail_to(app, "newbie@example.com")[0], "/admin/salon/invite")
    post_form(app.test_client(), "/admin/salon/forgot", {"email": "staff@example.com"})
    reset = link_of(mail_to(app, "staff@example.com", "account.reset")[0], "/admin/salon/reset")
    enable(app, business, clock, "t_crash")
    new = {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    changed = post_form(owner, "/admin/salon/password", {"current_password": STAFF_PASSWORD, **new})
    joined = post_form(app.test_client(), invitation, new)
    chosen = post_form(app.test_client(), reset, new)
    for refused in (changed, joined, chosen):
        assert refused.status_code == 422 and 'class="field-error"' in refused.text
    # Nothing was set, and both links still work once the policy is back. (While it crashes,
    # logins are refused too: the password is held to the rules at every login.)
    with app.app_context():
        plugin_changes.disable(app, business.tenant_id, "t_crash", clock())
    log_in_staff(app, "owner@example.com")
    log_in_staff(app, "staff@example.com")
    assert account(app, "newbie@example.com").password_hash == passwords.NO_PASSWORD
    assert app.test_client().get(invitation).status_code == 200
    assert app.test_client().get(reset).status_code == 200
    assert mail_to(app, "owner@example.com", "account.password_changed") == []


# --- the API ---------------------------------------------------------------------------------


def test_the_api_lists_the_rules_for_a_sign_up_or_for_the_caller(app, business, clock):
    enable(app, business, clock, "t_long", "t_word", "t_broken")
    api = app.test_client()
    anyone = api.get("/api/v1/tenants/salon/password-rules")
    assert anyone.status_code == 200
    assert anyone.json == {"rules": [*passwords.CORE_RULES, LENGTH_RULE, WORD_RULE]}
    assert NoSalon.actors[-1] is None  # a sign-up: nobody's yet
    body = {"email": "staff@example.com", "password": STAFF_PASSWORD}
    token = api.post("/api/v1/tenants/salon/auth/login", json=body).json["token"]
    mine = api.get(
        "/api/v1/tenants/salon/password-rules", headers={"Authorization": f"Bearer {token}"}
    )
    assert mine.status_code == 200 and NoSalon.actors[-1] == "staff@example.com"
    # Another business's caller is asked about as nobody, and sees that business's rules.
    elsewhere = api.get(
        "/api/v1/tenants/spa/password-rules", headers={"Authorization": f"Bearer {token}"}
    )
    assert elsewhere.json == {"rules": list(passwords.CORE_RULES)}
    assert api.get("/api/v1/tenants/nowhere/password-rules").status_code == 404
    bad = api.get("/api/v1/tenants/salon/password-rules", headers={"Authorization": "Bearer x"})
    assert bad.status_code == 401
