"""Account e-mails of staff, support and clients alike, enqueued in the transaction of the change
they announce: the links of staff and support (reset, invitation) and the notice that a
password changed.

A tenant's mail passes through its plugins' ``filter_message`` (read before the transaction, as
booking mail does); platform support's has no tenant, hence no filters, and is signed by the
platform.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from bookwell.core.context import make_context
from bookwell.core.mail import compose, dispatch, outbox
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Role, Tenant, User


class AccountMailer:
    """Enqueues account e-mails of one tenant (or of platform support, ``tenant`` ``None``)."""

    def __init__(self, app: Flask, tenant: Tenant | None, now: datetime) -> None:
        self.app, self.tenant, self.now = app, tenant, now
        if tenant is not None:
            self.ctx = make_context(tenant, now)
            self.enabled = host_of(app).enabled_for(db.session(), tenant.id)

    def enqueue(self, writer: Session, user: User, kind: str, url: str, **extra: Any) -> None:
        message = compose.account_message(
            self.app, self.tenant, kind, to=user.email, name=user.name, url=url, **extra
        )
        held = None
        if self.tenant is not None:
            message, held = dispatch.filtered_or_held(self.app, self.ctx, self.enabled, message)
        outbox.enqueue(
            writer, message, self.tenant.id if self.tenant else None, None, self.now, held=held
        )


def base_url(app: Flask) -> str:
    return str(app.config["BASE_URL"]).rstrip("/")


def forgot_url(app: Flask, tenant: Tenant | None, user: User) -> str:
    """Where ``user`` asks for a reset link: the client's, staff's or support's page."""
    if tenant is None:
        return f"{base_url(app)}/support/forgot"
    if user.role == Role.CLIENT:
        return f"{base_url(app)}/book/{tenant.slug}/account/forgot"
    return f"{base_url(app)}/admin/{tenant.slug}/forgot"


def password_changed(mailer: AccountMailer, writer: Session, user: User) -> None:
    """Tell the account its password changed, when, and where to take it back if it was not
    its owner (the "forgot password" page: the mail carries no secret of its own)."""
    mailer.enqueue(
        writer,
        user,
        compose.PASSWORD_CHANGED,
        forgot_url(mailer.app, mailer.tenant, user),
        email=user.email,
        when=mailer.now,  # written in the mail's language by compose.account_message
    )
