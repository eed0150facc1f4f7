"""What every command works on: the instance folder, its app (built on first use), and the
check that its schema is current before a command reads or writes it."""

from __future__ import annotations

import os

import click
from flask import Flask

from bookwell.core import schema
from bookwell.core.app.factory import create_app
from bookwell.core.foundation import config
from bookwell.core.storage import db


class Context:
    def __init__(self, instance: str | None) -> None:
        self.instance = instance
        self._app: Flask | None = None

    @property
    def app(self) -> Flask:
        if self._app is None:
            self._check_folder()
            try:
                self._app = create_app({"INSTANCE_PATH": self.instance} if self.instance else None)
            except Exception as error:  # a bad setting must read as one line, not a trace
                raise click.ClickException(f"cannot start: {error}") from error
        return self._app

    def _check_folder(self) -> None:
        """A folder that is not there is most likely a mistyped path: one line saying so, rather
        than warnings about its missing secrets and a database made there on the way. ``init``
        and ``demo`` create it before they use the app; with ``DATABASE_URL`` set, the data
        lives elsewhere and the folder may legitimately be absent."""
        folder = config.resolve_instance_path(self.instance)
        if folder.is_dir() or os.environ.get("DATABASE_URL"):
            return
        if folder.exists():
            raise click.ClickException(f"the instance {folder} is not a folder")
        raise click.ClickException(
            f"no instance folder at {folder}: create it with `bookwell --instance {folder} init`"
        )


pass_context = click.make_pass_decorator(Context)


def require_schema(app: Flask) -> Flask:
    """``app``, if its schema is current; else the command stops with one line saying so."""
    if not schema.is_current(db.engine_of(app)):
        raise click.ClickException(
            "the schema is missing or old: run `bookwell init` first (as the role that owns the "
            "tables, BOOKWELL_MIGRATION_DATABASE_URL, if the app's may not change them)"
        )
    return app
