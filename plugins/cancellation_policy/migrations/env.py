"""Alembic environment of the plugin: Bookwell hands it the connection and its version table."""

from bookwell.hooks.migrations import run_migrations

run_migrations()
