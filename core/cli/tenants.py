"""``bookwell tenants create`` and ``set``: the businesses that take bookings, and their
settings."""

from __future__ import annotations

import click
from sqlalchemy import select

from bookwell.core.booking import catalogue
from bookwell.core.booking.tenants import TenantError, create_tenant
from bookwell.core.cli.inputs import multi_line, single_line
from bookwell.core.cli.instance import Context, pass_context, require_schema
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant


@click.group()
def tenants() -> None:
    """Businesses that take bookings."""


@tenants.command("create")
@click.argument("slug", callback=single_line)
@click.option(
    "--name", required=True, callback=single_line, help="The business's name, as clients see it."
)
@click.option("--timezone", "timezone_name", required=True, help="IANA zone, e.g. Europe/Paris.")
@click.option(
    "--email", "contact_email", default=None, callback=single_line, help="Contact e-mail."
)
@click.option("--phone", default=None, callback=single_line, help="Contact phone number.")
@click.option(
    "--address",
    default=None,
    callback=multi_line,
    help="Postal address (used as the appointment place).",
)
@click.option("--currency", default="EUR", show_default=True, help="ISO 4217 code of the prices.")
@pass_context
def tenants_create(
    ctx: Context,
    slug: str,
    name: str,
    timezone_name: str,
    contact_email: str | None,
    phone: str | None,
    address: str | None,
    currency: str,
) -> None:
    """Create the tenant SLUG."""
    require_schema(ctx.app)
    try:
        with db.write_transaction(ctx.app) as session:
            create_tenant(
                session,
                slug,
                name=name,
                timezone=timezone_name,
                now=clock.now(ctx.app),
                contact_email=contact_email,
                phone=phone,
                address=address,
                currency=currency,
            )
    except TenantError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"created tenant {slug}")


def _on_off(value: bool) -> str:
    return "on" if value else "off"


@tenants.command("set")
@click.argument("slug")
@click.option(
    "--client-accounts/--no-client-accounts",
    default=None,
    help="Let clients create an account on the booking pages (confirmed by e-mail) to see "
    "their bookings; off closes those pages and sign-up, and signs clients out.",
)
@pass_context
def tenants_set(ctx: Context, slug: str, client_accounts: bool | None) -> None:
    """Change the settings of the tenant SLUG; those not given stay as they are."""
    given = {"client_accounts": client_accounts}
    if all(value is None for value in given.values()):
        raise click.UsageError("nothing to set: give --client-accounts or --no-client-accounts")
    app = require_schema(ctx.app)
    with app.app_context():
        tenant = db.session().scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            raise click.ClickException(f"no tenant with the slug {slug!r}")
        changed = catalogue.change_settings(
            app, tenant_id=tenant.id, actor="cli", now=clock.now(app), **given
        )
    for name, value in given.items():
        if value is None:
            continue
        label = catalogue.SETTINGS[name]
        if name in changed:
            before, after = changed[name]
            click.echo(f"{slug}: {label} {_on_off(after)} (was {_on_off(before)})")
        else:
            click.echo(f"{slug}: {label} already {_on_off(value)}; nothing changed")
