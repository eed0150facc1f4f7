"""The one login path, for the pages and the API alike.

First every enabled plugin's ``before_password_check`` guard, then the password (an unknown
e-mail costs and answers exactly as a wrong password; a refusal before the password is checked
costs one argon2 verification too, so no answer is quicker than another), then every
``before_login`` guard, which may ask for a further step (a ``challenge``; the caller repeats the
login with the answers) or let the login through with a restricted scope (``grant_scope``). Then
a fresh session, ``after_login``, and the audit. A refusal runs ``after_login_failed`` with the
reason (where a plugin counts failures, in its own transaction).

Once the password is found right, every ``before_password_set`` guard is asked about it too
(``ctx.login`` set, so a plugin can tell a login from a new password): a password the current
rules refuse must be changed, so the login is restricted to ``password_change``
(``password_change_required``). That restriction comes before any a ``before_login`` guard
grants, since changing the password asks those guards again; a guard that cannot run refuses the
login (``plugin_failed``), as at every door.

A tenant's logins run its enabled plugins; platform support's run the instance-level set the
operator configures (:mod:`bookwell.core.access.support`), with ``ctx.tenant`` ``None``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from flask import Flask
from flask_babel import gettext
from sqlalchemy import update
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from bookwell.core import audit
from bookwell.core.access import client_accounts, passwords, sessions, support
from bookwell.core.access.users import canonical_email, find_user
from bookwell.core.context import make_context, request_info
from bookwell.core.pluginhost.host import PluginRefusal, Refused, host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import PLATFORM_REALM, AuthSession, Role, Tenant, User
from bookwell.hooks import Context, LoginAttempt

log = logging.getLogger("bookwell.login")

INVALID_CREDENTIALS = "invalid_credentials"
EMAIL_UNVERIFIED = "email_unverified"
PLUGIN_FAILED = "plugin_failed"
# The scope core itself opens a route to: changing one's password (POST /api/v1/auth/password).
PASSWORD_CHANGE = "password_change"  # noqa: S105 - a scope's name, not a password
PASSWORD_CHANGE_REQUIRED = "password_change_required"  # noqa: S105 - a refusal's code
# Where each side's change-password page is: a browser restricted to PASSWORD_CHANGE goes there.
CHANGE_PASSWORD_PAGES = {
    "staff": "/admin/{slug}/password",
    "client": "/book/{slug}/account/password",
    "support": "/support/password",
}
# A restricted session stores "<scope>:<code>" in ``auth_sessions.scope`` (40 characters), so
# that every route it may not open answers 403 with the code of the refusal that restricted it.
_WORD = re.compile(r"[a-z][a-z0-9_]*")
SCOPE_COLUMN_LENGTH = 40
# A page's path: printable ASCII, no query, fragment, backslash or space.
_LOCAL_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")


class LoginRefused(Exception):
    """The login ends here. ``refusals`` are the guards' (empty for a wrong password); a
    refused login answers 401 whatever status a guard named, unless a check could not run at
    all (``plugin_failed``, 503: the service's fault, not the user's)."""

    def __init__(
        self,
        code: str,
        message: str,
        challenge: Mapping[str, Any] | None = None,
        refusals: list[PluginRefusal] | tuple[PluginRefusal, ...] = (),
        status: int = 401,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.challenge = code, message, challenge
        self.refusals, self.status = list(refusals), status
        # With a challenge: the restriction the password already earned (a password the rules
        # refuse), which the further step must keep, since it will not see the password again.
        self.carried: Grant | None = None


@dataclass(frozen=True)
class Grant:
    """A login let through with a restricted scope: every ``before_login`` refusal carried a
    ``grant_scope``, and the first one's scope and code are the session's."""

    scope: str
    code: str
    message: str
    details: Mapping[str, Any] | None
    refusals: tuple[PluginRefusal, ...]
    # The path of the page where a browser does what the scope asks (``Refusal.continue_at``).
    continue_at: str | None = None

    @property
    def stored(self) -> str:
        return f"{self.scope}:{self.code}"


def restriction_of(stored: str | None) -> tuple[str, str] | None:
    """``(scope, code)`` of a session's ``scope`` column; ``None`` for a full session."""
    if not stored:
        return None
    scope, _, code = stored.partition(":")
    return scope, code or scope


@dataclass(frozen=True)
class LoggedIn:
    user: User
    session: Any
    secret: str
    grant: Grant | None = None


def log_in(
    app: Flask,
    *,
    tenant: Tenant | None,
    email: str,
    password: str,
    answers: Mapping[str, str],
    kind: str,
    now: datetime,
) -> LoggedIn:
    """Password, then the guards, then a fresh session: the whole login in one call (API)."""
    user = check_password(
        app, tenant=tenant, email=email, password=password, now=now, answers=answers
    )
    return finish(
        app, tenant=tenant, user=user, answers=answers, kind=kind, now=now, password=password
    )


def check_password(
    app: Flask,
    *,
    tenant: Tenant | None,
    email: str,
    password: str,
    now: datetime,
    answers: Mapping[str, str] | None = None,
) -> User:
    """The first step: ``before_password_check``, then the user whose password this is, or
    :class:`LoginRefused`."""
    reader = db.session()
    address = canonical_email(email)
    user = find_user(reader, tenant.id if tenant else None, address)
    account = user if user is not None and user.active and _may_log_in(tenant, user) else None
    enabled, broken = plugins_for(app, tenant)
    # Nobody is authenticated before the password is verified: no actor yet.
    ctx = _context(app, tenant, None, _attempt(address, account, answers), now)
    hasher = passwords.passwords(app)
    try:
        host_of(app).guard("before_password_check", ctx, enabled, broken)
    except Refused as refused:
        # The password is not looked at, yet one argon2 verification is paid (the decoy's):
        # a refusal here costs what any other answer costs.
        hasher.verify(None, password)
        _failed(app, ctx, enabled, tenant, address, refused.first.code, now)
        raise _refused(refused) from None
    if account is not None and account.role == Role.CLIENT and account.email_verified_at is None:
        _refuse_unverified(app, ctx, enabled, tenant, account, password, now)
    # Always one argon2 verification: against the decoy hash when there is no such user.
    password_ok = hasher.verify(account.password_hash if account else None, password)
    if not (password_ok and account is not None):
        _failed(app, ctx, enabled, tenant, address, INVALID_CREDENTIALS, now)
        raise LoginRefused(INVALID_CREDENTIALS, gettext("The e-mail or the password is not right."))
    return account


def check_current_password(
    app: Flask, *, tenant: Tenant | None, user: User, password: str, now: datetime
) -> None:
    """A signed-in person's current password, asked before they change it: a password check
    like a login's, so a token cannot test guesses past a lockout. ``before_password_check``
    first (its refusal, e.g. ``locked``, answers whatever the password), then the password;
    a wrong one runs ``after_login_failed`` (``invalid_credentials``) and is audited as a
    login's is. :class:`LoginRefused` either way (403 for a wrong password, as the change's
    answer has always been)."""
    enabled, broken = plugins_for(app, tenant)
    ctx = _context(app, tenant, None, _attempt(user.email, user, None), now)
    hasher = passwords.passwords(app)
    try:
        host_of(app).guard("before_password_check", ctx, enabled, broken)
    except Refused as refused:
        hasher.verify(None, password)
        _failed(app, ctx, enabled, tenant, user.email, refused.first.code, now)
        raise _refused(refused) from None
    if not hasher.verify(user.password_hash, password):
        _failed(app, ctx, enabled, tenant, user.email, INVALID_CREDENTIALS, now)
        raise LoginRefused(
            INVALID_CREDENTIALS, gettext("The current password is not right."), status=403
        )


def _may_log_in(tenant: Tenant | None, user: User) -> bool:
    """A client logs in only while the business has client accounts on; otherwise the login
    answers as for an unknown e-mail."""
    return user.role != Role.CLIENT or (tenant is not None and tenant.client_accounts)


def _refuse_unverified(app, ctx, enabled, tenant, account: User, password: str, now) -> None:
    """An unverified client never logs in. Whoever typed a password one of the account's
    sign-ups chose (or, for an account made unverified with a password, that one) is told to
    confirm the address first (403 ``email_unverified``); any other password gets the answer
    of a wrong password, so the refusal tells nothing to whoever does not know it."""
    hasher = passwords.passwords(app)
    candidates = client_accounts.chosen_password_hashes(db.session(), account)
    if account.password_hash != client_accounts.NO_PASSWORD:
        candidates.append(account.password_hash)
    # Every candidate is verified (no early exit), and the decoy when there are none: what the
    # answer costs depends on how many sign-ups wait, never on which password matched.
    matches = [hasher.verify(stored, password) for stored in candidates] or [
        hasher.verify(None, password)
    ]
    address = account.email
    if any(matches) and candidates:
        _failed(app, ctx, enabled, tenant, address, EMAIL_UNVERIFIED, now)
        raise LoginRefused(
            EMAIL_UNVERIFIED,
            gettext("Please confirm your e-mail address first, with the link we sent you."),
            status=403,
        )
    _failed(app, ctx, enabled, tenant, address, INVALID_CREDENTIALS, now)
    raise LoginRefused(INVALID_CREDENTIALS, gettext("The e-mail or the password is not right."))


def plugins_for(app: Flask, tenant: Tenant | None):
    """The plugins a login of ``tenant`` runs, with their settings, and the broken ones among
    them (whose guards refuse): the tenant's, or for platform support the instance's."""
    if tenant is None:
        found = support.support_plugins(app)
        return found.enabled, found.broken
    host, reader = host_of(app), db.session()
    return host.enabled_for(reader, tenant.id), host.broken_enabled_for(reader, tenant.id)


def _attempt(address: str, user: User | None, answers: Mapping[str, str] | None) -> LoginAttempt:
    return LoginAttempt(
        email=address,
        user_id=user.id if user else None,
        role=user.role if user else None,
        answers=dict(answers or {}),
    )


def _context(
    app: Flask, tenant: Tenant | None, actor: User | None, attempt: LoginAttempt, now: datetime
) -> Context:
    if tenant is None:
        return support.context(app, now, actor=actor, login=attempt)
    return make_context(tenant, now, actor=actor, login=attempt)


def _refused(refused: Refused) -> LoginRefused:
    first = refused.first
    challenge = next(
        (item.refusal.challenge for item in refused.refusals if item.refusal.challenge), None
    )
    return LoginRefused(
        first.code,
        first.message,
        challenge=challenge,
        refusals=refused.refusals,
        status=503 if first.code == PLUGIN_FAILED else 401,
    )


def _grant_of(refused: Refused) -> Grant | None:
    """The restricted scope the refusals let the login through with, if every one of them
    carries a ``grant_scope`` and none asks for a further step. The first refusal's scope wins;
    the others are listed, and come in turn at a later login once the first is done."""
    items = refused.refusals
    if any(item.refusal.grant_scope is None or item.refusal.challenge for item in items):
        return None
    first = items[0].refusal
    grant = Grant(
        first.grant_scope,
        first.code,
        first.message,
        first.details,
        tuple(items),
        continue_at=first.continue_at,
    )
    well_formed = _WORD.fullmatch(grant.scope) and _WORD.fullmatch(grant.code)
    if not well_formed or len(grant.stored) > SCOPE_COLUMN_LENGTH:
        log.warning(
            "plugin %s: grant_scope %r with code %r is not lowercase words of %d characters in "
            "all; the login is refused instead",
            items[0].plugin,
            grant.scope,
            grant.code,
            SCOPE_COLUMN_LENGTH - 1,
        )
        return None
    return grant


def _verdict(app: Flask, ctx: Context, enabled, broken) -> Grant | None:
    """Every ``before_login`` guard: ``None`` when all allow, a :class:`Grant` when they let
    the login through restricted; else :class:`LoginRefused`."""
    try:
        host_of(app).guard("before_login", ctx, enabled, broken)
    except Refused as refused:
        grant = _grant_of(refused)
        if grant is None:
            raise _refused(refused) from None
        return grant
    return None


def finish(
    app: Flask,
    *,
    tenant: Tenant | None,
    user: User,
    answers: Mapping[str, str],
    kind: str,
    now: datetime,
    password: str | None = None,
    carried: Grant | None = None,
) -> LoggedIn:
    """The further steps: the typed ``password`` against the current rules (when the caller
    still has it; a further step passes the restriction that check ``carried`` instead), every
    ``before_login`` guard (with the answers to earlier challenges), then a fresh session. The
    password also lets an outdated hash be upgraded to the current argon2 parameters.

    A restricted browser session needs the page where the browser does what its scope asks
    (``continue_at``, a page of this site): without one the login is refused with the
    restriction's message (403), as the pages did before they had such pages."""
    reader = db.session()
    enabled, broken = plugins_for(app, tenant)
    ctx = _context(app, tenant, user, _attempt(user.email, user, answers), now)
    try:
        compliance = carried
        if password is not None:
            compliance = password_compliance(app, ctx, tenant, user, password, enabled, broken)
        try:
            grant = _verdict(app, ctx, enabled, broken)
        except LoginRefused as refused:
            refused.carried = compliance
            raise
    except LoginRefused as refused:
        _failed(app, ctx, enabled, tenant, user.email, refused.code, now)
        raise
    if compliance is not None:
        # The password first: changing it asks the login guards again, whose restrictions then
        # take their turn (listed after it).
        later = grant.refusals if grant is not None else ()
        grant = replace(compliance, refusals=compliance.refusals + later)
    if grant is not None and kind != "api" and not opens_a_page(app, grant.continue_at):
        _failed(app, ctx, enabled, tenant, user.email, grant.code, now)
        raise LoginRefused(grant.code, grant.message, refusals=grant.refusals, status=403)
    limits = sessions.limits_for(app, reader, tenant, now, user)
    info = request_info()
    hasher = passwords.passwords(app)
    rehashed = password is not None and hasher.needs_rehash(user.password_hash)
    new_hash = hasher.hash(password) if rehashed else None
    details: dict[str, Any] = {"kind": kind, "rehashed": rehashed}
    if grant is not None:
        # Not "code": the audit redacts keys that look secret, and this one names a refusal.
        details.update(scope=grant.scope, restricted_by=grant.code)
    with db.write_transaction(app) as writer:
        if new_hash is not None:
            writer.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
        row, secret = sessions.start(
            writer,
            user,
            kind=kind,
            limits=limits,
            now=now,
            ip=info.ip if info else None,
            user_agent=info.user_agent if info else None,
            scope=grant.stored if grant else None,
        )
        audit.record(
            writer,
            tenant_id=user.tenant_id,
            actor=user.audit_label,
            ip=info.ip if info else None,
            action="login.succeeded",
            subject=f"user:{user.id}",
            details=details,
            now=now,
        )
    host_of(app).event("after_login", ctx, enabled)
    return LoggedIn(user, row, secret, grant)


def password_compliance(
    app: Flask, ctx: Context, tenant: Tenant | None, user: User, password: str, enabled, broken
) -> Grant | None:
    """The password just found right, held to the current rules (every ``before_password_set``
    guard; ``ctx.login`` tells them it is a login): ``None`` when it passes, else the
    ``password_change`` restriction, whose message lists every rule it breaks. A guard that
    could not run refuses the login (``plugin_failed``): a check that cannot run never lets a
    password through."""
    try:
        host_of(app).guard("before_password_set", ctx, enabled, broken, password=password)
    except Refused as refused:
        failed = [item for item in refused.refusals if item.refusal.code == PLUGIN_FAILED]
        if failed:
            raise LoginRefused(
                PLUGIN_FAILED, failed[0].refusal.message, refusals=refused.refusals, status=503
            ) from None
        rules = [item.refusal.message for item in refused.refusals]
        return Grant(
            PASSWORD_CHANGE,
            PASSWORD_CHANGE_REQUIRED,
            gettext(
                "Your password no longer meets the rules, so choose a new one before you "
                "continue: %(rules)s",
                rules=" ".join(rules),
            ),
            {"rules": rules},
            tuple(refused.refusals),
            continue_at=change_password_page(tenant, user),
        )
    return None


def change_password_page(tenant: Tenant | None, user: User) -> str:
    """The path of the change-password page of the account's side (staff, client, support)."""
    if tenant is None:
        return CHANGE_PASSWORD_PAGES["support"]
    side = "client" if user.role == Role.CLIENT else "staff"
    return CHANGE_PASSWORD_PAGES[side].format(slug=tenant.slug)


def opens_a_page(app: Flask, path: str | None) -> bool:
    """Whether ``path`` is a page of this site a browser can be sent to: a local path (one
    leading ``/``, no scheme, host, query or odd character) that one of the app's routes serves
    on GET. Anything else could send the browser away, or to a 404 it could never leave."""
    if not path or not _LOCAL_PATH.fullmatch(path) or path.startswith("//"):
        return False
    try:
        app.url_map.bind("localhost").match(path, method="GET")
    except (HTTPException, RoutingException):  # a redirect too (the slash a route adds)
        return False
    return True


def restricted_grant(stored: str, message: str | None, continue_at: str | None) -> Grant:
    """The :class:`Grant` a pending login carries to its further step (its ``scope`` column,
    ``"<scope>:<code>"``), with the message and page the first step found."""
    scope, code = restriction_of(stored) or (stored, stored)
    return Grant(scope, code, message or "", None, (), continue_at=continue_at)


def reassess(
    app: Flask, *, tenant: Tenant | None, user: User, session_id: int, now: datetime
) -> Grant | None:
    """After a restricted session did what its scope was for (core: changed the password),
    ask every ``before_login`` guard again, as a login would: when all allow, the session
    becomes full (``None``); when they restrict it again, it takes the new scope (the
    :class:`Grant`); when one refuses (a challenge, say), the session ends and
    :class:`LoginRefused` says why: the person logs in again."""
    enabled, broken = plugins_for(app, tenant)
    ctx = _context(app, tenant, user, _attempt(user.email, user, {}), now)
    info = request_info()
    try:
        grant = _verdict(app, ctx, enabled, broken)
    except LoginRefused as refused:
        with db.write_transaction(app) as writer:
            sessions.revoke(writer, session_id, now)
            _audit_scope(writer, user, session_id, info, now, ended=refused.code)
        raise
    with db.write_transaction(app) as writer:
        writer.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(scope=grant.stored if grant else None)
        )
        _audit_scope(writer, user, session_id, info, now, scope=grant.scope if grant else None)
    return grant


def _audit_scope(writer, user: User, session_id: int, info, now: datetime, **details) -> None:
    audit.record(
        writer,
        tenant_id=user.tenant_id,
        actor=user.audit_label,
        ip=info.ip if info else None,
        action="session.reassessed",
        subject=f"session:{session_id}",
        details=details,
        now=now,
    )


def _failed(app, ctx, enabled, tenant, address, reason, now) -> None:
    host_of(app).event("after_login_failed", ctx, enabled, reason=reason)
    info = request_info()
    audit.record_separately(
        app,
        tenant_id=tenant.id if tenant else None,
        actor=f"login:{address}"[:200],
        ip=info.ip if info else None,
        action="login.failed",
        subject=f"realm:{tenant.slug if tenant else PLATFORM_REALM}",
        details={"reason": reason},
        now=now,
    )


def log_out(app: Flask, session_id: int, user: User, now: datetime) -> None:
    with db.write_transaction(app) as writer:
        sessions.revoke(writer, session_id, now)
        info = request_info()
        audit.record(
            writer,
            tenant_id=user.tenant_id,
            actor=user.audit_label,
            ip=info.ip if info else None,
            action="logout",
            subject=f"user:{user.id}",
            now=now,
        )
