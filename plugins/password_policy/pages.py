"""The owner's page of locked accounts, and the operator's command that lifts a lock."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import click
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext

from bookwell.hooks.pages import csrf_form, plugin_context, render_staff_page, require_staff

from . import lockout

# Unlocking is the owner's: the same permission as switching the plugin itself on and off.
PERMISSION = "plugins.manage"
ACCOUNT_KEY = re.compile(r"[0-9a-f]{64}")

pages = Blueprint("password_policy", __name__, template_folder="templates")


@pages.get("/admin/<slug>/password_policy/")
def locked(slug: str):
    page = require_staff(slug, PERMISSION)
    ctx = plugin_context(slug)
    zone = ZoneInfo(ctx.tenant.timezone)
    accounts = [
        {**entry, "until_shown": datetime.fromisoformat(entry["until"]).astimezone(zone)}
        for entry in lockout.locked_accounts(ctx.store, ctx.now)
    ]
    return render_staff_page(
        page, "password_policy/locked.html", form=csrf_form(), accounts=accounts
    )


@pages.post("/admin/<slug>/password_policy/unlock")
def unlock(slug: str):
    require_staff(slug, PERMISSION)
    if not csrf_form().validate_on_submit():
        abort(400)
    account = request.form.get("account", "")
    if not ACCOUNT_KEY.fullmatch(account):
        abort(400)
    ctx = plugin_context(slug)
    email = lockout.unlock_account(ctx.store, ctx.now, account)
    if email is None:
        flash(gettext("That account is no longer locked."))
    else:
        ctx.audit("account.unlocked", f"login:{email}", {"by": "owner"})
        flash(gettext("%(email)s may log in again.", email=email))
    return redirect(url_for(".locked", slug=slug))


@click.command("unlock")
@click.option("--tenant", "slug", help="The business's slug.")
@click.option(
    "--support", "of_support", is_flag=True, help="A platform support account (no business)."
)
@click.option("--email", required=True, help="The locked account's e-mail address.")
def unlock_command(slug: str | None, of_support: bool, email: str) -> None:
    """Lift the lock of an account (and forget its failed logins), at once."""
    if of_support == (slug is not None):
        raise click.UsageError("Give either --tenant SLUG or --support.")
    try:
        # Support's lockout lives in the instance's store (their logins' context).
        ctx = plugin_context(None if of_support else slug)
    except LookupError:
        raise click.ClickException(f"no business with the slug {slug!r}") from None
    where = ctx.tenant.name if ctx.tenant is not None else "platform support"
    address = email.strip().casefold()  # as a login writes it
    if lockout.unlock(ctx.store, ctx.now, address):
        ctx.audit("account.unlocked", f"login:{address}", {"by": "operator"})
        click.echo(f"{address} may log in again at {where}.")
    else:
        click.echo(f"{address} was not locked at {where}; its failures are forgotten.")


operator_commands = [unlock_command]
