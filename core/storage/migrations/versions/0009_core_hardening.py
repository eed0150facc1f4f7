"""Core hardening

Revision ID: 0009
Revises: 0008
Rate-limit counters shared by every worker when there is no Redis, and the password a client
sign-up chose (and the name it gave) kept on its verification link (not on the account) until the link is used with it.
Unverified client accounts made before this change get the same treatment: their password moves
to their open verification links, and the account keeps none until one of them is used.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        "ix_rate_limit_counters_window_ends_at",
        "rate_limit_counters",
        ["window_ends_at"],
    )
    with op.batch_alter_table("user_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE user_tokens SET password_hash = (SELECT users.password_hash FROM users"
        " WHERE users.id = user_tokens.user_id)"
        " WHERE purpose = 'verify_email' AND used_at IS NULL AND user_id IN"
        " (SELECT id FROM users WHERE role = 'client' AND email_verified_at IS NULL)"
    )
    # No argon2 hash starts with "!": a password check against it always fails.
    op.execute(
        "UPDATE users SET password_hash = '!' WHERE role = 'client' AND email_verified_at IS NULL"
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("user_tokens", schema=None) as batch_op:
        batch_op.drop_column("name")
        batch_op.drop_column("password_hash")
    op.drop_index("ix_rate_limit_counters_window_ends_at", table_name="rate_limit_counters")
    op.drop_table("rate_limit_counters")
