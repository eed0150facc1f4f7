"""The operator's command: ``bookwell front_desk revoke --tenant SLUG --email ADDRESS``."""

import click

from bookwell.hooks.pages import plugin_context

from .tables import acceptances


@click.command("revoke")
@click.option("--tenant", "slug", required=True, help="The business's slug.")
@click.option("--email", required=True, help="The staff member's e-mail address.")
def front_desk_revoke(slug, email):
    """Make a staff member accept the house rules again at their next login."""
    ctx = plugin_context(slug)
    address = email.strip().lower()
    removed = ctx.tables.delete(acceptances, acceptances.c.user_email == address)
    if removed:
        ctx.audit("house_rules.revoked", f"staff:{address}", {"acceptances": removed})
        click.echo(f"{address} will accept the house rules of {ctx.tenant.name} again")
    else:
        click.echo(f"{address} has accepted no house rules at {ctx.tenant.name}")
