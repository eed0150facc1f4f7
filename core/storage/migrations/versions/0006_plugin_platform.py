"""The plugin platform

Revision ID: 0006
Revises: 0005
Leases for periodic jobs, plugin failures (for the marketplace's error counts), an outbox key
that makes a message "once only", and the discount a booking was given.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "plugin_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("plugin_name", sa.String(length=100), nullable=False),
        sa.Column("hook", sa.String(length=60), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("plugin_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_plugin_failures_recent", ["tenant_id", "plugin_name", "occurred_at"], unique=False
        )

    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(
            "uq_outbox_messages_tenant_dedupe", ["tenant_id", "dedupe_key"]
        )

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("discount_cents", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("discount_label", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("discount_label")
        batch_op.drop_column("discount_cents")

    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_outbox_messages_tenant_dedupe", type_="unique")
        batch_op.drop_column("dedupe_key")

    with op.batch_alter_table("plugin_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_plugin_failures_recent")

    op.drop_table("plugin_failures")
    op.drop_table("job_leases")
