"""Every version of a business's Terms & Conditions, with its exact text.

Revision ID: terms_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "terms_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "terms_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.Integer(),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        # Two requests numbering a new text at once: one insert wins, the other retries.
        sa.UniqueConstraint("tenant_id", "version", name="uq_terms_versions_tenant_version"),
        sa.UniqueConstraint("tenant_id", "text_sha256", name="uq_terms_versions_tenant_sha256"),
    )


def downgrade() -> None:
    op.drop_table("terms_versions")
