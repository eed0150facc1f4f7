"""``bookwell plugins list|enable|disable|new``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from sqlalchemy import select

from bookwell.core import schema
from bookwell.core.cli import scaffold
from bookwell.core.foundation import clock
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost import rules as plugin_rules
from bookwell.core.pluginhost import settings as plugin_settings
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant


def _tenant_id(app, slug: str) -> int:
    with app.app_context():
        tenant_id = db.session().scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise click.ClickException(f"no tenant with the slug {slug!r}")
    return tenant_id


@click.group()
def plugins() -> None:
    """Installed plugins, and which ones a tenant uses."""


@plugins.command("list")
@click.option("--tenant", "slug", default=None, help="Also show whether SLUG enabled each one.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_plugins(obj, slug: str | None, as_json: bool) -> None:
    """List installed plugins, broken ones with the reason."""
    app = obj.app
    host = host_of(app)
    schema.break_plugins_behind(db.engine_of(app), host)  # as `bookwell serve` finds them
    if slug is None:
        listing = plugin_changes.listing(host)
    else:
        tenant_id = _tenant_id(app, slug)
        with app.app_context():
            listing = plugin_changes.listing(host, db.session(), tenant_id, clock.now(app))
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for entry in listing:
        mark = "" if slug is None else ("[on]  " if entry["enabled"] else "[off] ")
        tail = f"  BROKEN: {entry['error']}" if entry["status"] == "broken" else ""
        click.echo(f"{mark}{entry['name']} {entry['version']} ({entry['source']}){tail}")


@plugins.command("enable")
@click.argument("name")
@click.option("--tenant", "slug", required=True)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting; a list is comma-separated, and KEY= empties it.",
)
@click.pass_obj
def enable_plugin(obj, name: str, slug: str, assignments: tuple[str, ...]) -> None:
    """Enable NAME for a tenant, with the plugins it requires, or update its settings."""
    app = obj.app
    host = host_of(app)
    tenant_id = _tenant_id(app, slug)
    try:
        manifest = host.manifest(name)
        values = {}
        for assignment in assignments:
            key, separator, text = assignment.partition("=")
            if not separator:
                raise click.ClickException(f"--set wants KEY=VALUE, not {assignment!r}")
            values[key.strip()] = plugin_settings.from_text(manifest, key.strip(), text)
        with app.app_context():
            done = plugin_changes.enable(app, tenant_id, name, values, clock.now(app))
    except KeyError as error:
        raise click.ClickException(f"no plugin named {name!r} is installed") from error
    except plugin_rules.RuleBroken as error:
        raise click.ClickException(f"refused ({error.code}): {error.message}") from error
    except plugin_settings.InvalidSettings as error:
        raise click.ClickException(f"invalid settings, nothing changed: {error}") from error
    except LookupError as error:
        raise click.ClickException(str(error)) from error
    verb = "updated" if done.old is not None else "enabled"
    click.echo(f"{verb} {name} for {slug}: {json.dumps(done.settings, sort_keys=True)}")
    if done.also_enabled:
        click.echo(f"also enabled (required by {name}): {', '.join(done.also_enabled)}")
    if done.raised:
        click.echo(f"settings raised to the floors of {name}: {', '.join(done.raised)}")


@plugins.command("disable")
@click.argument("name")
@click.option("--tenant", "slug", required=True)
@click.pass_obj
def disable_plugin(obj, name: str, slug: str) -> None:
    """Disable NAME for a tenant (its settings are kept)."""
    app = obj.app
    tenant_id = _tenant_id(app, slug)
    try:
        with app.app_context():
            was_on = plugin_changes.disable(app, tenant_id, name, clock.now(app))
    except plugin_changes.UnknownPlugin as error:
        raise click.ClickException(str(error)) from error
    except plugin_rules.RuleBroken as error:
        raise click.ClickException(f"refused ({error.code}): {error.message}") from error
    click.echo(f"disabled {name} for {slug}" if was_on else f"{name} was not enabled for {slug}")


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the bookwell-NAME folder.",
)
@click.pass_context
def new_plugin(context: click.Context, name: str, parent: Path) -> None:
    """Write a new plugin package, bookwell-NAME/, ready to install and test: the entry point,
    a manifest, one guard, a README and tests that pass. NAME: lowercase letters, digits and
    underscores."""
    core_commands = set(context.find_root().command.commands)  # type: ignore[attr-defined]
    try:
        root = scaffold.write_plugin(parent, name, core_commands)
    except scaffold.CannotScaffold as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f"cannot write under {parent}: {error}") from error
    click.echo(f"wrote {root}/ (the plugin {name}: a guard refusing bookings made too late)")
    click.echo(f"next: pip install -e '{root}[test]' && pytest {root / 'tests'}")
