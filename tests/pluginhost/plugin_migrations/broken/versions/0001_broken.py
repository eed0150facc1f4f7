"""A plugin "broken-migration" whose migration fails half-way."""

import sqlalchemy as sa
from alembic import op

revision = "broken_0001"
down_revision = None


def upgrade() -> None:
    op.create_table("broken_migration_half", sa.Column("id", sa.Integer(), primary_key=True))
    raise RuntimeError("this migration fails")
