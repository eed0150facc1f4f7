"""Accounts and the one login path: who belongs where, argon2id and its rehash, an unknown e-mail
answering (and costing) like a wrong password, passwords never truncated, every password rule
asked wherever a password is set, plugin guards and challenges, and the users/demo commands."""

from __future__ import annotations

import re
import statistics
import time

import argon2
import pytest
from click.testing import CliRunner
from client_signups import accounts_on, confirm, newest_link, sign_up, signed_up
from conftest import CHEAP_HASHING
from sqlalchemy import func, select, update

from bookwell.core import create_app
from bookwell.core.access import users
from bookwell.core.booking.tenants import create_tenant
from bookwell.core.cli import instance as cli_instance
from bookwell.core.cli.root import main
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, AuthSession, User
from bookwell.hooks import Manifest, Refusal, Setting, hookimpl

PASSWORD = "correct horse battery staple"
REALISTIC_HASHING = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}


def manifest(name: str, *settings: Setting) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests", settings)


class OneTimeCode:
    """Asks for a second step: the code in its settings, answered as ``otp``."""

    MANIFEST = manifest("one-time-code", Setting("code", "str", "123456", "Code"))

    @hookimpl
    def before_login(ctx, settings):
        if ctx.login.answers.get("otp") == settings["code"]:
            return None
        return Refusal(
            "Enter the 6-digit code.",
            code="otp_required",
            status=401,
            field="otp",
            challenge={"field": "otp", "label": "6-digit code"},
        )


class Lockout:
    """Refuses every login with a refusal of its own, answering the status in its settings."""

    MANIFEST = manifest("lockout", Setting("status", "int", 403, "Status", min=400, max=599))

    @hookimpl
    def before_login(settings):
        return Refusal("This account is locked.", code="locked_out", status=settings["status"])


class CrashingLoginGuard:
    MANIFEST = manifest("crashing-login-guard")

    @hookimpl
    def before_login(ctx):
        raise RuntimeError("bug in a login guard")


class Recorder:
    """Writes down every login and password hook it is asked, in order."""

    MANIFEST = manifest("recorder")
    heard: list = []

    @hookimpl
    def before_login(ctx):
        Recorder.heard.append(("before_login", ctx.login.email, ctx.login.user_id))

    @hookimpl
    def after_login(ctx):
        Recorder.heard.append(("after_login", ctx.login.email, ctx.login.user_id))

    @hookimpl
    def after_login_failed(ctx, reason):
        Recorder.heard.append(("after_login_failed", ctx.login.email, reason))

    @hookimpl
    def before_password_set(ctx, password):
        # At a login, the password just typed is held to the current rules (ctx.login set).
        hook = "before_password_set" if ctx.login is None else "before_password_set at login"
        Recorder.heard.append((hook, ctx.tenant.slug, password))


class NeedsDigit:
    MANIFEST = manifest("needs-digit")

    @hookimpl
    def before_password_set(password):
        if not any(character.isdigit() for character in password):
            return Refusal("needs a digit", code="weak_password", field="password")


class NeedsUppercase:
    MANIFEST = manifest("needs-uppercase")

    @hookimpl
    def before_password_set(password):
        if not any(character.isupper() for character in password):
            return Refusal("needs an uppercase letter", code="weak_password", field="password")


PLUGINS = [OneTimeCode, Lockout, CrashingLoginGuard, Recorder, NeedsDigit, NeedsUppercase]


@pytest.fixture
def app(make_app):
    """The one app of a test, with this file's plugins installed (each tenant enables its own)."""
    Recorder.heard.clear()
    return make_app(EXTRA_PLUGINS=PLUGINS)


@pytest.fixture
def enable(app, business, clock):
    def switch_on(name, tenant_id=None, **settings):
        with app.app_context():
            plugin_changes.enable(app, tenant_id or business.tenant_id, name, settings, clock())

    return switch_on


@pytest.fixture
def run(tmp_path, database_url, clock, monkeypatch):
    """``bookwell --instance TMP ...`` in-process on the test's database, built with cheap
    hashing, the test's clock and this file's plugins (as an instance would load them)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    for variable in ("BOOKWELL_SECRET_KEY", "BOOKWELL_INSTANCE"):
        monkeypatch.delenv(variable, raising=False)
    built = []

    def build(config=None):
        built.append(
            create_app(
                {
                    **(config or {}),
                    "PASSWORD_HASHING": CHEAP_HASHING,
                    "CLOCK": clock,
                    "EXTRA_PLUGINS": PLUGINS,
                }
            )
        )
        return built[-1]

    monkeypatch.setattr(cli_instance, "create_app", build)

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(
            main, ["--instance", str(tmp_path / "instance"), *args], input=input
        )

    yield invoke
    for app in built:
        db.engine_of(app).dispose()


def add_user(app, clock, email, role, *, tenant_id, password=PASSWORD) -> int:
    with app.app_context():
        return users.create_user(
            app, tenant_id=tenant_id, email=email, role=role, password=password, now=clock()
        ).id


def add_tenant(app, clock, slug: str) -> int:
    with db.write_transaction(app) as session:
        return create_tenant(
            session, slug, name=slug.title(), timezone="Europe/Paris", now=clock()
        ).id


def log_in(client, email, password=PASSWORD, slug="salon", **extra):
    body = {"email": email, "password": password, **extra}
    return client.post(f"/api/v1/tenants/{slug}/auth/login", json=body)


def user_row(app, email, tenant_id) -> User:
    realm = "platform" if tenant_id is None else f"tenant:{tenant_id}"
    with db.fresh_session(app) as session:
        return session.scalars(select(User).where(User.email == email, User.realm == realm)).one()


def stored_hash(app, email, tenant_id) -> str:
    return user_row(app, email, tenant_id).password_hash


def count(app, model, *where) -> int:
    with db.engine_of(app).connect() as connection:
        return connection.scalar(select(func.count()).select_from(model).where(*where))


# --- who belongs where --------------------------------------------------------------------------


def test_staff_and_clients_belong_to_one_tenant_and_support_to_none(app, business, clock):
    for role in ("owner", "manager", "staff", "receptionist", "client"):
        add_user(app, clock, f"{role}@example.com", role, tenant_id=business.tenant_id)
        row = user_row(app, f"{role}@example.com", business.tenant_id)
        assert (row.role, row.tenant_id, row.realm) == (
            role,
            business.tenant_id,
            f"tenant:{business.tenant_id}",
        )
    add_user(app, clock, "help@bookwell.example", "support", tenant_id=None)
    support = user_row(app, "help@bookwell.example", None)
    assert (support.role, support.tenant_id, support.realm) == ("support", None, "platform")

    with pytest.raises(users.UserError):
        add_user(app, clock, "stray@example.com", "owner", tenant_id=None)
    with pytest.raises(users.UserError):
        add_user(app, clock, "inside@bookwell.example", "support", tenant_id=business.tenant_id)
    with pytest.raises(users.UserError, match="unknown role"):
        add_user(app, clock, "wizard@example.com", "wizard", tenant_id=business.tenant_id)


def test_the_email_is_case_folded_and_unique_within_a_tenant_only(app, business, clock):
    spa = add_tenant(app, clock, "spa")
    add_user(app, clock, "  Ann.Owner@Example.COM ", "owner", tenant_id=business.tenant_id)
    assert user_row(app, "ann.owner@example.com", business.tenant_id).email == (
        "ann.owner@example.com"
    )
    with pytest.raises(users.UserError, match="already has an account"):
        add_user(app, clock, "ANN.OWNER@example.com", "manager", tenant_id=business.tenant_id)
    # The same address is another person in another tenant, with a password of their own.
    add_user(app, clock, "ann.owner@example.com", "owner", tenant_id=spa, password="spa password 1")

    client = app.test_client()
    salon_login = log_in(client, "ANN.OWNER@EXAMPLE.COM")
    assert salon_login.status_code == 200
    assert salon_login.json["scope"] == "tenant:salon"
    assert log_in(client, "ann.owner@example.com", "spa password 1", slug="spa").status_code == 200
    assert log_in(client, "ann.owner@example.com", "spa password 1").status_code == 401
    assert log_in(client, "ann.owner@example.com", slug="spa").status_code == 401


def test_support_users_cannot_log_in_at_a_tenant(app, business, clock):
    add_user(app, clock, "help@bookwell.example", "support", tenant_id=None)
    response = log_in(app.test_client(), "help@bookwell.example")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_credentials"


# --- argon2id -----------------------------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes_only(app, business, clock):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    stored = stored_hash(app, "owner@example.com", business.tenant_id)
    assert stored.startswith("$argon2id$")
    assert argon2.extract_parameters(stored).type is argon2.Type.ID
    assert PASSWORD not in stored


def test_a_login_rehashes_a_password_hashed_under_older_parameters(app, make_app, business, clock):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    before = stored_hash(app, "owner@example.com", business.tenant_id)
    assert argon2.extract_parameters(before).time_cost == CHEAP_HASHING["time_cost"]

    stronger = make_app(EXTRA_PLUGINS=PLUGINS, PASSWORD_HASHING={**CHEAP_HASHING, "time_cost": 2})
    client = stronger.test_client()
    assert log_in(client, "owner@example.com", "not the password").status_code == 401
    assert stored_hash(app, "owner@example.com", business.tenant_id) == before  # not on failure

    assert log_in(client, "owner@example.com").status_code == 200
    after = stored_hash(app, "owner@example.com", business.tenant_id)
    assert after != before
    parameters = argon2.extract_parameters(after)
    assert (parameters.type, parameters.time_cost, parameters.memory_cost) == (
        argon2.Type.ID,
        2,
        CHEAP_HASHING["memory_cost"],
    )
    # Still the same password; and up to date now, so the next login leaves the hash alone.
    assert log_in(client, "owner@example.com").status_code == 200
    assert stored_hash(app, "owner@example.com", business.tenant_id) == after
    assert log_in(client, "owner@example.com", "not the password").status_code == 401


def test_a_login_under_unchanged_parameters_keeps_the_hash(app, business, clock):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    before = stored_hash(app, "owner@example.com", business.tenant_id)
    assert log_in(app.test_client(), "owner@example.com").status_code == 200
    assert stored_hash(app, "owner@example.com", business.tenant_id) == before


def test_an_unknown_email_gets_exactly_the_answer_of_a_wrong_password(app, business, clock):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    add_user(app, clock, "gone@example.com", "staff", tenant_id=business.tenant_id)
    with db.write_transaction(app) as session:
        session.execute(update(User).where(User.email == "gone@example.com").values(active=False))
    client = app.test_client()
    wrong = log_in(client, "owner@example.com", "not the password")
    unknown = log_in(client, "nobody@example.com", "not the password")
    inactive = log_in(client, "gone@example.com")  # the right password of a disabled account
    assert wrong.status_code == unknown.status_code == inactive.status_code == 401
    assert wrong.get_data() == unknown.get_data() == inactive.get_data()
    for response in (unknown, inactive):
        assert sorted(response.headers.items()) == sorted(wrong.headers.items())
    assert wrong.json == {
        "error": {"code": "invalid_credentials", "message": wrong.json["error"]["message"]}
    }


class CountingHasher:
    """Stands in for argon2's PasswordHasher and notes which hash each verify was against."""

    def __init__(self, inner) -> None:
        self.inner, self.verified = inner, []

    def verify(self, hashed, password):
        self.verified.append(hashed)
        return self.inner.verify(hashed, password)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_an_unknown_email_is_verified_against_a_decoy_hash(app, business, clock):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    extension = app.extensions["bookwell.passwords"]
    counting = CountingHasher(extension.hasher)
    extension.hasher = counting
    client = app.test_client()

    assert log_in(client, "nobody@example.com").status_code == 401
    assert len(counting.verified) == 1
    assert counting.verified[0] == extension.decoy_hash
    assert counting.verified[0].startswith("$argon2id$")

    counting.verified.clear()
    assert log_in(client, "owner@example.com", "not the password").status_code == 401
    assert counting.verified == [stored_hash(app, "owner@example.com", business.tenant_id)]


def test_an_unknown_email_costs_what_a_wrong_password_costs(make_app, clock):
    # A property of "the decoy is really verified", not a speed limit: without the decoy, the
    # unknown e-mail would answer in a small fraction of an argon2 verification.
    app = make_app(EXTRA_PLUGINS=PLUGINS, PASSWORD_HASHING=REALISTIC_HASHING)
    tenant_id = add_tenant(app, clock, "salon")
    add_user(app, clock, "owner@example.com", "owner", tenant_id=tenant_id)
    client = app.test_client()

    def timed(email: str) -> float:
        started = time.perf_counter()
        response = log_in(client, email, "not the password at all")
        elapsed = time.perf_counter() - started
        assert response.status_code == 401
        return elapsed

    timed("nobody@example.com")  # warm both paths (the decoy hash is made on first use)
    timed("owner@example.com")
    unknown, wrong = [], []
    for _ in range(15):
        unknown.append(timed("nobody@example.com"))
        wrong.append(timed("owner@example.com"))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 <= ratio <= 2.0, (ratio, unknown, wrong)


# --- passwords: length, Unicode, never truncated ------------------------------------------------


@pytest.fixture
def accounts(app, business):
    """The business takes client accounts (sign-up is a 404 otherwise)."""
    accounts_on(app, business.tenant_id)


def test_a_64_character_unicode_password_with_spaces_is_kept_whole(app, business, accounts):
    password = "  Ça va très bien — 東京の夜は静か 🌙 naïve façade, Straße 42  "
    password += "x" * (64 - len(password))
    assert len(password) == 64
    client = app.test_client()
    signed_up(app, client, "ann@example.com", password)
    assert log_in(client, "ann@example.com", password).status_code == 200
    for near_miss in (password.strip(), password[:-1], password[:63] + "y", password.upper()):
        assert log_in(client, "ann@example.com", near_miss).status_code == 401


def test_a_long_password_is_never_truncated(app, business, clock):
    first_72 = "the first seventy-two characters of this long passphrase are the same !!"
    assert len(first_72) == 72
    password = first_72 + "and then twenty-eight more."
    password += "." * (100 - len(password))
    assert len(password) == 100
    add_user(
        app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id, password=password
    )
    client = app.test_client()
    assert log_in(client, "owner@example.com", first_72 + "x" * 28).status_code == 401
    assert log_in(client, "owner@example.com", first_72).status_code == 401
    assert log_in(client, "owner@example.com", password[:99]).status_code == 401
    assert log_in(client, "owner@example.com", password).status_code == 200


def test_a_very_long_password_is_accepted(app, business, accounts):
    password = "a long passphrase, " * 50  # 950 characters
    client = app.test_client()
    signed_up(app, client, "ann@example.com", password)
    assert log_in(client, "ann@example.com", password).status_code == 200
    assert log_in(client, "ann@example.com", password[:-1]).status_code == 401


# --- client sign-up and every password rule -----------------------------------------------------


def test_a_client_signs_up_and_logs_in_as_a_client(app, business, accounts):
    client = app.test_client()
    response = sign_up(client, "Ann@Example.com", PASSWORD)
    assert response.status_code == 201
    assert response.json["email"] == "ann@example.com"
    waiting = log_in(client, "ann@example.com")
    assert waiting.status_code == 403  # the address is not confirmed yet
    assert waiting.json["error"]["code"] == "email_unverified"
    confirm(app.test_client(), newest_link(app, "ann@example.com"), PASSWORD)
    login = log_in(client, "ann@example.com")
    assert login.status_code == 200
    assert login.json["role"] == "client"
    assert user_row(app, "ann@example.com", business.tenant_id).role == "client"


def test_a_refused_password_lists_every_rule_it_breaks(app, business, enable, accounts):
    enable("needs-digit")
    enable("needs-uppercase")
    client = app.test_client()

    response = sign_up(client, "ann@example.com", "short")
    assert response.status_code == 422
    problems = response.json["error"]["fields"]["password"]
    assert problems[0] == "Use at least 8 characters."
    assert sorted(problems[1:]) == ["needs a digit", "needs an uppercase letter"]

    response = sign_up(client, "ann@example.com", "long enough but plain")
    assert response.status_code == 422
    assert sorted(response.json["error"]["fields"]["password"]) == [
        "needs a digit",
        "needs an uppercase letter",
    ]

    response = sign_up(client, "ann@example.com", "Long enough but plain")
    assert response.json["error"]["fields"]["password"] == ["needs a digit"]
    assert count(app, User) == 0

    assert sign_up(client, "ann@example.com", "Long enough and 1 digit").status_code == 201
    assert count(app, User) == 1


@pytest.mark.parametrize(
    ("password", "length_rule"),
    [
        ("", "Use at least 8 characters."),
        ("x" * 1025, "Use at most 1024 characters."),
        ("x" * 5000, "Use at most 1024 characters."),
    ],
    ids=["empty", "1025-characters", "5000-characters"],
)
def test_a_password_of_any_length_lists_every_rule_it_breaks(
    app, business, accounts, enable, password, length_rule
):
    enable("needs-digit")
    response = sign_up(app.test_client(), "ann@example.com", password)
    assert response.status_code == 422
    problems = response.json["error"]["fields"]["password"]
    assert isinstance(problems, list), problems
    assert sorted(problems) == sorted([length_rule, "needs a digit"])
    assert count(app, User) == 0


@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\n", "\u0085", "\u2028"], ids=repr)
def test_a_new_password_with_a_control_character_is_refused(app, business, accounts, bad):
    response = sign_up(app.test_client(), "ann@example.com", f"long passphrase {bad} yes")
    assert response.status_code == 422
    assert response.json["error"]["fields"]["password"] == [
        "Use no control characters or line breaks."
    ]
    assert count(app, User) == 0


def test_signing_up_with_a_taken_email_answers_like_a_new_account_and_changes_nothing(
    app, business, accounts, clock
):
    add_user(app, clock, "ann@example.com", "client", tenant_id=business.tenant_id)
    before = stored_hash(app, "ann@example.com", business.tenant_id)
    client = app.test_client()
    taken = sign_up(client, "ANN@example.com", "another password 2")
    fresh = sign_up(client, "bob@example.com", "another password 2")
    assert taken.status_code == fresh.status_code == 201
    assert taken.json["status"] == fresh.json["status"]
    assert stored_hash(app, "ann@example.com", business.tenant_id) == before
    assert log_in(client, "ann@example.com", "another password 2").status_code == 401
    # Ann is told someone asked, with a way back in; the link is a reset link.
    assert "/account/reset/" in newest_link(app, "ann@example.com", kind="reset")


def test_before_password_set_is_asked_at_sign_up_users_create_and_password_change(
    app, business, accounts, enable, run
):
    enable("recorder")
    client = app.test_client()
    assert sign_up(client, "ann@example.com", "sign-up password").status_code == 201
    created = run(
        "users", "create", "--tenant", "salon", "--email", "mia@example.com", "--role", "staff",
        "--password-stdin", input="cli password\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    token = log_in(client, "mia@example.com", "cli password").json["token"]
    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": "cli password", "new_password": "changed password"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert changed.status_code == 200, changed.json
    asked = [entry for entry in Recorder.heard if entry[0].startswith("before_password_set")]
    assert asked == [
        ("before_password_set", "salon", "sign-up password"),
        ("before_password_set", "salon", "cli password"),
        ("before_password_set at login", "salon", "cli password"),
        ("before_password_set", "salon", "changed password"),
    ]


def test_a_password_rule_stops_the_password_wherever_it_is_set(
    app, business, accounts, clock, enable, run
):
    add_user(
        app,
        clock,
        "owner@example.com",
        "owner",
        tenant_id=business.tenant_id,
        password="Owner pass 1",
    )
    enable("needs-digit")
    client = app.test_client()

    assert sign_up(client, "ann@example.com", "no digits here").status_code == 422

    created = run(
        "users", "create", "--tenant", "salon", "--email", "mia@example.com", "--role", "staff",
        "--password-stdin", input="no digits here\n",
    )  # fmt: skip
    assert created.exit_code != 0
    assert "needs a digit" in created.output

    token = log_in(client, "owner@example.com", "Owner pass 1").json["token"]
    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": "Owner pass 1", "new_password": "no digits here"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert changed.status_code == 422
    assert changed.json["error"]["fields"]["new_password"] == ["needs a digit"]
    assert count(app, User) == 1
    assert log_in(client, "owner@example.com", "Owner pass 1").status_code == 200


# --- the one login path -------------------------------------------------------------------------


def test_a_login_answers_a_fresh_token_its_expiry_and_its_scope(app, business, clock):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    response = log_in(app.test_client(), "owner@example.com")
    assert response.status_code == 200
    body = response.json
    assert {"token", "expires_at", "scope"} <= set(body)
    assert body["scope"] == "tenant:salon"
    assert body["token"] and PASSWORD not in body["token"]
    assert body["expires_at"] == "2027-03-01T20:00:00+00:00"  # 12 hours from now


def test_a_wrong_password_is_a_401_invalid_credentials(app, business, clock):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    response = log_in(app.test_client(), "owner@example.com", "not the password")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_credentials"
    assert "token" not in response.json
    assert count(app, AuthSession) == 0


def test_a_challenge_asks_for_a_code_and_the_login_resumes_with_the_answer(
    app, business, clock, enable
):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    enable("one-time-code", code="654321")
    client = app.test_client()

    asked = log_in(client, "owner@example.com")
    assert asked.status_code == 401
    error = asked.json["error"]
    assert error["code"] == "otp_required"
    assert error["challenge"] == {"field": "otp", "label": "6-digit code"}
    assert "token" not in asked.json

    wrong_code = log_in(client, "owner@example.com", otp="000000")
    assert wrong_code.status_code == 401
    assert wrong_code.json["error"]["code"] == "otp_required"
    assert count(app, AuthSession) == 0

    answered = log_in(client, "owner@example.com", otp="654321")
    assert answered.status_code == 200
    assert answered.json["token"]
    assert count(app, AuthSession) == 1


def test_a_challenge_is_never_offered_for_a_wrong_password(app, business, clock, enable):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    enable("one-time-code", code="654321")
    enable("recorder")
    client = app.test_client()
    for otp in ({}, {"otp": "654321"}):
        response = log_in(client, "owner@example.com", "not the password", **otp)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "invalid_credentials"
        assert "challenge" not in response.json["error"]
    assert not [entry for entry in Recorder.heard if entry[0] == "before_login"]


@pytest.mark.parametrize("status", [403, 401, 429, 400])
def test_a_login_guard_refusal_answers_401_with_the_plugins_code(
    app, business, clock, enable, status
):
    # The contract (README, "Accounts, login and the staff API"): a refused login answers 401
    # with the plugin's code, whatever status the plugin's Refusal names.
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    enable("lockout", status=status)
    response = log_in(app.test_client(), "owner@example.com")
    assert response.json["error"]["code"] == "locked_out"
    assert "challenge" not in response.json["error"]
    assert "token" not in response.json
    assert count(app, AuthSession) == 0
    assert response.status_code == 401


def test_a_crashing_login_guard_fails_closed(app, business, clock, enable):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    enable("crashing-login-guard")
    response = log_in(app.test_client(), "owner@example.com")
    assert response.status_code in (401, 503)
    assert response.json["error"]["code"] == "plugin_failed"
    assert "bug in a login guard" not in response.get_data(as_text=True)
    assert count(app, AuthSession) == 0


def test_after_login_and_after_login_failed_hear_how_each_login_ended(app, business, clock, enable):
    user_id = add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    enable("recorder")
    client = app.test_client()
    log_in(client, "nobody@example.com")
    log_in(client, "owner@example.com", "not the password")
    log_in(client, "owner@example.com")
    assert Recorder.heard == [
        ("after_login_failed", "nobody@example.com", "invalid_credentials"),
        ("after_login_failed", "owner@example.com", "invalid_credentials"),
        ("before_password_set at login", "salon", PASSWORD),
        ("before_login", "owner@example.com", user_id),
        ("after_login", "owner@example.com", user_id),
    ]

    Recorder.heard.clear()
    enable("one-time-code")
    log_in(client, "owner@example.com")
    assert ("after_login_failed", "owner@example.com", "otp_required") in Recorder.heard
    assert not [entry for entry in Recorder.heard if entry[0] == "after_login"]


def test_every_login_and_every_failure_is_audited(app, business, clock):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    client = app.test_client()
    log_in(client, "owner@example.com", "not the password")
    log_in(client, "owner@example.com")
    assert count(app, AuditEntry, AuditEntry.action == "login.failed") == 1
    assert count(app, AuditEntry, AuditEntry.action == "login.succeeded") == 1
    with db.engine_of(app).connect() as connection:
        details = connection.scalars(select(AuditEntry.details)).all()
    assert not any(PASSWORD in text or "not the password" in text for text in details)


# --- the users and demo commands ----------------------------------------------------------------


def test_users_create_makes_a_tenant_user_from_a_password_on_stdin(app, business, run):
    result = run(
        "users", "create", "--tenant", "salon", "--email", "Mia@Example.com",
        "--role", "manager", "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    row = user_row(app, "mia@example.com", business.tenant_id)
    assert (row.role, row.email) == ("manager", "mia@example.com")
    login = log_in(app.test_client(), "mia@example.com")
    assert login.status_code == 200
    assert login.json["role"] == "manager"


def test_users_create_keeps_a_unicode_password_with_spaces_whole(app, business, run):
    password = "  mot de passe très sûr — 東京 🌙 with spaces inside and all around   "
    assert len(password) >= 64
    result = run(
        "users", "create", "--tenant", "salon", "--email", "mia@example.com", "--role", "staff",
        "--password-stdin", input=password + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    client = app.test_client()
    assert log_in(client, "mia@example.com", password).status_code == 200
    assert log_in(client, "mia@example.com", password.strip()).status_code == 401


def test_users_create_support_makes_a_platform_user(app, business, run):
    result = run(
        "users", "create", "--support", "--email", "help@bookwell.example", "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = user_row(app, "help@bookwell.example", None)
    assert (row.role, row.tenant_id, row.realm) == ("support", None, "platform")
    assert row.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    "arguments",
    [
        ["--tenant", "salon", "--email", "x@example.com", "--role", "support"],
        ["--tenant", "salon", "--email", "x@example.com", "--role", "wizard"],
        ["--tenant", "salon", "--email", "x@example.com"],
        ["--email", "x@example.com", "--role", "owner"],
        ["--tenant", "salon", "--support", "--email", "x@example.com"],
        ["--tenant", "nowhere", "--email", "x@example.com", "--role", "owner"],
        ["--tenant", "salon", "--email", "OWNER@example.com", "--role", "staff"],
    ],
)
def test_users_create_refuses_a_wrong_role_tenant_or_taken_email(
    app, business, clock, run, arguments
):
    add_user(app, clock, "owner@example.com", "owner", tenant_id=business.tenant_id)
    result = run("users", "create", *arguments, "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code != 0
    assert count(app, User) == 1


def test_users_create_refuses_a_short_password(app, business, run):
    result = run(
        "users", "create", "--tenant", "salon", "--email", "mia@example.com", "--role", "staff",
        "--password-stdin", input="short\n",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "at least 8" in result.output
    assert count(app, User) == 0


def test_demo_creates_its_owner_and_prints_the_password_only_when_it_creates_them(run, make_app):
    first = run("demo")
    assert first.exit_code == 0, first.output
    found = re.search(r"owner login:\s+owner@example\.com / (\S+)", first.output)
    assert found, first.output
    password = found.group(1)

    second = run("demo")
    assert second.exit_code == 0, second.output
    assert "owner@example.com" in second.output
    assert password not in second.output

    app = make_app()
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(User)) == 1
    response = log_in(app.test_client(), "owner@example.com", password, slug="demo")
    assert response.status_code == 200
    assert response.json["role"] == "owner"
