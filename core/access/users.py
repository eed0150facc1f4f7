"""Users: creating them, and setting passwords under core's rules and the plugins'."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from flask import Flask
from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from bookwell.core import audit
from bookwell.core.access import account_mail, passwords, sessions, support
from bookwell.core.context import make_context, request_info
from bookwell.core.foundation import text
from bookwell.core.mail import dispatch
from bookwell.core.pluginhost.host import PluginFailed, Refused, host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    PLATFORM_REALM,
    STAFF_ROLES,
    Provider,
    Role,
    Tenant,
    User,
)
from bookwell.hooks import UserInfo

log = logging.getLogger("bookwell.accounts")


class UserError(ValueError):
    """``fields`` maps an input to everything wrong with it (a password may break several rules)."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


def realm_of(tenant_id: int | None) -> str:
    return PLATFORM_REALM if tenant_id is None else f"tenant:{tenant_id}"


def canonical_email(email: str) -> str:
    return email.strip().casefold()


def email_problem(email: str) -> str | None:
    """What makes ``email`` unfit to log in with, or ``None``. The one rule for addresses:
    email-validator's syntax check, without looking the domain up (no DNS on the request path),
    which refuses the special-use domains nobody can receive mail at (``.test``, ``.local``,
    ``.localhost``, ``.invalid``, ``.onion``, ``.arpa``) and allows ``.example`` and
    ``example.com``. The login pages (WTForms' ``Email``) and the API (pydantic's ``EmailStr``)
    run the same check, so an account is never made for an address its login would refuse."""
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        return str(error)
    return None


def checked_identity(name: str, email: str) -> str:
    """The canonical address of a new account named ``name``; raises :class:`UserError` when
    the name breaks the text standard or the address is not one its login would accept. Every
    way of making an account (the CLI, the staff pages, a client's sign-up) asks this."""
    if not text.is_single_line(name):
        refusal = text.SINGLE_LINE_MESSAGE
        raise UserError(f"the name: {refusal}", {"name": [refusal]})
    address = canonical_email(email)
    problem = email_problem(address) if text.is_single_line(address) else text.SINGLE_LINE_MESSAGE
    if problem is not None:
        message = f"{address!r} is not an address one can log in with: {problem}"
        raise UserError(message, {"email": [problem]})
    return address


def find_user(session: Session, tenant_id: int | None, email: str) -> User | None:
    return session.scalar(
        select(User).where(User.realm == realm_of(tenant_id), User.email == canonical_email(email))
    )


def password_problems(
    app: Flask,
    session: Session,
    tenant: Tenant | None,
    password: str,
    now: datetime,
    user: User | UserInfo | None = None,
) -> list[str]:
    """Every rule the password breaks: core's, then every enabled plugin's (all of them, so the
    person fixes everything at once). ``user`` is the account whose password it is, which
    plugins see as ``ctx.actor``; an account still to be made is a :class:`UserInfo` with id 0.
    Platform support's passwords are held to the instance's support plugins."""
    problems = passwords.core_problems(password)
    host = host_of(app)
    if tenant is None:
        found = support.support_plugins(app)
        if not (found.enabled or found.broken):
            return problems
        ctx = support.context(app, now, actor=user)
        enabled, broken = found.enabled, found.broken
    else:
        ctx = make_context(tenant, now, actor=user)
        enabled = host.enabled_for(session, tenant.id)
        broken = host.broken_enabled_for(session, tenant.id)
    try:
        host.guard("before_password_set", ctx, enabled, broken, password=password)
    except Refused as refused:
        problems += [item.refusal.message for item in refused.refusals]
    return problems


def password_rules(
    app: Flask,
    session: Session,
    tenant: Tenant | None,
    now: datetime,
    user: User | UserInfo | None = None,
) -> list[str]:
    """The rules a new password must meet, in words, to show beside a password field before
    anyone types: core's, then each enabled plugin's ``password_rules`` (platform support's:
    the instance's support plugins). ``user`` is whose password it is, when known.

    Only words: ``before_password_set`` still judges every password, so a plugin whose
    contribution fails (or answers something other than strings) is logged and left out here
    rather than failing the page."""
    rules = passwords.core_rules()
    host = host_of(app)
    if tenant is None:
        enabled = support.support_plugins(app).enabled
        if not enabled:
            return rules
        ctx = support.context(app, now, actor=user)
    else:
        enabled = host.enabled_for(session, tenant.id)
        ctx = make_context(tenant, now, actor=user)
    for name in sorted(enabled):
        try:
            answers = host.contributions("password_rules", ctx, {name: enabled[name]})
        except PluginFailed:
            continue  # logged, with its traceback, by the plugin host
        for _, answer in answers:
            said = list(answer) if isinstance(answer, list | tuple) else [answer]
            for rule in said:
                if isinstance(rule, str) and text.is_single_line(rule) and rule.strip():
                    if rule.strip() not in rules:
                        rules.append(rule.strip())
                else:
                    log.warning("plugin %s: password_rules answer %r left out", name, rule)
    return rules


def create_user(
    app: Flask,
    *,
    tenant_id: int | None,
    email: str,
    role: str,
    password: str | None,
    now: datetime,
    name: str = "",
    actor: str = "cli",
    email_verified: bool = True,
    provider_id: int | None = None,
) -> User:
    """Create a user; a staff or client user belongs to a tenant, a support user to none. A
    staff account may work as one of its business's providers (``provider_id``).
    Without a ``password`` the account has none it can log in with (:data:`passwords.NO_PASSWORD`)
    until one is set through a link: an invitation, or a reset."""
    if role not in {str(item) for item in Role}:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(Role)}")
    if (role == Role.SUPPORT) != (tenant_id is None):
        raise UserError("support users belong to no tenant; every other role belongs to one")
    address = checked_identity(name, email)
    reader = db.session()
    tenant = reader.get(Tenant, tenant_id) if tenant_id is not None else None
    # The account does not exist yet: plugins see what is known of it, with id 0 (no account
    # has it), so a rule may still refuse a password that holds the e-mail or the name.
    future = UserInfo(id=0, email=address, name=name, role=role, tenant_id=tenant_id)
    if password is None:
        hashed = passwords.NO_PASSWORD
    else:
        problems = password_problems(app, reader, tenant, password, now, user=future)
        if problems:
            raise UserError(
                "the password is not accepted: " + " ".join(problems), {"password": problems}
            )
        hashed = passwords.passwords(app).hash(password)
    with db.write_transaction(app) as writer:
        if find_user(writer, tenant_id, address) is not None:
            raise UserError(
                f"{address} already has an account here", {"email": [gettext("Taken.")]}
            )
        if provider_id is not None and (
            role not in {str(item) for item in STAFF_ROLES}
            or writer.scalar(
                select(Provider.id).where(
                    Provider.id == provider_id, Provider.tenant_id == tenant_id
                )
            )
            is None
        ):
            raise UserError(
                "no such provider here", {"provider_id": [gettext("Choose a provider.")]}
            )
        user = User(
            realm=realm_of(tenant_id),
            tenant_id=tenant_id,
            email=address,
            name=name,
            role=role,
            password_hash=hashed,
            email_verified_at=now if email_verified else None,
            password_changed_at=now,
            created_at=now,
            provider_id=provider_id,
        )
        writer.add(user)
        writer.flush()
        audit.record(
            writer,
            tenant_id=tenant_id,
            actor=actor,
            ip=_ip(),
            action="user.created",
            subject=f"user:{user.id}",
            details={"role": role, **({"provider_id": provider_id} if provider_id else {})},
            now=now,
        )
        return user


@dataclass(frozen=True)
class PasswordChanged:
    """What a password change ended besides the old password."""

    sessions_ended: int
    api_keys_revoked: int


def change_password(
    app: Flask, user: User, new_password: str, now: datetime, keep_session_id: int | None
) -> PasswordChanged:
    """Set a new password, end the user's other sessions and revoke every API key of theirs.

    The keys go too: a password is changed when someone else may know it, and every way in that
    the account has must end with it, sessions and keys alike (new keys are made with
    ``bookwell tokens create``). Each revoked key is audited, by its prefix. The account is
    e-mailed that its password changed (in the same transaction), so that an owner who did not
    change it learns it and can take the account back."""
    reader = db.session()
    tenant = reader.get(Tenant, user.tenant_id) if user.tenant_id is not None else None
    problems = password_problems(app, reader, tenant, new_password, now, user=user)
    if problems:
        raise UserError("the password is not accepted", {"new_password": problems})
    hashed = passwords.passwords(app).hash(new_password)
    mailer = account_mail.AccountMailer(app, tenant, now)
    with db.write_transaction(app) as writer:
        stored = writer.get(User, user.id)
        stored.password_hash, stored.password_changed_at = hashed, now
        ended = sessions.revoke_all_but(writer, user.id, keep_session_id, now)
        revoked = sessions.revoke_api_keys(writer, user.id, now)
        for key in revoked:
            audit.record(
                writer,
                tenant_id=user.tenant_id,
                actor=user.audit_label,
                ip=_ip(),
                action="api_key.revoked",
                subject=f"api_key:{key.prefix}",
                details={"user": user.id, "reason": "password_changed"},
                now=now,
            )
        audit.record(
            writer,
            tenant_id=user.tenant_id,
            actor=user.audit_label,
            ip=_ip(),
            action="user.password_changed",
            subject=f"user:{user.id}",
            # Not "api_keys_revoked": the audit trail redacts a detail named like a secret.
            details={"other_sessions_ended": ended, "api_access_revoked": len(revoked)},
            now=now,
        )
        account_mail.password_changed(mailer, writer, stored)
    dispatch.kick(app)
    return PasswordChanged(sessions_ended=ended, api_keys_revoked=len(revoked))


def _ip() -> str | None:
    info = request_info()
    return info.ip if info else None


def staff_roles() -> tuple[str, ...]:
    return tuple(str(role) for role in STAFF_ROLES)
