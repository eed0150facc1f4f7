"""``bookwell users create`` and ``bookwell tokens create|revoke``."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select, update

from bookwell.core.access import sessions, users
from bookwell.core.cli.inputs import single_line
from bookwell.core.cli.instance import require_schema
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import ApiKey, Role, Tenant


def _tenant_id(app, slug: str | None, support: bool) -> int | None:
    if support == (slug is not None):
        raise click.UsageError("give either --tenant SLUG or --support")
    if support:
        return None
    with app.app_context():
        tenant_id = db.session().scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise click.ClickException(f"no tenant with the slug {slug!r}")
    return tenant_id


@click.group("users")
def users_group() -> None:
    """People who log in: staff, clients and platform support."""


@users_group.command("create")
@click.option(
    "--tenant", "slug", default=None, callback=single_line, help="The tenant the user belongs to."
)
@click.option("--support", is_flag=True, help="A platform support user (no tenant).")
@click.option("--email", required=True, callback=single_line)
@click.option("--role", default=None, help="owner, manager, staff, receptionist or client.")
@click.option("--name", default="", callback=single_line)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
@click.pass_obj
def create(obj, slug, support, email, role, name, password_stdin) -> None:
    """Create a user; the password is read from standard input, never from the command line."""
    app = require_schema(obj.app)
    tenant_id = _tenant_id(app, slug, support)
    role = str(Role.SUPPORT) if support else role
    if not role:
        raise click.UsageError("--role is required with --tenant")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        with app.app_context():
            user = users.create_user(
                app,
                tenant_id=tenant_id,
                email=email,
                role=role,
                password=password,
                name=name,
                now=clock.now(app),
            )
    except users.UserError as error:
        raise click.ClickException(error.message) from error
    click.echo(f"created {user.role} {user.email}")


@click.group("tokens")
def tokens_group() -> None:
    """API keys for integrations (stored hashed; shown once)."""


@tokens_group.command("create")
@click.option("--tenant", "slug", default=None, callback=single_line)
@click.option("--support", is_flag=True)
@click.option("--email", required=True, callback=single_line)
@click.pass_obj
def create_token(obj, slug, support, email) -> None:
    """Make an API key for an existing user and print it (only this once)."""
    app = require_schema(obj.app)
    tenant_id = _tenant_id(app, slug, support)
    with app.app_context():
        user = users.find_user(db.session(), tenant_id, email)
        if user is None or not user.active:
            raise click.ClickException(f"no active user {users.canonical_email(email)} there")
        with db.write_transaction(app) as writer:
            key, secret = sessions.create_api_key(writer, user, clock.now(app))
            from bookwell.core import audit

            audit.record(
                writer,
                tenant_id=tenant_id,
                actor="cli",
                ip=None,
                action="api_key.created",
                subject=f"api_key:{key.prefix}",
                details={"user": user.id},
                now=clock.now(app),
            )
    click.echo(secret)


@tokens_group.command("revoke")
@click.argument("key", callback=single_line)
@click.pass_obj
def revoke_token(obj, key: str) -> None:
    """Revoke an API key, given whole or by the prefix `tokens create` printed first."""
    app = require_schema(obj.app)
    with app.app_context(), db.write_transaction(app) as writer:
        if len(key) > 12:
            found = writer.scalar(select(ApiKey).where(ApiKey.secret_hash == sessions.digest(key)))
        else:
            found = writer.scalar(select(ApiKey).where(ApiKey.prefix == key))
        if found is None or found.revoked_at is not None:
            raise click.ClickException("no such live API key")
        writer.execute(
            update(ApiKey).where(ApiKey.id == found.id).values(revoked_at=clock.now(app))
        )
    click.echo(f"revoked {found.prefix}…")
