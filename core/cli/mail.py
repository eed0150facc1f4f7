"""``bookwell mail``: send the outbox now, or see what waits in it. Registered in ``root.py``."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import func, select

from bookwell.core.cli.instance import require_schema
from bookwell.core.foundation import clock
from bookwell.core.mail.outbox import HELD_UNTIL, deliver_due
from bookwell.core.storage import db
from bookwell.core.storage.models import OutboxMessage


@click.group()
def mail() -> None:
    """The outgoing mail (outbox)."""


@mail.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.pass_obj
def deliver(obj: Any, limit: int) -> None:
    """Send the messages that are due (by BOOKWELL_SMTP_URL, else as .eml files in the outbox)."""
    app = require_schema(obj.app)
    report = deliver_due(app, clock.now(app), limit)
    click.echo(f"claimed {report.claimed}, sent {report.sent}, failed {report.failed}")
    if report.failed:
        raise SystemExit(1)


@mail.command()
@click.pass_obj
def status(obj: Any) -> None:
    """Count the messages waiting, failing, held and sent, and the booking mails not yet
    composed (a placeholder may become more than one message, so it is counted apart)."""
    app = require_schema(obj.app)
    with db.fresh_session(app) as session:
        unsent = OutboxMessage.sent_at.is_(None)
        placeholder = OutboxMessage.compose_event.is_not(None)
        to_compose = session.scalar(select(func.count()).where(unsent, placeholder))
        unsent = unsent & ~placeholder
        waiting = session.scalar(select(func.count()).where(unsent, OutboxMessage.attempts == 0))
        failing = session.scalar(
            select(func.count()).where(
                unsent, OutboxMessage.attempts > 0, OutboxMessage.next_attempt_at < HELD_UNTIL
            )
        )
        held = session.scalar(
            select(func.count()).where(unsent, OutboxMessage.next_attempt_at >= HELD_UNTIL)
        )
        sent = session.scalar(select(func.count()).where(OutboxMessage.sent_at.is_not(None)))
    click.echo(
        f"waiting {waiting}, retrying {failing}, held {held}, sent {sent}, to compose {to_compose}"
    )
