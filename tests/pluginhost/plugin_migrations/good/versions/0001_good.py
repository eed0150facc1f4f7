"""A plugin "good-plugin" whose table is named with its prefix."""

import sqlalchemy as sa
from alembic import op

revision = "good_0001"
down_revision = None


def upgrade() -> None:
    op.create_table("good_plugin_items", sa.Column("id", sa.Integer(), primary_key=True))
