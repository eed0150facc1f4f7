"""The cancellation policy's block list

Revision ID: cancellation_policy_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "cancellation_policy_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cancellation_policy_blocks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.Integer(),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        # "email" or "phone"; the digest is ctx.secrets.digest of the normalised value.
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        # The case-folded address, for staff to see whom they blocked; never a phone number.
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("tenant_id", "kind", "digest", name="uq_cancellation_policy_blocks"),
    )


def downgrade() -> None:
    op.drop_table("cancellation_policy_blocks")
