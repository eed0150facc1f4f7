"""``bookwell two_factor reset --tenant SLUG --email E``: the operator's way back in for an
account whose owner cannot reset it (the owner's own, above all), after checking who asks."""

from __future__ import annotations

import click

from bookwell.hooks.pages import plugin_context

from . import authenticator, notices


@click.command("reset")
@click.option("--tenant", "slug", required=True, help="The business's slug.")
@click.option("--email", required=True, help="The account's e-mail address.")
def two_factor_reset(slug: str, email: str) -> None:
    """Remove an account's authenticator app: its next login sets one up again."""
    ctx = plugin_context(slug)
    account = ctx.store.get(authenticator.email_key(ctx, email))
    if account is None:
        raise click.ClickException(f"{email} has no authenticator app set up at {ctx.tenant.name}")
    authenticator.reset(ctx, account["id"], account["email"])
    ctx.audit("reset", f"user:{account['id']}", {"email": account["email"], "by": "operator"})
    notices.reset(ctx, account["email"], account["name"], "the platform's operator")
    click.echo(
        f"{email}: two-step login reset at {ctx.tenant.name}; the next login sets it up again"
    )
