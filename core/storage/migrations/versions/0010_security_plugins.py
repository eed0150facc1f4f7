"""Security plugins

Revision ID: 0010
Revises: 0009
What the security plugins need of core: the IP and user agent with each consent a booking carries
(proof of who agreed, from where), the refund a cancelled prepaid booking is due, and a plugin
store for the whole instance (platform support's logins, which belong to no business). And the
indexes that deleting old bookings needs: a booking's consents and outbox messages by booking.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("booking_consents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_booking_consents_booking_id"), ["booking_id"], unique=False
        )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_messages_booking_id"), ["booking_id"], unique=False
        )
    with op.batch_alter_table("booking_consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ip", sa.String(length=45), nullable=True))
        batch_op.add_column(sa.Column("user_agent", sa.String(length=300), nullable=True))
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_due_cents", sa.Integer(), nullable=True))
    op.create_table(
        "platform_plugin_store",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plugin", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plugin", "key", name="uq_platform_plugin_store_key"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("platform_plugin_store")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("refund_due_cents")
    with op.batch_alter_table("booking_consents", schema=None) as batch_op:
        batch_op.drop_column("user_agent")
        batch_op.drop_column("ip")
        batch_op.drop_index(batch_op.f("ix_booking_consents_booking_id"))
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_messages_booking_id"))
