"""Client accounts on the booking pages: register with a verification link, log in, my
bookings (only through the verified e-mail), a forgotten password; single-use links that expire;
the whole feature off (404) unless the tenant turns it on."""

from __future__ import annotations

import email
import re
import threading
from email import policy
from pathlib import Path

import pytest
from conftest import booking_body, open_every_day
from sqlalchemy import select

from bookwell.core.access import client_accounts as accounts
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.mail import deliver_due
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuthSession, OutboxMessage, Tenant, User, UserToken
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


def verified_account(app, client, clock, address="ann@example.com"):
    assert register(client, address).status_code == 302
    (message,) = [m for m in mails(app, clock) if str(m["To"]).strip() == address]
    page = client.get(link_in(message, "verify"))
    assert page.status_code == 200, page.text
    return message


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
    with db.write_transaction(app) as session:
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
    assert "Your e-mail address is confirmed" in client.get(path).text

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
    upcoming, _, earlier = listing.text.partition("<h2>Past</h2>")
    assert mine in upcoming and past in earlier
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
    # Asking again sends a fresh link that works.
    clock.advance(minutes=1)
    assert post_form(client, f"{ACCOUNT}/resend", email="ann@example.com").status_code == 302
    fresh = mails(app, clock)[-1]
    assert client.get(link_in(fresh, "verify")).status_code == 200
    assert log_in(client).status_code == 302


def test_registering_an_existing_address_sends_nothing_and_answers_the_same(
    app, client, salon, clock
):
    first = register(client)
    second = register(client, "ANN@example.com", "a different long password")
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert len(mails(app, clock)) == 1


def test_register_shows_field_errors(app, client, salon):
    page = register(client, "not-an-address", "short")
    assert page.status_code == 422
    assert "valid e-mail" in page.text
    page = register(client, "ann@example.com", "short")
    assert page.status_code == 422
    assert "at least" in page.text


def test_only_clients_of_this_tenant_log_in_here(app, client, salon, clock):
    from bookwell.core.access.users import create_user

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
    from bookwell.core.access.users import create_user

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
    with db.write_transaction(app) as writer:
        secret = accounts.issue(writer, writer.get(User, user_id), accounts.VERIFY_EMAIL, clock())
    with db.fresh_session(app) as session:
        (row,) = session.scalars(select(UserToken)).all()
        assert row.secret_hash == accounts.digest(secret) and secret not in row.secret_hash
        tenant = session.get(Tenant, salon.tenant_id)
        session.expunge(tenant)

    results = []

    def use():
        with app.app_context():
            results.append(accounts.verify_email(app, tenant, secret, clock()))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=lambda value: value is None) == [user_id, None, None, None]
    with db.fresh_session(app) as session:
        assert session.get(User, user_id).email_verified_at is not None


def test_api_sign_up_sends_the_verification_mail_once(app, client, salon, clock):
    body = {"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}
    first = client.post("/api/v1/tenants/salon/clients", json=body)
    second = client.post("/api/v1/tenants/salon/clients", json={**body, "email": "ANN@example.com"})
    assert first.status_code == second.status_code == 201
    assert first.json == second.json
    (message,) = mails(app, clock)
    assert client.get(link_in(message, "verify")).status_code == 200
    assert log_in(client).status_code == 302


# --- the gate and CSRF -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/register", "/login", "/", "/forgot", "/resend", "/verify/abc", "/reset/abc"]
)
def test_pages_are_404_unless_the_tenant_turns_accounts_on(client, business, path):
    assert client.get(ACCOUNT + path).status_code == 404


def test_forms_need_the_csrf_token(app, client, salon, clock):
    data = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}
    assert client.post(f"{ACCOUNT}/register", data=data).status_code in (400, 422)
    assert client.post(f"{ACCOUNT}/forgot", data={"email": "ann@example.com"}).status_code in (
        400,
        422,
    )
    assert mails(app, clock) == []
    verified_account(app, client, clock)
    login = client.post(f"{ACCOUNT}/login", data={"email": "ann@example.com", "password": PASSWORD})
    assert login.status_code in (400, 422)
    assert client.get(f"{ACCOUNT}/").status_code == 302


def test_the_pages_have_no_inline_code(app, client, salon, clock):
    verified_account(app, client, clock)
    log_in(client)
    for path in ["/register", "/login", "/forgot", "/resend", "/"]:
        text = client.get(ACCOUNT + path).text.lower()
        assert "<script" not in text and "<style" not in text and " style=" not in text
        assert re.search(r"\son[a-z]+=", text) is None


def test_logins_are_rate_limited(make_app, salon, clock):
    limited = make_app(MAIL_DELIVERY="manual", BASE_URL=BASE_URL, RATE_LIMITS="login=2/minute")
    browser = limited.test_client()
    answers = [log_in(browser, password="wrong password!!").status_code for _ in range(3)]
    assert answers == [401, 401, 429]
    assert browser.get(f"{ACCOUNT}/login").status_code == 200  # GETs are not counted


def test_a_reset_link_also_confirms_an_unconfirmed_address(app, client, salon, clock):
    from bookwell.core.storage.models import AuditEntry

    register(client)
    post_form(client, f"{ACCOUNT}/forgot", email="ann@example.com")
    path = link_in(mails(app, clock)[-1], "reset")
    assert post_form(client, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD).status_code == 200
    assert log_in(client, password=NEW_PASSWORD).status_code == 302
    with db.fresh_session(app) as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert "user.email_verified" in actions and "user.password_changed" in actions


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
