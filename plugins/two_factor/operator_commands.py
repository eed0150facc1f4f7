"""``bookwell two_factor reset --tenant SLUG --email E`` (or ``--support --email E`` for a
platform support account): the operator's way back in for an account whose owner cannot reset
it (the owner's own, above all, and support's, who have no owner), after checking who asks."""

from __future__ import annotations

import click

from bookwell.hooks.pages import plugin_context

from . import authenticator, notices


@click.command("reset")
@click.option("--tenant", "slug", help="The business's slug.")
@click.option(
    "--support", "of_support", is_flag=True, help="A platform support account (no business)."
)
@click.option("--email", required=True, help="The account's e-mail address.")
def two_factor_reset(slug: str | None, of_support: bool, email: str) -> None:
    """Remove an account's authenticator app: its next login sets one up again."""
    if of_support == (slug is not None):
        raise click.UsageError("Give either --tenant SLUG or --support.")
    try:
        ctx = plugin_context(None if of_support else slug)
    except LookupError:
        raise click.ClickException(f"no business with the slug {slug!r}") from None
    where = ctx.tenant.name if ctx.tenant is not None else "platform support"
    account = ctx.store.get(authenticator.email_key(ctx, email))
    if account is None:
        raise click.ClickException(f"{email} has no authenticator app set up at {where}")
    authenticator.reset(ctx, account["id"], account["email"])
    ctx.audit("reset", f"user:{account['id']}", {"email": account["email"], "by": "operator"})
    notices.reset(ctx, account["email"], account["name"], "the platform's operator")
    click.echo(f"{email}: two-step login reset at {where}; the next login sets it up again")
