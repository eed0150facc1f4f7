"""A plugin "table-notes" with a table of notes per tenant, for ctx.tables."""

import sqlalchemy as sa
from alembic import op

revision = "table_notes_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "table_notes_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.Integer(),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("text", sa.String(200), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False, server_default="0"),
    )
