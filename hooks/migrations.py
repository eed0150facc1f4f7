"""The whole ``env.py`` of a plugin's Alembic migrations::

    from bookwell.hooks.migrations import run_migrations

    run_migrations()

Bookwell runs a plugin's migrations itself (``bookwell init``, every upgrade), handing Alembic the
live connection and the plugin's own version table; this reads them and runs the revisions.
"""

from __future__ import annotations

from typing import Any


def run_migrations(target_metadata: Any = None) -> None:
    """Run the plugin's revisions on the connection Bookwell gave, recording them in the
    plugin's own version table. ``target_metadata`` (the plugin's ``MetaData``) is only needed
    to autogenerate revisions."""
    from alembic import context

    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        version_table=context.config.attributes["version_table"],
        target_metadata=target_metadata,
        # SQLite alters a table by copying it: let Alembic's batch mode do that.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
