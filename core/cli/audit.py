"""``bookwell audit``: check the audit trail. Registered on the ``bookwell`` group in
``root.py``.

The group's object is ``instance.Context`` (taken by ``click.pass_obj``, as ``root`` imports this
module and not the other way round).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from bookwell.core import audit as trail
from bookwell.core.cli.instance import require_schema
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant

CLI_ACTOR = "cli"  # the operator at the server's console: no account, no IP


@click.group()
def audit() -> None:
    """The tamper-evident audit trail: verify it, export it, erase a person from it."""


def _tenant(session: Any, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise click.ClickException(f"no tenant with the slug {slug!r}")
    return tenant


def _bound(raw: str | None, zone: Any, *, end: bool, name: str) -> Any:
    if raw is None:
        return None
    try:
        return trail.parse_bound(raw, zone, end=end)
    except ValueError as error:
        raise click.BadParameter(
            "a date (YYYY-MM-DD) or an ISO 8601 date and time", param_hint=name
        ) from error


@audit.command("export")
@click.option("--tenant", "slug", required=True, help="The tenant whose trail to export.")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(trail.EXPORT_FORMATS),
    required=True,
    help="json: an object with an `entries` list; csv: a header row, then one row per entry.",
)
@click.option("--from", "since", default=None, help="First day (YYYY-MM-DD) or instant.")
@click.option("--to", "until", default=None, help="Last day (YYYY-MM-DD, all of it) or instant.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file (created readable by its owner only) instead of standard output.",
)
@click.pass_obj
def export_command(
    obj: Any, slug: str, export_format: str, since: str | None, until: str | None, output: Path
) -> None:
    """Export a tenant's audit trail, oldest entry first, with the personal data its pseudonyms
    stand for (where not erased). The export is itself audited (audit.exported).

    Days are the tenant's own; an instant without an offset is in the tenant's zone too."""
    app = obj.app
    require_schema(app)
    with app.app_context():
        tenant = _tenant(db.session(), slug)
        wanted = trail.Filter(
            since=_bound(since, tenant.zone, end=False, name="--from"),
            until=_bound(until, tenant.zone, end=True, name="--to"),
        )
        if wanted.since and wanted.until and wanted.until <= wanted.since:
            raise click.BadParameter("must be on or after --from", param_hint="--to")
        if output is not None:
            # Created before anything is audited: a path that cannot be written is refused
            # without an entry claiming an export that never happened.
            try:
                output.touch(mode=0o600, exist_ok=True)
            except OSError as error:
                raise click.ClickException(f"cannot write {output}: {error.strerror}") from None
        body, number = trail.export(
            app,
            tenant.id,
            wanted,
            export_format,
            actor=CLI_ACTOR,
            ip=None,
            now=clock.now(app),
        )
    if output is None:
        click.echo(body, nl=False)
        return
    output.write_text(body, encoding="utf-8")
    click.echo(f"exported {_entries(number)} of {slug}'s audit trail to {output}", err=True)


@audit.command("erase")
@click.option("--tenant", "slug", required=True, help="The tenant whose trail names the person.")
@click.option("--email", required=True, help="The person's e-mail address.")
@click.pass_obj
def erase_command(obj: Any, slug: str, email: str) -> None:
    """Erase a person from a tenant's audit trail (a right-to-erasure request): their e-mail
    address and name, and the IPs of the entries they made, are emptied. The entries stay,
    naming a pseudonym that no longer leads to anyone, and the trail still verifies. Audited as
    audit.person_erased, which names the pseudonym only."""
    app = obj.app
    require_schema(app)
    with app.app_context():
        tenant = _tenant(db.session(), slug)
        try:
            with db.write_transaction(app) as session:
                done = trail.erase(
                    session,
                    tenant_id=tenant.id,
                    email=email,
                    actor=CLI_ACTOR,
                    ip=None,
                    now=clock.now(app),
                )
        except trail.NobodyToErase:
            raise click.ClickException(
                f"no one with that e-mail address in {slug}'s audit trail (or erased already)"
            ) from None
    names = ", ".join((*done.pseudonyms, *done.accounts))
    click.echo(f"erased {names} from {slug}'s audit trail; {done.ips_erased} IPs emptied")


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
