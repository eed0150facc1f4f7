"""Client accounts on the booking pages: register with a verification link that opens the account
only with the password chosen at sign-up, log in (never unverified), my bookings (only through
the verified e-mail), a forgotten password; single-use links that expire; pre-registration of
someone else's address gets the impostor nothing; the whole feature off (404, pages and API)
unless the owner turns it on, on the business page or with `bookwell tenants set`."""

from __future__ import annotations

import email
import json
import re
import threading
from email import policy
from pathlib import Path

import pytest
from booking_pages import inline_scripts
from conftest import booking_body, log_in_staff, open_every_day
from sqlalchemy import select, update

from bookwell.core.access import client_accounts as accounts
from bookwell.core.access import passwords
from bookwell.core.access.users import create_user
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.mail import deliver_due
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    AuditEntry,
    AuthSession,
    Booking,
    OutboxMessage,
    Tenant,
    User,
    UserToken,
)
from bookwell.hooks import Manifest, Refusal, hookimpl

BASE_URL = "https://book.example"
ACCOUNT = "/book/salon/account"
PASSWORD = "a long enough password"
NEW_PASSWORD = "another long password"


@pytest.fixture
def app(make_app):
    return make_app(MAIL_DELIVERY="manual", BASE_URL=BASE_URL)


@pytest.fixture
def salon(app, business):
    with db.write_transaction(app) as session:
        session.get(Tenant, business.tenant_id).client_accounts = True
    return business


def csrf_of(page) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)


def post_form(client, url, **data):
    page = client.get(url)
    assert page.status_code == 200, page.text
    return client.post(url, data={"csrf_token": csrf_of(page), **data})


def mails(app, clock) -> list[email.message.EmailMessage]:
    """Deliver what is due, then every message written so far (oldest first)."""
    deliver_due(app, clock())
    folder = Path(app.instance_path) / "outbox"
    files = sorted(folder.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
    return [email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in files]


def link_in(message, kind: str) -> str:
    text = message.get_body(("plain",)).get_content()
    found = re.search(rf"{re.escape(BASE_URL)}(/book/salon/account/{kind}/[A-Za-z0-9_-]+)", text)
    assert found, text
    return found.group(1)


def register(client, address="ann@example.com", password=PASSWORD):
    return post_form(client, f"{ACCOUNT}/register", name="Ann", email=address, password=password)


def log_in(client, address="Ann@Example.com", password=PASSWORD):
    return post_form(client, f"{ACCOUNT}/login", email=address, password=password)


def confirm(client, path, password=PASSWORD):
    """Open a verification link and type a password: the answer to that POST."""
    return post_form(client, path, password=password)


def mails_to(app, clock, address):
    return [m for m in mails(app, clock) if str(m["To"]).strip() == address]


def verified_account(app, client, clock, address="ann@example.com"):
    assert register(client, address).status_code == 302
    (message,) = mails_to(app, clock, address)
    page = confirm(app.test_client(), link_in(message, "verify"))
    assert page.status_code == 302, page.text
    return message


def account(app, address="ann@example.com", tenant_id=None) -> User:
    with db.fresh_session(app) as session:
        query = select(User).where(User.email == address)
        if tenant_id is not None:
            query = query.where(User.tenant_id == tenant_id)
        return session.scalars(query).one()


def api_log_in(client, address="ann@example.com", password=PASSWORD, slug="salon"):
    body = {"email": address, "password": password}
    return client.post(f"/api/v1/tenants/{slug}/auth/login", json=body)


def api_sign_up(client, address="ann@example.com", password=PASSWORD, slug="salon", name="Ann"):
    body = {"email": address, "password": password, "name": name}
    return client.post(f"/api/v1/tenants/{slug}/clients", json=body)


def book(client, business, start, address, name="Ann"):
    body = booking_body(business, start, name=name)
    body["client"]["email"] = address
    response = client.post("/api/v1/tenants/salon/bookings", json=body)
    assert response.status_code == 201, response.json
    return response.json["reference"]


# --- register, verify, log in, my bookings --------------------------------------------------


def test_register_verify_log_in_and_see_my_bookings(app, client, salon, clock, make_app):
    mine = book(client, salon, "2027-03-02T10:00:00+01:00", "ANN@example.com")
    past = book(client, salon, "2027-03-01T15:00:00+01:00", "ann@example.com")
    someone_else = book(client, salon, "2027-03-02T11:00:00+01:00", "bob@example.com", "Bob")
    called_off = book(client, salon, "2027-03-04T10:00:00+01:00", "ann@example.com")
    with db.write_transaction(app) as session:
        session.execute(
            update(Booking).where(Booking.reference == called_off).values(status="cancelled")
        )
        other = create_tenant(session, "barber", name="Barber", timezone="UTC", now=clock())
        cut = add_service(session, other, "Shave", duration_minutes=30, slot_step_minutes=30)
        cy = add_provider(session, other, "Cy", [cut], open_every_day())
        other.client_accounts = True
        other_ids = (cy.id, cut.id)
    elsewhere = client.post(
        "/api/v1/tenants/barber/bookings",
        json={
            "service_id": other_ids[1],
            "provider_id": other_ids[0],
            "start": "2027-03-02T12:00:00+00:00",
            "client": {"name": "Ann", "email": "ann@example.com"},
        },
    )
    assert elsewhere.status_code == 201, elsewhere.json

    page = register(client)
    assert page.status_code == 302
    sent = client.get(page.headers["Location"])
    assert "Check your e-mail" in sent.text

    # Not yet verified: no login, and an offer to send the link again.
    refused = log_in(client)
    assert refused.status_code == 403
    assert "confirm your e-mail" in refused.text
    assert "new confirmation link" in refused.text
    assert client.get(f"{ACCOUNT}/").status_code == 302

    (message,) = [m for m in mails(app, clock) if m["Subject"].startswith("Confirm")]
    assert str(message["To"]).strip() == "ann@example.com"
    html_body = message.get_body(("html",)).get_content()
    path = link_in(message, "verify")
    assert f"{BASE_URL}{path}" in html_body
    assert "password you chose" in message.get_body(("plain",)).get_content()

    # The link asks for the password chosen at sign-up; typing it opens the account and signs
    # Ann in.
    form = client.get(path)
    assert form.status_code == 200 and "enter the password you chose" in form.text
    opened = confirm(client, path)
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"{ACCOUNT}/")
    assert client.get(f"{ACCOUNT}/").status_code == 200
    logout = client.post(f"{ACCOUNT}/logout", data={"csrf_token": csrf_of(form)})
    assert logout.status_code == 302

    # The link works once.
    again = client.get(path)
    assert again.status_code == 410
    assert "expired or has already been used" in again.text

    # Logging in after verification; clock forward so one booking is past.
    clock.advance(hours=7)
    page = log_in(client)
    assert page.status_code == 302, page.text
    listing = client.get(f"{ACCOUNT}/")
    assert listing.status_code == 200
    assert mine in listing.text and past in listing.text
    assert someone_else not in listing.text
    assert elsewhere.json["reference"] not in listing.text
    upcoming, _, earlier = listing.text.partition("<h2>Past and cancelled</h2>")
    assert mine in upcoming and past in earlier
    assert called_off not in upcoming and called_off in earlier  # listed, but not as coming up
    assert "token=" not in listing.text and "/manage/" not in listing.text
    assert "Tuesday 2 March 2027, 10:00" in listing.text  # the tenant's zone

    # Logging out ends the session.
    logout = client.post(f"{ACCOUNT}/logout", data={"csrf_token": csrf_of(listing)})
    assert logout.status_code == 302
    assert client.get(f"{ACCOUNT}/").status_code == 302


def test_an_expired_verification_link_fails_clearly(app, client, salon, clock):
    register(client)
    (message,) = mails(app, clock)
    clock.advance(hours=48, seconds=1)
    page = client.get(link_in(message, "verify"))
    assert page.status_code == 410
    assert "expired" in page.text
    assert log_in(client).status_code == 403
    # Asking again sends a fresh link, for the password chosen at sign-up.
    clock.advance(minutes=1)
    assert post_form(client, f"{ACCOUNT}/resend", email="ann@example.com").status_code == 302
    fresh = mails(app, clock)[-1]
    assert confirm(client, link_in(fresh, "verify"), NEW_PASSWORD).status_code == 401
    assert confirm(client, link_in(fresh, "verify")).status_code == 302
    assert log_in(app.test_client()).status_code == 302


def test_opening_the_link_changes_nothing(app, client, salon, clock):
    """Mail scanners open links: only the POST with the chosen password does anything."""
    register(client)
    path = link_in(mails(app, clock)[0], "verify")
    for _ in range(2):
        assert client.get(path).status_code == 200
    ann = account(app)
    assert ann.email_verified_at is None and ann.password_hash == accounts.NO_PASSWORD
    with db.fresh_session(app) as session:
        assert session.scalars(select(UserToken.used_at)).all() == [None]
    assert log_in(client).status_code == 403


def test_a_wrong_password_on_the_link_says_so_and_leaves_it_usable(app, client, salon, clock):
    register(client)
    path = link_in(mails(app, clock)[0], "verify")
    wrong = confirm(client, path, NEW_PASSWORD)
    assert wrong.status_code == 401
    assert "not the password chosen when this link was requested" in wrong.text
    assert "If you did not sign up, ignore the link" in wrong.text
    assert f'href="{ACCOUNT}/register"' in wrong.text
    assert session_cookie_of(wrong) is None
    assert account(app).email_verified_at is None
    assert confirm(client, path, "").status_code == 422  # no password at all: a field error
    assert confirm(client, path).status_code == 302


def test_signing_up_again_for_an_unverified_address_sends_a_new_link_with_the_new_password(
    app, client, salon, clock
):
    first = register(client)
    second = register(client, "ANN@example.com", NEW_PASSWORD)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    older, newer = mails_to(app, clock, "ann@example.com")
    # Each link opens the account only with its own sign-up's password.
    assert confirm(client, link_in(newer, "verify"), PASSWORD).status_code == 401
    assert confirm(client, link_in(older, "verify"), NEW_PASSWORD).status_code == 401
    # Either password is a sign-up's: both are told to confirm the address, not "wrong".
    assert log_in(app.test_client(), password=PASSWORD).status_code == 403
    assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 403
    assert confirm(client, link_in(newer, "verify"), NEW_PASSWORD).status_code == 302
    # Opened with the newer password: the older sign-up's link and password are done with.
    assert client.get(link_in(older, "verify")).status_code == 410
    assert log_in(app.test_client(), password=PASSWORD).status_code == 401
    assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 302
    assert len(account_rows(app)) == 1


def account_rows(app) -> list[User]:
    with db.fresh_session(app) as session:
        return session.scalars(select(User)).all()


def test_one_address_gets_a_few_account_mails_an_hour_however_often_strangers_ask(
    app, client, salon, clock
):
    """Sign-up and "forgot password" answer anyone: 30 sign-ups and 25 resets in a minute for
    one address mailed its owner 55 times. Past the hourly cap the answers stay the same."""
    verified_account(app, client, clock)
    for _ in range(30):
        assert api_sign_up(client, "ann@example.com", NEW_PASSWORD).status_code == 201
    for _ in range(25):
        assert post_form(client, f"{ACCOUNT}/forgot", email="ann@example.com").status_code == 302
    sent = mails_to(app, clock, "ann@example.com")
    # The sign-up's own link, then the cap's worth of "you already have an account" mails.
    assert len(sent) == 1 + accounts.MAILS_PER_ADDRESS_PER_HOUR - 1
    clock.advance(minutes=61)
    assert post_form(client, f"{ACCOUNT}/forgot", email="ann@example.com").status_code == 302
    assert len(mails_to(app, clock, "ann@example.com")) == len(sent) + 1


def test_signing_up_for_a_verified_address_changes_nothing_and_tells_the_owner(
    app, client, salon, clock
):
    verified_account(app, client, clock)
    before = account(app).password_hash
    again = register(client, "ANN@example.com", NEW_PASSWORD)
    fresh = register(client, "bob@example.com", NEW_PASSWORD)
    assert again.status_code == fresh.status_code == 302
    assert again.headers["Location"] == fresh.headers["Location"]
    told = mails_to(app, clock, "ann@example.com")[-1]
    assert told["Subject"] == "You already have an account with Salon"
    text = told.get_body(("plain",)).get_content()
    assert "already have one" in text and "nothing was changed" in text
    assert account(app).password_hash == before
    assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 401
    assert log_in(app.test_client(), password=PASSWORD).status_code == 302
    # Its link is a reset link, which works as any other.
    path = link_in(told, "reset")
    assert post_form(client, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD).status_code == 200
    assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 302


def test_register_shows_field_errors(app, client, salon):
    page = register(client, "not-an-address", "short")
    assert page.status_code == 422
    assert "valid e-mail" in page.text
    page = register(client, "ann@example.com", "short")
    assert page.status_code == 422
    assert "at least" in page.text


def test_only_clients_of_this_tenant_log_in_here(app, client, salon, clock):
    with app.app_context():
        create_user(
            app,
            tenant_id=salon.tenant_id,
            email="owner@example.com",
            role="owner",
            password=PASSWORD,
            now=clock(),
        )
    page = log_in(client, "owner@example.com")
    assert page.status_code == 401
    assert "not right" in page.text


# --- forgotten password ----------------------------------------------------------------------


def test_forgot_reset_new_password_works_and_sessions_end(app, make_app, salon, clock):
    client, other_browser = app.test_client(), app.test_client()
    verified_account(app, client, clock)
    assert log_in(client).status_code == 302
    assert log_in(other_browser).status_code == 302

    page = post_form(client, f"{ACCOUNT}/forgot", email="ann@example.com")
    assert page.status_code == 302
    assert "choose a new password" in client.get(page.headers["Location"]).text
    message = mails(app, clock)[-1]
    assert message["Subject"].startswith("Reset your password")
    path = link_in(message, "reset")

    # Field-level errors leave the link usable.
    short = post_form(client, path, password="short", confirm="short")
    assert short.status_code == 422 and "at least" in short.text
    differ = post_form(client, path, password=NEW_PASSWORD, confirm="something else entirely")
    assert differ.status_code == 422 and "differ" in differ.text

    done = post_form(client, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert done.status_code == 200 and "Password changed" in done.text
    assert other_browser.get(f"{ACCOUNT}/").status_code == 302  # every session ended
    with db.fresh_session(app) as session:
        assert (
            session.scalars(select(AuthSession).where(AuthSession.revoked_at.is_(None))).all() == []
        )

    assert log_in(client, password=PASSWORD).status_code == 401
    assert log_in(client, password=NEW_PASSWORD).status_code == 302

    # Single-use.
    again = client.get(path)
    assert again.status_code == 410 and "expired or has already been used" in again.text


def test_the_reset_link_expires_after_an_hour(app, client, salon, clock):
    verified_account(app, client, clock)
    post_form(client, f"{ACCOUNT}/forgot", email="ann@example.com")
    path = link_in(mails(app, clock)[-1], "reset")
    clock.advance(minutes=59)
    assert client.get(path).status_code == 200
    clock.advance(minutes=1)
    page = client.get(path)
    assert page.status_code == 410
    assert "expired" in page.text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token is None  # no form on an expired link
    assert log_in(client).status_code == 302  # the old password still works


def test_forgot_for_an_unknown_address_answers_the_same_and_sends_nothing(
    app, client, salon, clock
):
    verified_account(app, client, clock)
    before = len(mails(app, clock))
    known = post_form(client, f"{ACCOUNT}/forgot", email="ann@example.com")
    unknown = post_form(client, f"{ACCOUNT}/forgot", email="nobody@example.com")
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"]
    assert len(mails(app, clock)) == before + 1
    with db.fresh_session(app) as session:
        kinds = session.scalars(select(OutboxMessage.to_address)).all()
    assert "nobody@example.com" not in kinds


# --- tokens ----------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_and_used_once_under_concurrency(app, salon, clock):
    with app.app_context():
        user_id = create_user(
            app,
            tenant_id=salon.tenant_id,
            email="ann@example.com",
            role="client",
            password=PASSWORD,
            now=clock(),
            email_verified=False,
        ).id
        chosen = passwords.passwords(app).hash(PASSWORD)
    with db.write_transaction(app) as writer:
        ann = writer.get(User, user_id)
        secret = accounts.issue(writer, ann, accounts.VERIFY_EMAIL, clock(), chosen)
    with db.fresh_session(app) as session:
        (row,) = session.scalars(select(UserToken)).all()
        assert row.secret_hash == accounts.digest(secret) and secret not in row.secret_hash
        tenant = session.get(Tenant, salon.tenant_id)
        session.expunge(tenant)

    results = []

    def use():
        with app.app_context():
            verified = accounts.verify_email(app, tenant, secret, PASSWORD, clock())
            results.append(verified.id if verified else None)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=lambda value: value is None) == [user_id, None, None, None]
    with db.fresh_session(app) as session:
        assert session.get(User, user_id).email_verified_at is not None


def test_api_sign_up_sends_a_link_the_chosen_password_opens(app, client, salon, clock):
    first = api_sign_up(client)
    second = api_sign_up(client, "ANN@example.com", NEW_PASSWORD)
    assert first.status_code == second.status_code == 201
    assert (
        first.json == second.json == {"email": "ann@example.com", "status": "verification_pending"}
    )
    older, newer = mails(app, clock)
    assert account(app).password_hash == accounts.NO_PASSWORD
    assert confirm(client, link_in(older, "verify")).status_code == 302
    assert log_in(app.test_client()).status_code == 302


# --- the gate and CSRF -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/register", "/login", "/", "/forgot", "/resend", "/verify/abc", "/reset/abc"]
)
def test_pages_are_404_unless_the_tenant_turns_accounts_on(client, business, path):
    assert client.get(ACCOUNT + path).status_code == 404
    if path != "/":  # the only page without a form
        assert client.post(ACCOUNT + path, data={"password": PASSWORD}).status_code == 404


def test_api_sign_up_is_404_and_sends_nothing_unless_the_tenant_turns_accounts_on(
    app, client, business, clock
):
    answer = api_sign_up(client)
    assert answer.status_code == 404
    assert answer.json["error"]["code"] == "not_found"
    assert api_sign_up(client, password="short").status_code == 404  # before any other check
    assert account_rows(app) == []
    with db.fresh_session(app) as session:
        assert session.scalars(select(OutboxMessage)).all() == []
        assert session.scalars(select(UserToken)).all() == []


def test_clients_do_not_log_in_while_accounts_are_off(app, client, salon, clock):
    verified_account(app, client, clock)
    assert api_log_in(client).status_code == 200
    with db.write_transaction(app) as session:
        session.get(Tenant, salon.tenant_id).client_accounts = False
    refused = api_log_in(client)
    unknown = api_log_in(client, "nobody@example.com")
    assert refused.status_code == unknown.status_code == 401
    assert refused.get_data() == unknown.get_data()
    assert client.get(f"{ACCOUNT}/login").status_code == 404


def test_forms_need_the_csrf_token(app, client, salon, clock):
    data = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}
    assert client.post(f"{ACCOUNT}/register", data=data).status_code in (400, 422)
    assert client.post(f"{ACCOUNT}/forgot", data={"email": "ann@example.com"}).status_code in (
        400,
        422,
    )
    assert mails(app, clock) == []
    register(client)
    path = link_in(mails(app, clock)[0], "verify")
    assert client.post(path, data={"password": PASSWORD}).status_code in (400, 422)
    assert account(app).email_verified_at is None
    assert confirm(client, path).status_code == 302
    client.post(f"{ACCOUNT}/logout", data={"csrf_token": csrf_of(client.get(f"{ACCOUNT}/"))})
    login = client.post(f"{ACCOUNT}/login", data={"email": "ann@example.com", "password": PASSWORD})
    assert login.status_code in (400, 422)
    assert client.get(f"{ACCOUNT}/").status_code == 302


def test_the_pages_have_no_inline_code(app, client, salon, clock):
    verified_account(app, client, clock)
    log_in(client)
    register(client, "bob@example.com")
    pending = link_in(mails_to(app, clock, "bob@example.com")[0], "verify")
    for path in ["/register", "/login", "/forgot", "/resend", "/", pending[len(ACCOUNT) :]]:
        text = client.get(ACCOUNT + path).text.lower()
        assert inline_scripts(text) == []
        assert "<style" not in text and " style=" not in text
        assert re.search(r"\son[a-z]+=", text) is None


def test_logins_are_rate_limited(make_app, salon, clock):
    limited = make_app(MAIL_DELIVERY="manual", BASE_URL=BASE_URL, RATE_LIMITS="login=2/minute")
    browser = limited.test_client()
    answers = [log_in(browser, password="wrong password!!").status_code for _ in range(3)]
    assert answers == [401, 401, 429]
    assert browser.get(f"{ACCOUNT}/login").status_code == 200  # GETs are not counted


def test_passwords_typed_on_a_verification_link_count_as_logins(make_app, salon, clock):
    limited = make_app(MAIL_DELIVERY="manual", BASE_URL=BASE_URL, RATE_LIMITS="login=2/minute")
    browser = limited.test_client()
    register(browser)
    path = link_in(mails(limited, clock)[0], "verify")
    answers = [confirm(browser, path, f"guess number {n}").status_code for n in range(3)]
    assert answers == [401, 401, 429]
    assert browser.get(path).status_code == 200  # GETs are not counted


def test_a_reset_link_also_confirms_an_unconfirmed_address(app, client, salon, clock):
    register(client)
    verify_path = link_in(mails(app, clock)[0], "verify")
    post_form(client, f"{ACCOUNT}/forgot", email="ann@example.com")
    path = link_in(mails(app, clock)[-1], "reset")
    assert post_form(client, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD).status_code == 200
    assert log_in(client, password=NEW_PASSWORD).status_code == 302
    with db.fresh_session(app) as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert "user.email_verified" in actions and "user.password_changed" in actions
    # The sign-up's link is done with: it cannot put the sign-up's password back.
    assert client.get(verify_path).status_code == 410
    assert log_in(app.test_client(), password=PASSWORD).status_code == 401


# --- a further login step asked by a plugin ------------------------------------------------------


class Pin:
    """Asks every client for a PIN after the password, under a field name of its own."""

    MANIFEST = Manifest("t-pin", "PIN", "Asks for a PIN.", "1.0", "security", "tests")

    @hookimpl
    def before_login(ctx):
        if ctx.login.answers.get("pin") == "4321":
            return None
        return Refusal(
            "Please give your PIN.",
            code="pin_needed",
            status=401,
            challenge={"field": "pin", "label": "Your PIN"},
        )


def test_a_plugins_challenge_is_a_further_step_on_the_client_login(make_app, salon, clock):
    app = make_app(MAIL_DELIVERY="manual", BASE_URL=BASE_URL, EXTRA_PLUGINS=[Pin])
    client = app.test_client()
    verified_account(app, client, clock)
    with app.app_context():
        plugin_changes.enable(app, salon.tenant_id, "t-pin", {}, clock())
    first = log_in(client)
    assert first.status_code == 200 and "Your PIN" in first.text
    assert 'name="field" value="pin"' in first.text
    assert client.get(f"{ACCOUNT}/").status_code == 302  # no session yet: back to the login
    step = f"{ACCOUNT}/login/step"
    wrong = client.post(step, data={"csrf_token": csrf_of(first), "field": "pin", "answer": "0"})
    assert wrong.status_code == 401 and "Please give your PIN." in wrong.text
    right = client.post(step, data={"csrf_token": csrf_of(wrong), "field": "pin", "answer": "4321"})
    assert right.status_code == 302 and right.headers["Location"].endswith(f"{ACCOUNT}/")
    assert client.get(f"{ACCOUNT}/").status_code == 200


def test_a_step_without_a_pending_login_goes_back_to_the_login(app, client, salon):
    page = client.get(f"{ACCOUNT}/login")
    answer = client.post(f"{ACCOUNT}/login/step", data={"csrf_token": csrf_of(page), "answer": "1"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"{ACCOUNT}/login")


def session_cookie_of(response):
    cookies = response.headers.getlist("Set-Cookie")
    return next((cookie for cookie in cookies if cookie.startswith("bookwell_session=")), None)


# --- pre-registration: signing up with someone else's address ------------------------------------

IMPOSTOR_PASSWORD = "the impostor's own password"


def test_signing_up_first_with_someone_elses_address_gets_the_impostor_nothing(app, salon, clock):
    """Mallory signs up with Ann's address and a password of his own, hoping Ann confirms it.
    Ann signs up too and gets a link of her own; Mallory's link, the first Ann receives, does
    not open the account with her password; hers does; Mallory's password never logs in and he
    never sees her bookings."""
    mallory, ann = app.test_client(), app.test_client()
    hers = book(ann, salon, "2027-03-02T10:00:00+01:00", "ann@example.com")

    assert api_sign_up(mallory, password=IMPOSTOR_PASSWORD, name="Mallory").status_code == 201
    assert account(app).name == "Mallory"  # the first sign-up names the waiting account
    assert register(ann).status_code == 302  # her own sign-up, on the page
    mallorys_mail, her_mail = [
        m for m in mails_to(app, clock, "ann@example.com") if m["Subject"].startswith("Confirm")
    ]
    mallorys_link, her_link = link_in(mallorys_mail, "verify"), link_in(her_mail, "verify")
    assert mallorys_link != her_link

    # Ann opens the first link she got (Mallory's) and types her password: nothing opens.
    refused = confirm(ann, mallorys_link)
    assert refused.status_code == 401
    assert "not the password chosen when this link was requested" in refused.text
    assert account(app).email_verified_at is None
    assert account(app).password_hash == accounts.NO_PASSWORD

    # Before Ann confirms, Mallory's password gets no token, only "confirm your address".
    early = api_log_in(mallory, password=IMPOSTOR_PASSWORD)
    assert early.status_code == 403 and early.json["error"]["code"] == "email_unverified"
    assert "token" not in early.json

    # Her own link with her password opens the account and signs her in: she sees her booking.
    opened = confirm(ann, her_link)
    assert opened.status_code == 302
    assert hers in ann.get(f"{ACCOUNT}/").text
    with app.app_context():
        assert passwords.passwords(app).verify(account(app).password_hash, PASSWORD)
    assert account(app).name == "Ann"  # the name her sign-up gave, not Mallory's

    # Mallory's link is closed now, even with his own password, and changes nothing.
    stored = account(app).password_hash
    assert mallory.get(mallorys_link).status_code == 410
    token = csrf_of(mallory.get(f"{ACCOUNT}/login"))
    late = mallory.post(mallorys_link, data={"csrf_token": token, "password": IMPOSTOR_PASSWORD})
    assert late.status_code == 410
    assert account(app).password_hash == stored

    # Mallory's password never logs in, on the API or the page, and shows him nothing of hers.
    refused_api = api_log_in(mallory, password=IMPOSTOR_PASSWORD)
    assert refused_api.status_code == 401
    assert refused_api.json["error"]["code"] == "invalid_credentials"
    assert log_in(mallory, password=IMPOSTOR_PASSWORD).status_code == 401
    mine = mallory.get(f"{ACCOUNT}/")
    assert mine.status_code == 302 and hers not in mine.text
    # Signing up again now only tells Ann (a reset link she did not ask for, to ignore).
    assert api_sign_up(mallory, password=IMPOSTOR_PASSWORD).status_code == 201
    assert mails_to(app, clock, "ann@example.com")[-1]["Subject"].startswith("You already")
    assert account(app).password_hash == stored
    assert api_log_in(mallory, password=IMPOSTOR_PASSWORD).status_code == 401
    with db.fresh_session(app) as session:
        sessions = session.scalars(select(AuthSession)).all()
    assert len(sessions) == 1  # Ann's, from her confirmation


# --- an unverified client never logs in ----------------------------------------------------------


def test_an_unverified_client_gets_no_token_and_no_session(app, client, salon, clock):
    assert api_sign_up(client).status_code == 201

    told = api_log_in(client)
    assert told.status_code == 403
    assert told.json == {
        "error": {
            "code": "email_unverified",
            "message": "Please confirm your e-mail address first, with the link we sent you.",
        }
    }
    # Any other password answers exactly as an unknown address does.
    wrong = api_log_in(client, password=NEW_PASSWORD)
    unknown = api_log_in(client, "nobody@example.com", password=NEW_PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_data() == unknown.get_data()

    page = log_in(client)
    assert page.status_code == 403
    assert "confirm your e-mail" in page.text and "new confirmation link" in page.text
    assert session_cookie_of(page) is None
    assert log_in(client, password=NEW_PASSWORD).status_code == 401
    with db.fresh_session(app) as session:
        assert session.scalars(select(AuthSession)).all() == []
        reasons = session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == "login.failed")
        ).all()
    assert [json.loads(reason)["reason"] for reason in reasons] == [
        "email_unverified",
        "invalid_credentials",
        "invalid_credentials",
        "email_unverified",
        "invalid_credentials",
    ]


def test_an_account_made_unverified_with_a_password_does_not_log_in_with_it(app, salon, clock):
    with app.app_context():
        create_user(
            app,
            tenant_id=salon.tenant_id,
            email="ann@example.com",
            role="client",
            password=PASSWORD,
            now=clock(),
            email_verified=False,
        )
    assert api_log_in(app.test_client()).status_code == 403
    assert log_in(app.test_client()).status_code == 403


# --- the owner turns client accounts on and off --------------------------------------------------


def business_form(client, **changes):
    """The business page's form as loaded (its checkbox ticked or not), with ``changes``."""
    page = client.get("/admin/salon/business")
    assert page.status_code == 200
    fields = dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', page.text))
    ticked = re.search(r'<input[^>]*checked[^>]*name="client_accounts"', page.text) or re.search(
        r'<input[^>]*name="client_accounts"[^>]*checked', page.text
    )
    fields.pop("client_accounts", None)
    if ticked:
        fields["client_accounts"] = "y"
    fields["name"] = "Salon"
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}


def test_the_owner_switches_client_accounts_on_the_business_page(app, business, clock):
    with app.app_context():
        create_user(
            app,
            tenant_id=business.tenant_id,
            email="owner@example.com",
            role="owner",
            password="correct horse battery",
            now=clock(),
        )
    owner = log_in_staff(app, "owner@example.com")
    visitor = app.test_client()
    assert "Client accounts" in owner.get("/admin/salon/business").text
    assert visitor.get(f"{ACCOUNT}/register").status_code == 404

    on = owner.post("/admin/salon/business", data=business_form(owner, client_accounts="y"))
    assert on.status_code == 302
    assert visitor.get(f"{ACCOUNT}/register").status_code == 200
    assert api_sign_up(visitor).status_code == 201
    # Saved again unchanged, it stays on.
    assert owner.post("/admin/salon/business", data=business_form(owner)).status_code == 302
    assert visitor.get(f"{ACCOUNT}/register").status_code == 200

    path = link_in(mails(app, clock)[-1], "verify")
    assert confirm(visitor, path).status_code == 302  # Ann is signed in
    off = owner.post("/admin/salon/business", data=business_form(owner, client_accounts=None))
    assert off.status_code == 302
    assert visitor.get(f"{ACCOUNT}/register").status_code == 404
    assert api_sign_up(visitor, "bob@example.com").status_code == 404
    with db.fresh_session(app) as session:
        ends = session.scalars(
            select(AuthSession.revoked_at).join(User).where(User.role == "client")
        ).all()
        changes = session.scalars(
            select(AuditEntry.details)
            .where(AuditEntry.action == "business.updated")
            .order_by(AuditEntry.id)
        ).all()
    assert len(ends) == 1 and ends[0] is not None  # Ann, signed in, was signed out
    assert visitor.get(f"{ACCOUNT}/").status_code == 404
    switches = [json.loads(entry) for entry in changes if "client_accounts" in entry]
    assert switches == [
        {"client_accounts": True},
        {"client_accounts": False, "client_sessions_ended": 1},
    ]


def test_the_owner_switches_client_accounts_with_the_cli(app, business, clock, bookwell_cli):
    visitor = app.test_client()
    done = bookwell_cli("tenants", "set", "salon", "--client-accounts")
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "salon: client accounts on (was off)"
    assert api_sign_up(visitor).status_code == 201

    again = bookwell_cli("tenants", "set", "salon", "--client-accounts")
    assert again.exit_code == 0
    assert again.output.strip() == "salon: client accounts already on; nothing changed"

    off = bookwell_cli("tenants", "set", "salon", "--no-client-accounts")
    assert off.exit_code == 0 and off.output.strip() == "salon: client accounts off (was on)"
    assert api_sign_up(visitor, "bob@example.com").status_code == 404
    assert visitor.get(f"{ACCOUNT}/login").status_code == 404

    nothing = bookwell_cli("tenants", "set", "salon")
    assert nothing.exit_code == 2 and "nothing to set" in nothing.output
    unknown = bookwell_cli("tenants", "set", "nowhere", "--client-accounts")
    assert unknown.exit_code == 1 and "no tenant with the slug 'nowhere'" in unknown.output
    with db.fresh_session(app) as session:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "business.updated")
            .order_by(AuditEntry.id)
        ).all()
    assert [(entry.actor, json.loads(entry.details)) for entry in entries] == [
        ("cli", {"client_accounts": True}),
        ("cli", {"client_accounts": False, "client_sessions_ended": 0}),
    ]
