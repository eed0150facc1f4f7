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
from bookwell.core.web.themes import load_themes


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


# What `tenants set` changes through the business's details, as the staff settings page does.
DETAILS = ("name", "contact_email", "phone", "address", "currency", "language", "timezone", "theme")


@tenants.command("set")
@click.argument("slug")
@click.option("--name", default=None, callback=single_line, help="The business's name.")
@click.option(
    "--timezone",
    "timezone_name",
    default=None,
    help="IANA zone, e.g. Europe/Paris; working hours are read in it from then on.",
)
@click.option(
    "--email", "contact_email", default=None, callback=single_line, help="Contact e-mail."
)
@click.option("--phone", default=None, callback=single_line, help="Contact phone number.")
@click.option(
    "--address", default=None, callback=multi_line, help="Postal address (the appointment place)."
)
@click.option("--currency", default=None, help="ISO 4217 code of the prices, e.g. EUR.")
@click.option(
    "--language",
    type=click.Choice(["en", "fr"]),
    default=None,
    help="The language of its pages and mail, unless a client's browser asks for another.",
)
@click.option("--theme", default=None, help="The theme of its booking pages: see `themes list`.")
@click.option(
    "--client-accounts/--no-client-accounts",
    default=None,
    help="Let clients create an account on the booking pages (confirmed by e-mail) to see "
    "their bookings; off closes those pages and sign-up, and signs clients out.",
)
@pass_context
def tenants_set(
    ctx: Context,
    slug: str,
    name: str | None,
    timezone_name: str | None,
    contact_email: str | None,
    phone: str | None,
    address: str | None,
    currency: str | None,
    language: str | None,
    theme: str | None,
    client_accounts: bool | None,
) -> None:
    """Change the settings of the tenant SLUG; those not given stay as they are. An empty
    --email, --phone or --address removes it."""
    details = {
        "name": name,
        "contact_email": contact_email,
        "phone": phone,
        "address": address,
        "currency": currency,
        "language": language,
        "timezone": timezone_name,
        "theme": theme,
    }
    given = {key: value for key, value in details.items() if value is not None}
    if not given and client_accounts is None:
        raise click.UsageError(
            "nothing to set: give at least one of --name, --timezone, --email, --phone, "
            "--address, --currency, --language, --theme, --client-accounts/--no-client-accounts"
        )
    if theme is not None:
        installed = load_themes()
        if theme not in installed:
            raise click.BadParameter(
                f"no theme {theme!r} is installed; installed: {', '.join(sorted(installed))}",
                param_hint="--theme",
            )
    app = require_schema(ctx.app)
    with app.app_context():
        tenant = db.session().scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            raise click.ClickException(f"no tenant with the slug {slug!r}")
        if given:
            before = {key: getattr(tenant, key) for key in DETAILS}
            current = {key: before[key] for key in ("name", "contact_email", "phone", "address")}
            try:
                updated = catalogue.update_business(
                    app,
                    tenant_id=tenant.id,
                    actor="cli",
                    now=clock.now(app),
                    **{**current, **given},
                )
            except catalogue.CatalogueError as error:
                problems = "; ".join(
                    f"{field}: {' '.join(messages)}" for field, messages in error.fields.items()
                )
                raise click.ClickException(problems or error.message) from error
            after = {key: getattr(updated, key) for key in DETAILS}
            for key in given:
                label = key.replace("contact_email", "e-mail").replace("_", " ")
                if before[key] == after[key]:
                    click.echo(f"{slug}: {label} already {_shown(after[key])}; nothing changed")
                else:
                    click.echo(f"{slug}: {label} {_shown(after[key])} (was {_shown(before[key])})")
        if client_accounts is not None:
            _set_client_accounts(app, slug, tenant.id, client_accounts)


def _shown(value: object) -> str:
    if value is None or value == "":
        return "(none)"
    return repr(value) if isinstance(value, str) and "\n" in value else str(value)


def _set_client_accounts(app, slug: str, tenant_id: int, client_accounts: bool) -> None:
    given = {"client_accounts": client_accounts}
    changed = catalogue.change_settings(
        app, tenant_id=tenant_id, actor="cli", now=clock.now(app), **given
    )
    for name, value in given.items():
        label = catalogue.SETTINGS[name]
        if name in changed:
            before, after = changed[name]
            click.echo(f"{slug}: {label} {_on_off(after)} (was {_on_off(before)})")
        else:
            click.echo(f"{slug}: {label} already {_on_off(value)}; nothing changed")
