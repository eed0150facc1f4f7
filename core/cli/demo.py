"""The demo business: created once, left alone after that."""

from __future__ import annotations

import secrets
from datetime import datetime, time

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from bookwell.core.access.users import create_user, find_user
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.foundation import clock
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Role, Tenant

DEMO_SLUG = "demo"
DEMO_OWNER = "owner@example.com"
MONDAY_TO_SATURDAY = {weekday: [(time(9), time(18))] for weekday in range(6)}


def ensure_demo(session: Session, now: datetime) -> tuple[Tenant, bool]:
    """Return the demo tenant and whether it was created just now."""
    existing = session.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
    if existing is not None:
        return existing, False
    tenant = create_tenant(
        session,
        DEMO_SLUG,
        name="Atelier Demo",
        timezone="Europe/Paris",
        now=now,
        contact_email="hello@demo.example",
        phone="+33 1 23 45 67 89",
        address="12 rue de la Paix, 75002 Paris",
    )
    haircut = add_service(
        session,
        tenant,
        "Haircut",
        description="Wash, cut and style.",
        duration_minutes=45,
        buffer_after_minutes=15,
        price_cents=4500,
        min_notice_minutes=120,
        horizon_days=60,
        slot_step_minutes=15,
    )
    colour = add_service(
        session,
        tenant,
        "Colour",
        description="Full colour with a gloss finish.",
        duration_minutes=90,
        buffer_before_minutes=10,
        buffer_after_minutes=20,
        price_cents=9000,
        min_notice_minutes=24 * 60,
        horizon_days=90,
        slot_step_minutes=30,
    )
    consultation = add_service(
        session,
        tenant,
        "Consultation",
        description="A free 20-minute chat about your hair.",
        duration_minutes=20,
        price_cents=0,
        min_notice_minutes=60,
        horizon_days=30,
        slot_step_minutes=20,
    )
    add_provider(
        session,
        tenant,
        "Camille",
        [haircut, colour, consultation],
        MONDAY_TO_SATURDAY,
        email="camille@demo.example",
    )
    add_provider(
        session,
        tenant,
        "Léo",
        [haircut, consultation],
        MONDAY_TO_SATURDAY,
        email="leo@demo.example",
    )
    return tenant, True


def ensure_demo_owner(app: Flask, tenant_id: int) -> str | None:
    """Create the demo's owner with a fresh password, returned; ``None`` if they exist."""
    with app.app_context():
        if find_user(db.session(), tenant_id, DEMO_OWNER) is not None:
            return None
        password = secrets.token_urlsafe(12)
        create_user(
            app,
            tenant_id=tenant_id,
            email=DEMO_OWNER,
            role=Role.OWNER,
            password=password,
            name="Demo owner",
            now=clock.now(app),
        )
        return password


# Switched on when the demo business is created, so the marketplace shows a plugin at work.
DEMO_PLUGINS = ("reminders",)


def enable_demo_plugins(app: Flask, tenant_id: int) -> list[str]:
    """Switch on the demo's built-in plugins that are installed and working; returns them."""
    host = host_of(app)
    switched_on = []
    with app.app_context():
        for name in DEMO_PLUGINS:
            plugin = host.installed.get(name)
            if plugin is None or plugin.manifest is None:
                continue  # blocked by the operator, or broken: the demo goes on without it
            plugin_changes.enable(app, tenant_id, name, {}, clock.now(app), actor="demo")
            switched_on.append(name)
    return switched_on
