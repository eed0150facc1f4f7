"""Plugin SDK, second edition

Revision ID: 0008
Revises: 0007
What the second edition of the plugin SDK stores: each plugin's key -> JSON store per tenant, each
tenant's own encryption key (wrapped by the instance's), restricted-scope sessions, how often a
booking was moved, and the business's language.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "plugin_store",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("plugin", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "plugin", "key", name="uq_plugin_store_key"),
    )
    op.create_table(
        "tenant_keys",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rewrapped_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("language", sa.String(length=16), server_default="en", nullable=False)
        )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reschedule_count", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE bookings SET reschedule_count = (SELECT COUNT(*) FROM booking_reschedules"
        " WHERE booking_reschedules.booking_id = bookings.id)"
    )
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=40), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_column("scope")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("reschedule_count")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("language")
    op.drop_table("tenant_keys")
    op.drop_table("plugin_store")
