"""Staff's and platform support's single-use links: a forgotten password's reset, and the
invitation a new staff member chooses their password with.

Modelled on the clients' links (:mod:`bookwell.core.access.client_accounts`), in the same table
(:class:`UserToken`, only the secret's SHA-256 stored): asking for a reset answers the same
whether or not the address has an account, an address gets at most
:data:`client_accounts.MAILS_PER_ADDRESS_PER_HOUR` account e-mails an hour, a link is used by
one conditional UPDATE (so it works once even when two requests race), and a reset ends every
session and API key of the account. A link belongs to one realm: a tenant's staff, or platform
support. Used anywhere else (another business's pages, a client's), it is unknown.

An invited account has no password (:data:`passwords.NO_PASSWORD`) until its invitation is
used; sending the invitation again closes the earlier links.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from flask import Flask
from flask_babel import gettext
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bookwell.core import audit
from bookwell.core.access import account_mail, client_accounts, passwords, users
from bookwell.core.context import request_info
from bookwell.core.mail import compose, dispatch
from bookwell.core.storage import db
from bookwell.core.storage.models import STAFF_ROLES, Role, Tenant, User, UserToken

log = logging.getLogger("bookwell.accounts")

RESET = client_accounts.RESET_PASSWORD
INVITE = "invite"
INVITATION_DAYS = 7
LIFETIMES = {RESET: timedelta(hours=1), INVITE: timedelta(days=INVITATION_DAYS)}
PATHS = {RESET: "reset", INVITE: "invite"}


def roles_of(tenant: Tenant | None) -> frozenset[str]:
    """Whose links these are: a tenant's staff, or platform support."""
    if tenant is None:
        return frozenset({str(Role.SUPPORT)})
    return frozenset(str(role) for role in STAFF_ROLES)


def has_password(user: User) -> bool:
    return user.password_hash != passwords.NO_PASSWORD


def link(app: Flask, tenant: Tenant | None, purpose: str, secret: str) -> str:
    where = "/support" if tenant is None else f"/admin/{tenant.slug}"
    return f"{account_mail.base_url(app)}{where}/{PATHS[purpose]}/{secret}"


def _realm_user(session: Session, tenant: Tenant | None, user_id: int) -> User | None:
    user = session.get(User, user_id)
    if user is None or user.realm != users.realm_of(tenant.id if tenant else None):
        return None
    if user.role not in roles_of(tenant) or not user.active:
        return None
    return user


def _well_formed(secret: str) -> bool:
    return 0 < len(secret) <= 200 and secret.isascii()


def peek(
    session: Session, tenant: Tenant | None, purpose: str, secret: str, now: datetime
) -> User | None:
    """The account of a link of this realm that is still usable, without using it. An
    invitation of an account that has a password by now is not usable."""
    if purpose not in LIFETIMES or not _well_formed(secret):
        return None
    user_id = session.scalar(
        select(UserToken.user_id).where(
            UserToken.secret_hash == client_accounts.digest(secret),
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
    )
    user = _realm_user(session, tenant, user_id) if user_id is not None else None
    if user is not None and purpose == INVITE and has_password(user):
        return None
    return user


def _consume(
    writer: Session, tenant: Tenant | None, purpose: str, secret: str, user_id: int, now: datetime
) -> bool:
    """Use the link of ``user_id`` in the caller's write transaction: whether this call did
    (exactly one of two racing callers does)."""
    result = writer.execute(
        update(UserToken)
        .where(
            UserToken.secret_hash == client_accounts.digest(secret),
            UserToken.purpose == purpose,
            UserToken.user_id == user_id,
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1 and _realm_user(writer, tenant, user_id) is not None


def _send(
    writer: Session,
    mailer: account_mail.AccountMailer,
    user: User,
    purpose: str,
    kind: str,
    **extra,
) -> bool:
    """A new link for ``user`` and its e-mail, unless the address had its hourly share of
    account mail (then nothing, and ``False``)."""
    now = mailer.now
    mailed_lately = writer.scalar(
        select(func.count())
        .select_from(UserToken)
        .where(UserToken.user_id == user.id, UserToken.created_at > now - timedelta(hours=1))
    )
    if mailed_lately >= client_accounts.MAILS_PER_ADDRESS_PER_HOUR:
        log.info("account mail for user %s not sent: its hourly limit is reached", user.id)
        return False
    secret = secrets.token_urlsafe(32)
    writer.add(
        UserToken(
            user_id=user.id,
            purpose=purpose,
            secret_hash=client_accounts.digest(secret),
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    mailer.enqueue(writer, user, kind, link(mailer.app, mailer.tenant, purpose, secret), **extra)
    return True


def _audit(writer: Session, user: User, action: str, actor: str, now: datetime, **details):
    info = request_info()
    audit.record(
        writer,
        tenant_id=user.tenant_id,
        actor=actor,
        ip=info.ip if info else None,
        action=action,
        subject=f"user:{user.id}",
        details=details or None,
        now=now,
    )


# --- forgotten password ----------------------------------------------------------------------


def request_reset(app: Flask, tenant: Tenant | None, email: str, now: datetime) -> None:
    """A reset link, only to an active account of this realm (this tenant's staff, or
    platform support); silent otherwise, so the answer tells nobody who has an account."""
    user = users.find_user(db.session(), tenant.id if tenant else None, email)
    if user is None or _realm_user(db.session(), tenant, user.id) is None:
        return
    mailer = account_mail.AccountMailer(app, tenant, now)
    with db.write_transaction(app) as writer:
        _send(writer, mailer, user, RESET, compose.ACCOUNT_RESET)
    dispatch.kick(app)


def reset_password(
    app: Flask, tenant: Tenant | None, secret: str, new_password: str, now: datetime
) -> users.PasswordChanged | None:
    """Use a reset link and set the new password, ending every session and API key of the
    account; ``None`` when the link is unusable here. Raises :class:`users.UserError` (the
    link left unused) when the password breaks a rule."""
    reader = db.session()
    user = peek(reader, tenant, RESET, secret, now)
    if user is None:
        return None
    problems = users.password_problems(app, reader, tenant, new_password, now, user=user)
    if problems:
        raise users.UserError("the password is not accepted", {"new_password": problems})
    with db.write_transaction(app) as writer:
        if not _consume(writer, tenant, RESET, secret, user.id, now):
            return None
        if not has_password(writer.get(User, user.id)):
            # An invited account whose owner chose a password through a reset: its
            # invitations are spent with it.
            _close(writer, user.id, INVITE, now)
    return users.change_password(app, user, new_password, now, keep_session_id=None)


# --- invitations -----------------------------------------------------------------------------


def _close(writer: Session, user_id: int, purpose: str, now: datetime) -> None:
    writer.execute(
        update(UserToken)
        .where(
            UserToken.user_id == user_id,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


def _invitation_values(actor: User, role: str) -> dict[str, object]:
    return {"inviter": actor.name or actor.email, "role": role, "days": INVITATION_DAYS}


def invite(
    app: Flask,
    tenant: Tenant,
    *,
    email: str,
    name: str,
    role: str,
    actor: User,
    now: datetime,
    provider_id: int | None = None,
) -> User:
    """A staff account with no password, and an e-mail inviting its owner to choose one (a
    link that works once, for :data:`INVITATION_DAYS` days); working as ``provider_id`` when
    given. Raises :class:`users.UserError` for a bad name or address, one that has an account
    here, or a provider not of this business."""
    if role not in roles_of(tenant):
        raise users.UserError(
            f"unknown staff role {role!r}", {"role": [gettext("Not a staff role.")]}
        )
    created = users.create_user(
        app,
        tenant_id=tenant.id,
        email=email,
        name=name,
        role=role,
        password=None,
        now=now,
        actor=actor.audit_label,
        provider_id=provider_id,
    )
    send_invitation(app, tenant, created, actor, now)
    return created


def send_invitation(app: Flask, tenant: Tenant, user: User, actor: User, now: datetime) -> bool:
    """(Again) e-mail ``user`` an invitation, closing the earlier ones; audited. ``False``
    when the account has chosen its password already, or its hourly mail is spent."""
    mailer = account_mail.AccountMailer(app, tenant, now)
    with db.write_transaction(app) as writer:
        stored = _realm_user(writer, tenant, user.id)
        if stored is None or has_password(stored):
            return False
        _close(writer, stored.id, INVITE, now)
        values = _invitation_values(actor, stored.role)
        if not _send(writer, mailer, stored, INVITE, compose.ACCOUNT_INVITE, **values):
            return False
        _audit(writer, stored, "user.invited", actor.audit_label, now, role=stored.role)
    dispatch.kick(app)
    return True


class _ChosenMeanwhile(Exception):
    """Rolls the use of an invitation back: its account chose a password meanwhile."""


def accept_invitation(
    app: Flask, tenant: Tenant, secret: str, password: str, now: datetime
) -> User | None:
    """Use an invitation: the account takes ``password`` (under every rule) and the link is
    spent; returns the account, or ``None`` when the link is unusable here. Raises
    :class:`users.UserError` (the link left unused) when the password breaks a rule. No
    "password changed" e-mail: this is the account's first password, chosen from its mail."""
    reader = db.session()
    user = peek(reader, tenant, INVITE, secret, now)
    if user is None:
        return None
    problems = users.password_problems(app, reader, tenant, password, now, user=user)
    if problems:
        raise users.UserError("the password is not accepted", {"new_password": problems})
    hashed = passwords.passwords(app).hash(password)
    try:
        with db.write_transaction(app) as writer:
            if not _consume(writer, tenant, INVITE, secret, user.id, now):
                return None
            # Only an account still without a password takes it: one that chose its password
            # meanwhile (through a reset) keeps it.
            taken = writer.execute(
                update(User)
                .where(User.id == user.id, User.password_hash == passwords.NO_PASSWORD)
                .values(password_hash=hashed, password_changed_at=now)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:
                raise _ChosenMeanwhile
            _close(writer, user.id, INVITE, now)
            _audit(writer, user, "user.invitation_accepted", user.audit_label, now)
    except _ChosenMeanwhile:
        return None
    # The request's read session saw the account without its password: the login that
    # follows must read it as it is now.
    reader.rollback()
    return user
