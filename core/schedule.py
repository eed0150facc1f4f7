"""Scheduled work: ``on_schedule`` for every tenant (or one), once, at a given instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy import select

from . import db
from .context import make_context
from .models import Tenant
from .pluginhost import host_of


@dataclass(frozen=True)
class TickReport:
    tenant: str
    plugins: tuple[str, ...]


def tick(
    app: Flask, now: datetime, *, slug: str | None = None, dry_run: bool = False
) -> list[TickReport]:
    """Run ``on_schedule`` once per tenant for the plugins it enabled (call in an app context)."""
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
        reports.append(TickReport(tenant.slug, tuple(sorted(implementers & set(enabled)))))
    return reports
