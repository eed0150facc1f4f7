"""``bookwell tenants create``: the businesses that take bookings."""

from __future__ import annotations

import click

from bookwell.core.booking.tenants import TenantError, create_tenant
from bookwell.core.cli.inputs import multi_line, single_line
from bookwell.core.cli.instance import Context, pass_context, require_schema
from bookwell.core.foundation import clock
from bookwell.core.storage import db


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
