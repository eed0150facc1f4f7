"""A plugin "stray" that creates one table in its prefix and one outside it."""

import sqlalchemy as sa
from alembic import op

revision = "stray_0001"
down_revision = None


def upgrade() -> None:
    op.create_table("stray_ok", sa.Column("id", sa.Integer(), primary_key=True))
    op.create_table("guests", sa.Column("id", sa.Integer(), primary_key=True))
