"""Speed: a stored bound on how long a booking blocks, and mail composed after the commit

Revision ID: 0013
Revises: 0012
What issue 17 (speed) needs of the schema:

- ``tenants.longest_block_minutes``: the longest time (duration plus both buffers) that any of
  the tenant's services has ever blocked. No booking blocks longer, so availability can bound
  its bookings query from below as well as from above (``blocked_from`` within that many
  minutes before the window) and reads only the bookings near the window, however long the
  provider's past. It never decreases: a booking made before a service got shorter still blocks
  its old length. Backfilled from the services and the bookings already stored.
- ``outbox_messages.compose_event`` and ``compose_facts``: a booking's mail is no longer composed
  inside the booking's write transaction. The transaction writes one placeholder row naming the
  event (``confirmed``, ``cancelled``, ...) and the facts that only that moment knows, sealed
  (the manage token, which the booking keeps only as a hash; the previous start and provider of
  a reschedule). After the commit the placeholder is composed into the real messages, exactly
  once, by whoever gets to it first (the request, the delivery job, or ``bookwell tick``).
  ``compose_event`` is NULL on every composed row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Minutes rounded up: a bound a little too wide costs a row or two, one too narrow a double booking.
LONGEST_BOOKING = {
    "postgresql": "SELECT tenant_id, MAX(CEIL(EXTRACT(EPOCH FROM (blocked_until - blocked_from))"
    " / 60.0)) FROM bookings GROUP BY tenant_id",
    "sqlite": "SELECT tenant_id, MAX(CAST(ROUND((julianday(blocked_until)"
    " - julianday(blocked_from)) * 1440 + 0.4999) AS INTEGER)) FROM bookings GROUP BY tenant_id",
}


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("longest_block_minutes", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("compose_event", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("compose_facts", sa.Text(), nullable=True))

    connection = op.get_bind()
    longest: dict[int, int] = {}
    services = connection.execute(
        sa.text(
            "SELECT tenant_id, MAX(duration_minutes + buffer_before_minutes"
            " + buffer_after_minutes) FROM services GROUP BY tenant_id"
        )
    )
    for tenant_id, minutes in services:
        longest[tenant_id] = max(longest.get(tenant_id, 0), int(minutes or 0))
    for tenant_id, minutes in connection.execute(sa.text(LONGEST_BOOKING[connection.dialect.name])):
        longest[tenant_id] = max(longest.get(tenant_id, 0), int(minutes or 0))
    for tenant_id, minutes in longest.items():
        connection.execute(
            sa.text("UPDATE tenants SET longest_block_minutes = :minutes WHERE id = :id"),
            {"minutes": minutes, "id": tenant_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("compose_facts")
        batch_op.drop_column("compose_event")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("longest_block_minutes")
