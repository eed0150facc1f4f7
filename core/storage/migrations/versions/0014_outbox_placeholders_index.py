"""A partial index on the outbox's placeholders

Revision ID: 0014
Revises: 0013
Every delivery round (the delivery thread or job, ``bookwell tick``) first looks for booking
mail still waiting as a placeholder (``compose_event`` set) whose request died before composing
it. Without an index that look read the whole outbox, sent mail included, on every round. The
index holds only the placeholders, which live for milliseconds: it stays a few rows long.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLACEHOLDERS = sa.text("compose_event IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_placeholders",
        "outbox_messages",
        ["created_at"],
        unique=False,
        sqlite_where=PLACEHOLDERS,
        postgresql_where=PLACEHOLDERS,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_placeholders", table_name="outbox_messages")
