"""``bookwell audit``: check the audit trail. Registered on the ``bookwell`` group in
``root.py``.

The group's object is ``instance.Context`` (taken by ``click.pass_obj``, as ``root`` imports this
module and not the other way round).
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import select

from bookwell.core import audit as trail
from bookwell.core.cli.instance import require_schema
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant


@click.group()
def audit() -> None:
    """The tamper-evident audit trail."""


@audit.command()
@click.option("--tenant", "slug", default=None, help="Only this tenant's trail (default: all).")
@click.pass_obj
def verify(obj: Any, slug: str | None) -> None:
    """Check that no audit entry was edited, removed or inserted; name the first that was.

    Exits 0 when every trail checked is intact, 1 otherwise. Note the head hash it prints: the
    trail alone cannot show that its newest entries were removed, a copy of the head can.
    """
    app = obj.app
    require_schema(app)
    with app.app_context():
        session = db.session()
        if slug is not None:
            tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
            if tenant_id is None:
                raise click.ClickException(f"no tenant with the slug {slug!r}")
            results = [trail.verify(session, tenant_id)]
        else:
            results = list(trail.verify(session).chains)
        names = _names(session, results)
    for result in results:
        if not result.ok:
            raise click.ClickException(f"audit trail of {names[result.chain]}: {result.reason}")
    if not results:
        click.echo("no audit entries yet")
    for result in results:
        line = f"audit trail of {names[result.chain]}: {_entries(result.checked)}, intact"
        if result.head_hash:
            line += f"; head {result.head_hash}"
        click.echo(line)


def _entries(number: int) -> str:
    return f"{number} {'entry' if number == 1 else 'entries'}"


def _names(session: Any, results: list[trail.VerifyResult]) -> dict[str, str]:
    owners = {}
    for result in results:
        try:
            owners[result.chain] = trail.tenant_of(result.chain)
        except ValueError:
            owners[result.chain] = None
    ids = [owner for owner in owners.values() if owner is not None]
    slugs = dict(session.execute(select(Tenant.id, Tenant.slug).where(Tenant.id.in_(ids))).all())
    names = {}
    for chain, owner in owners.items():
        if chain == trail.PLATFORM_CHAIN:
            names[chain] = "the platform"
        elif owner is None:
            names[chain] = repr(chain)
        else:
            names[chain] = slugs.get(owner, f"tenant #{owner}")
    return names
