"""Alembic environment: always handed a live connection by :mod:`bookwell.core.schema`."""

from alembic import context

from bookwell.core.storage import models  # noqa: F401  (registers the tables on Base.metadata)
from bookwell.core.storage.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
