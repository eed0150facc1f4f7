"""The front desk's callback list and the record of who accepted the house rules.

Revision ID: front_desk_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "front_desk_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "front_desk_callbacks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.Integer(),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        # The phone number only encrypted with the business's key, and its keyed digest to find
        # an open callback for the same number without decrypting them all.
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("phone_digest", sa.String(64), nullable=False, index=True),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("asked", sa.Integer(), nullable=False),
        sa.Column("taken_by", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "front_desk_acceptances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.Integer(),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("user_email", sa.String(254), nullable=False),
        sa.Column("rules_version", sa.Integer(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "user_id", "rules_version"),
    )


def downgrade() -> None:
    op.drop_table("front_desk_acceptances")
    op.drop_table("front_desk_callbacks")
