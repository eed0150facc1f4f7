"""``bookwell keys rotate|status``: the tenants' data keys and sealed values against the
instance's key ring. Registered on the ``bookwell`` group in ``root.py``.

Rotating the instance's key (``BOOKWELL_ENCRYPTION_KEY``): set it to ``new,old`` on every
process and restart them, run ``bookwell keys rotate``, then set it to ``new`` alone. Rotation
re-wraps each tenant's data key and the instance's own (never changes them, so what plugins
encrypted stays readable) and re-seals the tenant's remembered idempotent answers with the new
key, one tenant per transaction: a run that stops half-way is simply run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
from flask import Flask
from sqlalchemy import func, select, update

from bookwell.core import audit
from bookwell.core.cli.instance import require_schema
from bookwell.core.foundation import clock
from bookwell.core.storage import db, keys, sealing
from bookwell.core.storage.models import IdempotencyKey, Tenant


@click.group("keys")
def keys_group() -> None:
    """The instance's encryption key ring and the tenants' own keys."""


@dataclass(frozen=True)
class _Rotated:
    rewrapped: keys.Rewrapped | None
    resealed: int
    unreadable: int


@keys_group.command()
@click.option("--tenant", "slug", default=None, help="Only this tenant (default: every tenant).")
@click.pass_obj
def rotate(obj: Any, slug: str | None) -> None:
    """Move every tenant's keys to the current (first) key of the ring.

    Re-wraps each tenant's data key and re-seals its stored idempotent answers, one tenant per
    transaction, each change audited as `keys.rotated` in the tenant's trail. Exits 1, naming
    them, if some tenants' keys open with no key of the ring (the others are still rotated)."""
    app = require_schema(obj.app)
    ring = keys.ring_of(app)
    tenants = _tenants(app, slug)
    rewrapped = resealed = unreadable = 0
    failures: list[str] = []
    # On a terminal, a bar; written to a file or a pipe (cron, a log), only its label, once.
    with click.progressbar(
        tenants, label=f"rotating {_count(len(tenants), 'tenant')} to the current key"
    ) as bar:
        for tenant_id, tenant_slug in bar:
            try:
                done = _rotate_one(app, ring, tenant_id, tenant_slug)
            except (keys.TenantKeyUnavailable, db.LockTimeout) as error:
                failures.append(f"{tenant_slug}: {error}")
                continue
            rewrapped += done.rewrapped is not None
            resealed += done.resealed
            unreadable += done.unreadable
    if slug is None:
        try:
            rewrapped += _rotate_platform(app, ring)
        except (keys.TenantKeyUnavailable, db.LockTimeout) as error:
            failures.append(f"the instance's own key: {error}")
    click.echo(
        f"re-wrapped {_count(rewrapped, 'tenant key')} and re-sealed "
        f"{_count(resealed, 'stored answer')} with key {ring.current.fingerprint}"
    )
    if unreadable:
        click.echo(
            f"warning: {_count(unreadable, 'stored answer')} opened with no key of the ring "
            "(left as they are; they expire within a day)"
        )
    if failures:
        shown = "; ".join(failures[:5]) + ("; ..." if len(failures) > 5 else "")
        raise click.ClickException(
            f"{_count(len(failures), 'tenant')} not rotated (run again once fixed): {shown}"
        )


def _rotate_one(app: Flask, ring: keys.KeyRing, tenant_id: int, slug: str) -> _Rotated:
    now = clock.now(app)
    with db.write_transaction(app) as session:
        rewrapped = keys.rewrap(session, ring, tenant_id, now)
        resealed = unreadable = 0
        answers = session.execute(
            select(IdempotencyKey.id, IdempotencyKey.response_body).where(
                IdempotencyKey.tenant_id == tenant_id
            )
        ).all()
        for answer_id, body in answers:
            try:
                fresh = sealing.reseal(body, app)
            except sealing.Unsealable:
                unreadable += 1
                continue
            if fresh is not None:
                session.execute(
                    update(IdempotencyKey)
                    .where(IdempotencyKey.id == answer_id)
                    .values(response_body=fresh)
                    .execution_options(synchronize_session=False)
                )
                resealed += 1
        if rewrapped is not None or resealed:
            details: dict[str, Any] = {"resealed": resealed}
            if rewrapped is not None:
                details["wrapped_by"] = {"from": rewrapped.previous, "to": rewrapped.current}
            audit.record(
                session,
                tenant_id=tenant_id,
                actor="cli",
                ip=None,
                action="keys.rotated",
                subject=f"tenant:{slug}",
                details=details,
                now=now,
            )
    return _Rotated(rewrapped, resealed, unreadable)


def _rotate_platform(app: Flask, ring: keys.KeyRing) -> bool:
    """The instance's own data key (plugins' secrets about support accounts), audited in the
    platform's trail. ``True`` if it was re-wrapped."""
    now = clock.now(app)
    with db.write_transaction(app) as session:
        done = keys.rewrap(session, ring, keys.PLATFORM, now)
        if done is not None:
            audit.record(
                session,
                tenant_id=None,
                actor="cli",
                ip=None,
                action="keys.rotated",
                subject="platform",
                details={"wrapped_by": {"from": done.previous, "to": done.current}},
                now=now,
            )
    return done is not None


@keys_group.command()
@click.pass_obj
def status(obj: Any) -> None:
    """Whether the older keys of the ring are still needed.

    Counts the tenants' data keys under each key of the ring, and the stored answers sealed
    with an older one."""
    app = require_schema(obj.app)
    ring = keys.ring_of(app)
    with db.fresh_session(app) as session:
        standing = keys.status(session, ring)
        platform = keys.platform_key_wrapped_by(session)
        tenants = session.scalar(select(func.count()).select_from(Tenant)) or 0
        older_answers = unreadable_answers = 0
        for body in session.scalars(select(IdempotencyKey.response_body)):
            try:
                older_answers += sealing.reseal(body, app) is not None
            except sealing.Unsealable:
                unreadable_answers += 1
    click.echo(f"key ring: {_count(len(ring.keys), 'key')}, current {ring.current.fingerprint}")
    click.echo(
        f"tenant keys: {standing.total} ({_count(tenants - standing.total, 'tenant')} without "
        "one yet)"
    )
    click.echo(f"  under the current key: {standing.current}")
    click.echo(f"  under older keys of the ring: {standing.older}")
    platform_older = platform is not None and platform != ring.current.fingerprint
    if platform is not None:
        where = "an older key of the ring" if platform_older else "the current key"
        if ring.find(platform) is None:
            where = "a key not in the ring"
        click.echo(f"the instance's own key (support accounts' secrets): under {where}")
    click.echo(f"stored answers sealed with older keys of the ring: {older_answers}")
    if standing.foreign:
        click.echo(f"warning: {_count(standing.foreign, 'tenant key')} under keys not in the ring")
    if unreadable_answers:
        click.echo(
            f"warning: {_count(unreadable_answers, 'stored answer')} opened by no key of the ring"
        )
    if len(ring.keys) > 1:
        if standing.older or older_answers or platform_older:
            click.echo("the older keys are still needed: run `bookwell keys rotate`")
        else:
            click.echo("the older keys are no longer needed: remove them from the ring")


def _tenants(app: Flask, slug: str | None) -> list[tuple[int, str]]:
    with db.fresh_session(app) as session:
        query = select(Tenant.id, Tenant.slug).order_by(Tenant.id)
        if slug is not None:
            query = query.where(Tenant.slug == slug)
        found = [(tenant_id, tenant_slug) for tenant_id, tenant_slug in session.execute(query)]
    if slug is not None and not found:
        raise click.ClickException(f"no tenant with the slug {slug!r}")
    return found


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
