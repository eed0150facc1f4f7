"""A business's brand: its logo and a short description

Revision ID: 0015
Revises: 0014
The logo lives in the database, not on a disk: several app processes, on several machines, share
only the database. It is stored as re-encoded pixels (never the bytes uploaded), with its type,
size and a version that the logo's URL carries, so browsers may keep it until it changes. The
description is the few lines clients read on the booking pages.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("logo", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("logo_type", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("logo_width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("logo_height", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("logo_version", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        for column in (
            "logo_version",
            "logo_height",
            "logo_width",
            "logo_type",
            "logo",
            "description",
        ):
            batch_op.drop_column(column)
