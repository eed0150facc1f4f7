"""Client accounts: sign-up, single-use links (e-mail verification, password reset) and their
e-mails.

A link's secret is random; only its SHA-256 is stored (:class:`UserToken`). Consuming a link is
one conditional UPDATE (``used_at IS NULL AND expires_at > now``) in a write transaction, so a
link works once even when two requests race for it. Every e-mail is enqueued in the transaction
that creates its link, and delivery is nudged after the commit.

A sign-up never puts its password on the account: anyone may sign up with anyone's address.
An unverified client has no password (:data:`NO_PASSWORD`); the hash of the password the sign-up
chose waits on its verification link, and the account takes it only when that link is used by
someone who types that password. So the owner of the address, clicking the link an impostor's
sign-up sent her, activates nothing: she is asked for a password she does not know, and her own
sign-up sends her a link of her own. Signing up again for an address with a verified account
creates nothing and tells the owner (with a reset link): the answer is the same either way.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bookwell.core import audit
from bookwell.core.access import passwords, users
from bookwell.core.context import make_context, request_info
from bookwell.core.mail import compose, dispatch, outbox
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Role, Tenant, User, UserToken
from bookwell.hooks import UserInfo

log = logging.getLogger("bookwell.accounts")

VERIFY_EMAIL, RESET_PASSWORD = "verify_email", "reset_password"
LIFETIMES = {VERIFY_EMAIL: timedelta(hours=48), RESET_PASSWORD: timedelta(hours=1)}
MAIL_KINDS = {VERIFY_EMAIL: compose.ACCOUNT_VERIFY, RESET_PASSWORD: compose.ACCOUNT_RESET}
# The password of an account that has none yet: no argon2 hash starts with "!", so checking a
# password against it always fails (migration 0009 gives it to every unverified client).
NO_PASSWORD = "!"  # noqa: S105 - a marker, not a password
# A login by an unverified client is checked against this many of its newest sign-ups' chosen
# passwords (one argon2 verification each): enough for someone who signed up twice, and a
# bound on what one login attempt costs.
SIGN_UPS_CHECKED = 3
# Account e-mails (links, "you already have an account") one address gets in an hour: sign-up
# and "forgot password" answer anyone, so without this a stranger could mail a person dozens
# of times a minute from behind the per-IP limit. Further requests answer alike, mailing nothing.
MAILS_PER_ADDRESS_PER_HOUR = 5


class NotTheChosenPassword(Exception):
    """A verification link was used with a password other than the one its sign-up chose."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(
    writer: Session,
    user: User,
    purpose: str,
    now: datetime,
    password_hash: str | None = None,
    name: str | None = None,
) -> str:
    """A new link for ``user`` in the caller's transaction; returns its secret (never stored).
    ``password_hash`` and ``name`` are, on a verification link, what its sign-up chose."""
    if purpose not in LIFETIMES:
        raise ValueError(f"unknown purpose {purpose!r}")
    secret = secrets.token_urlsafe(32)
    writer.add(
        UserToken(
            user_id=user.id,
            purpose=purpose,
            secret_hash=digest(secret),
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
            password_hash=password_hash,
            name=name,
        )
    )
    return secret


def _well_formed(secret: str) -> bool:
    return 0 < len(secret) <= 200 and secret.isascii()


def _usable_token(session: Session, purpose: str, secret: str, now: datetime) -> UserToken | None:
    if not _well_formed(secret):
        return None
    return session.scalar(
        select(UserToken).where(
            UserToken.secret_hash == digest(secret),
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
    )


def peek(session: Session, purpose: str, secret: str, now: datetime) -> User | None:
    """The user of a link that is still usable (not used, not expired), without using it. A
    verification link of an account verified meanwhile is not usable."""
    token = _usable_token(session, purpose, secret, now)
    user = session.get(User, token.user_id) if token is not None else None
    if user is not None and purpose == VERIFY_EMAIL and user.email_verified_at is not None:
        return None
    return user


def _consume(
    writer: Session, tenant: Tenant, purpose: str, secret: str, now: datetime
) -> int | None:
    """Use the link in the caller's write transaction; the user's id, or ``None`` when the
    link is unknown (here), used or expired. Exactly one of two racing callers gets the id."""
    if not _well_formed(secret):
        return None
    hashed = digest(secret)
    user_id = writer.scalar(
        select(UserToken.user_id)
        .join(User, User.id == UserToken.user_id)
        .where(
            UserToken.secret_hash == hashed,
            UserToken.purpose == purpose,
            User.tenant_id == tenant.id,
        )
    )
    if user_id is None:
        return None
    result = writer.execute(
        update(UserToken)
        .where(
            UserToken.secret_hash == hashed,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return user_id if result.rowcount == 1 else None


def _mark_verified(writer: Session, user: User, now: datetime) -> None:
    """The address is proven: so noted and audited, and every other verification link of the
    account closed, so none of them can later hand the account another sign-up's password."""
    user.email_verified_at = now
    writer.execute(
        update(UserToken)
        .where(
            UserToken.user_id == user.id,
            UserToken.purpose == VERIFY_EMAIL,
            UserToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    _audit(writer, user, "user.email_verified", now)


def verify_email(
    app: Flask, tenant: Tenant, secret: str, password: str, now: datetime
) -> User | None:
    """Use a verification link with the password its sign-up chose: the account takes that
    password and is verified; returns the user, or ``None`` when the link is unusable (unknown
    here, used, expired, or its account verified meanwhile). Raises
    :class:`NotTheChosenPassword`, the link left usable, for any other password."""
    reader = db.session()
    token = _usable_token(reader, VERIFY_EMAIL, secret, now)
    user = reader.get(User, token.user_id) if token is not None else None
    if user is None or user.tenant_id != tenant.id or user.email_verified_at is not None:
        return None
    chosen = token.password_hash
    # A link without a chosen password (none is made any more) activates nothing.
    if not (chosen and passwords.passwords(app).verify(chosen, password)):
        raise NotTheChosenPassword
    try:
        with db.write_transaction(app) as writer:
            if _consume(writer, tenant, VERIFY_EMAIL, secret, now) != user.id:
                return None
            # Only an account still unverified takes the password: one verified by another
            # link since it was read keeps its own (and this link stays unused).
            taken = writer.execute(
                update(User)
                .where(User.id == user.id, User.email_verified_at.is_(None))
                .values(
                    password_hash=chosen,
                    password_changed_at=now,
                    # The name this sign-up gave, not the first sign-up's.
                    name=token.name or User.name,
                )
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:
                raise _VerifiedMeanwhile
            stored = writer.get(User, user.id)
            writer.refresh(stored)
            _mark_verified(writer, stored, now)
    except _VerifiedMeanwhile:
        return None
    # The request's read session began (on SQLite, its snapshot) before the account opened:
    # end it, so the login that follows in this request reads the account as it is now.
    reader.rollback()
    return stored


class _VerifiedMeanwhile(Exception):
    """Rolls the use of a link back: its account was verified by another one meanwhile."""


def chosen_password_hashes(session: Session, user: User) -> list[str]:
    """The passwords the newest sign-ups of an unverified ``user`` chose (hashes, newest first,
    at most :data:`SIGN_UPS_CHECKED`), from their links not used yet, expired or not: a login
    with one of them is someone who signed up and has yet to confirm the address."""
    return list(
        session.scalars(
            select(UserToken.password_hash)
            .where(
                UserToken.user_id == user.id,
                UserToken.purpose == VERIFY_EMAIL,
                UserToken.used_at.is_(None),
                UserToken.password_hash.is_not(None),
            )
            .order_by(UserToken.created_at.desc(), UserToken.id.desc())
            .limit(SIGN_UPS_CHECKED)
        )
    )


def reset_password(
    app: Flask, tenant: Tenant, secret: str, new_password: str, now: datetime
) -> users.PasswordChanged | None:
    """Use a reset link and set the new password, ending every session of the user and
    revoking their API keys (what it ended is returned); ``None`` when the link is unusable.
    Raises :class:`users.UserError` (the link left unused) when the password breaks a rule."""
    reader = db.session()
    user = peek(reader, RESET_PASSWORD, secret, now)
    if user is None or user.tenant_id != tenant.id:
        return None
    problems = users.password_problems(app, reader, tenant, new_password, now, user=user)
    if problems:
        raise users.UserError("the password is not accepted", {"new_password": problems})
    with db.write_transaction(app) as writer:
        if _consume(writer, tenant, RESET_PASSWORD, secret, now) != user.id:
            return None
        stored = writer.get(User, user.id)
        if stored.email_verified_at is None:
            # The link reached the address, and whoever opened it chooses the password: that
            # confirms the address as well.
            _mark_verified(writer, stored, now)
    return users.change_password(app, user, new_password, now, keep_session_id=None)


def _audit(writer: Session, user: User, action: str, now: datetime) -> None:
    info = request_info()
    audit.record(
        writer,
        tenant_id=user.tenant_id,
        actor=user.audit_label,
        ip=info.ip if info else None,
        action=action,
        subject=f"user:{user.id}",
        now=now,
    )


def link(app: Flask, tenant: Tenant, purpose: str, secret: str) -> str:
    base = str(app.config["BASE_URL"]).rstrip("/")
    path = "verify" if purpose == VERIFY_EMAIL else "reset"
    return f"{base}/book/{tenant.slug}/account/{path}/{secret}"


class _Mailer:
    """Enqueues account e-mails inside a write transaction, each through the tenant's mail
    filters (read before the transaction, as booking mail does)."""

    def __init__(self, app: Flask, tenant: Tenant, now: datetime) -> None:
        self.app, self.tenant, self.now = app, tenant, now
        self.ctx = make_context(tenant, now)
        self.enabled = host_of(app).enabled_for(db.session(), tenant.id)

    def link_mail(
        self,
        writer: Session,
        user: User,
        purpose: str,
        kind: str,
        password_hash: str | None = None,
        greeting: str | None = None,
    ) -> None:
        mailed_lately = writer.scalar(
            select(func.count())
            .select_from(UserToken)
            .where(
                UserToken.user_id == user.id,
                UserToken.created_at > self.now - timedelta(hours=1),
            )
        )
        if mailed_lately >= MAILS_PER_ADDRESS_PER_HOUR:
            log.info("account mail for user %s not sent: its hourly limit is reached", user.id)
            return
        secret = issue(
            writer,
            user,
            purpose,
            self.now,
            password_hash,
            greeting if password_hash is not None else None,
        )
        message = compose.account_message(
            self.app,
            self.tenant,
            kind,
            to=user.email,
            name=greeting if greeting is not None else user.name,
            url=link(self.app, self.tenant, purpose, secret),
        )
        message, held = dispatch.filtered_or_held(self.app, self.ctx, self.enabled, message)
        outbox.enqueue(writer, message, self.tenant.id, None, self.now, held=held)


def send_link(app: Flask, tenant: Tenant, user: User, purpose: str, now: datetime) -> None:
    """A new link for ``user`` and its e-mail, in one transaction; then delivery is nudged."""
    mailer = _Mailer(app, tenant, now)
    with db.write_transaction(app) as writer:
        mailer.link_mail(writer, user, purpose, MAIL_KINDS[purpose])
    dispatch.kick(app)


def client_of(tenant: Tenant, email: str) -> User | None:
    user = users.find_user(db.session(), tenant.id, email)
    if user is None or user.role != Role.CLIENT or not user.active:
        return None
    return user


def register(
    app: Flask, tenant: Tenant, *, email: str, password: str, name: str, now: datetime
) -> None:
    """A client's sign-up. The password is checked against every rule, then waits, hashed, on
    a new verification link e-mailed to the address (the account, made unverified if it is new,
    gets no password). For an address with a verified account nothing is made: its owner is
    told, with a reset link. Every case answers alike (so signing up cannot tell who has an
    account); raises :class:`users.UserError` for a bad address or password."""
    address = users.checked_identity(name, email)
    reader = db.session()
    # Whether or not an account exists, the rules see the account being asked for, with id 0:
    # asking them about an existing one would answer differently for it.
    future = UserInfo(id=0, email=address, name=name, role=Role.CLIENT, tenant_id=tenant.id)
    problems = users.password_problems(app, reader, tenant, password, now, user=future)
    if problems:
        raise users.UserError(
            "the password is not accepted: " + " ".join(problems), {"password": problems}
        )
    chosen = passwords.passwords(app).hash(password)
    mailer = _Mailer(app, tenant, now)
    try:
        _sign_up(app, mailer, tenant, address, name, chosen, now)
    except IntegrityError:
        # Another sign-up for the same address made the account first: this one joins it.
        _sign_up(app, mailer, tenant, address, name, chosen, now)
    dispatch.kick(app)


def _sign_up(
    app: Flask, mailer: _Mailer, tenant: Tenant, address: str, name: str, chosen: str, now
) -> None:
    with db.write_transaction(app) as writer:
        user = users.find_user(writer, tenant.id, address)
        if user is None:
            user = User(
                realm=users.realm_of(tenant.id),
                tenant_id=tenant.id,
                email=address,
                name=name,
                role=Role.CLIENT,
                password_hash=NO_PASSWORD,
                email_verified_at=None,
                password_changed_at=now,
                created_at=now,
            )
            writer.add(user)
            writer.flush()
            info = request_info()
            audit.record(
                writer,
                tenant_id=tenant.id,
                actor=f"client:{address}",
                ip=info.ip if info else None,
                action="user.created",
                subject=f"user:{user.id}",
                details={"role": Role.CLIENT},
                now=now,
            )
        if user.role != Role.CLIENT or not user.active:
            # A staff account, or a client the business closed: nothing to offer by mail.
            log.info("sign-up for user %s: not an active client; nothing sent", user.id)
        elif user.email_verified_at is None:
            # Greeted by the name this sign-up gave: the account's is the first sign-up's,
            # which may not be this person's.
            mailer.link_mail(writer, user, VERIFY_EMAIL, compose.ACCOUNT_VERIFY, chosen, name)
        else:
            mailer.link_mail(writer, user, RESET_PASSWORD, compose.ACCOUNT_EXISTS)


def resend_verification(app: Flask, tenant: Tenant, email: str, now: datetime) -> None:
    """A new verification link, only to an unverified client account; silent otherwise. It
    carries the password of the newest sign-up, which whoever uses it must type."""
    user = client_of(tenant, email)
    if user is None or user.email_verified_at is not None:
        return
    newest = db.session().scalars(
        select(UserToken)
        .where(
            UserToken.user_id == user.id,
            UserToken.purpose == VERIFY_EMAIL,
            UserToken.used_at.is_(None),
            UserToken.password_hash.is_not(None),
        )
        .order_by(UserToken.created_at.desc(), UserToken.id.desc())
        .limit(1)
    ).first()
    if newest is None:
        return
    mailer = _Mailer(app, tenant, now)
    with db.write_transaction(app) as writer:
        mailer.link_mail(
            writer,
            user,
            VERIFY_EMAIL,
            compose.ACCOUNT_VERIFY,
            newest.password_hash,
            newest.name or user.name,
        )
    dispatch.kick(app)


def request_reset(app: Flask, tenant: Tenant, email: str, now: datetime) -> None:
    """A reset link, only to an existing client account; silent otherwise."""
    user = client_of(tenant, email)
    if user is not None:
        send_link(app, tenant, user, RESET_PASSWORD, now)
