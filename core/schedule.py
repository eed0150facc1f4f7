"""Scheduled work: ``on_schedule`` for every tenant (or one), once, at a given instant, and the
delivery of the mail that is due."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy import select

from . import db
from .context import make_context
from .mail import DeliveryReport, deliver_due
from .models import Tenant
from .pluginhost import host_of

log = logging.getLogger("bookwell.schedule")
MAIL_ROUNDS = 20  # per tenant and tick, of deliver_due's batch each


@dataclass(frozen=True)
class TickReport:
    tenant: str
    plugins: tuple[str, ...]
    # None on a dry run, or when the database failed (logged); the next tick tries again.
    mail: DeliveryReport | None = None


def deliver_tenant_mail(app: Flask, now: datetime, tenant_id: int) -> DeliveryReport | None:
    """Send the tenant's due mail, batch after batch, within bounds."""
    claimed = sent = failed = 0
    try:
        for _ in range(MAIL_ROUNDS):
            report = deliver_due(app, now, tenant_id=tenant_id)
            claimed, sent, failed = (
                claimed + report.claimed,
                sent + report.sent,
                failed + report.failed,
            )
            if report.claimed == 0:
                break
    except Exception:
        log.exception("mail delivery of tenant %s failed", tenant_id)
        return None
    return DeliveryReport(claimed=claimed, sent=sent, failed=failed)


def tick(
    app: Flask, now: datetime, *, slug: str | None = None, dry_run: bool = False
) -> list[TickReport]:
    """Run ``on_schedule`` once per tenant for the plugins it enabled, then send its due mail
    (not on a dry run). Call in an app context."""
    host = host_of(app)
    session = db.session()
    query = select(Tenant).order_by(Tenant.slug)
    if slug is not None:
        query = query.where(Tenant.slug == slug)
    reports = []
    implementers = {
        host.pm.get_name(implementation.plugin)
        for implementation in host.pm.hook.on_schedule.get_hookimpls()
    }
    for tenant in session.scalars(query):
        enabled = host.enabled_for(session, tenant.id)
        ctx = make_context(tenant, now, dry_run=dry_run)
        host.event("on_schedule", ctx, enabled)
        sent = None if dry_run else deliver_tenant_mail(app, now, tenant.id)
        reports.append(
            TickReport(tenant.slug, tuple(sorted(implementers & set(enabled))), mail=sent)
        )
    return reports
