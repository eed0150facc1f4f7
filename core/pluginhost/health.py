"""How each plugin has been behaving for a tenant: its recent failures, for the marketplace."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import PluginFailure

# The marketplace shows the last 24 hours; a month is kept for whoever digs further.
KEPT_FOR = timedelta(days=30)


@dataclass(frozen=True)
class FailureSummary:
    count: int
    last_message: str
    last_at: datetime
    last_hook: str


def store(app: Flask, noted: Iterable[tuple]) -> None:
    """Write ``(tenant_id, plugin, hook, message, at)`` tuples in a transaction of their own."""
    rows = [
        PluginFailure(
            tenant_id=tenant_id,
            plugin_name=plugin,
            hook=hook,
            message=message,
            occurred_at=at or clock.now(app),
        )
        for tenant_id, plugin, hook, message, at in noted
    ]
    if not rows:
        return
    with db.write_transaction(app) as session:
        session.add_all(rows)


def recent_failures(session: Session, tenant_id: int, since: datetime) -> dict[str, FailureSummary]:
    """Per plugin: how many times it failed for the tenant since ``since``, and the last one."""
    counts = session.execute(
        select(PluginFailure.plugin_name, func.count(), func.max(PluginFailure.id))
        .where(PluginFailure.tenant_id == tenant_id, PluginFailure.occurred_at >= since)
        .group_by(PluginFailure.plugin_name)
    ).all()
    if not counts:
        return {}
    last = {
        row.id: row
        for row in session.scalars(
            select(PluginFailure).where(PluginFailure.id.in_([latest for *_, latest in counts]))
        )
    }
    return {
        name: FailureSummary(
            count=count,
            last_message=last[latest].message,
            last_at=last[latest].occurred_at,
            last_hook=last[latest].hook,
        )
        for name, count, latest in counts
    }


def forget_old(app: Flask, tenant_id: int, now: datetime) -> int:
    """Delete the tenant's failures older than :data:`KEPT_FOR`; returns how many."""
    with db.write_transaction(app) as session:
        result = session.execute(
            delete(PluginFailure).where(
                PluginFailure.tenant_id == tenant_id,
                PluginFailure.occurred_at < now - KEPT_FOR,
            )
        )
        return result.rowcount or 0
