"""Compliance: roles bound to providers, time-limited grants, a trail free of personal data

Revision ID: 0011
Revises: 0010
What issue 15 (HIPAA mode, roles and permissions, the audit trail for compliance) needs of core:

- ``users.provider_id``: the provider a staff account works as (``bookings.read_own``).
- ``access_grants``: a permission given for a while, to one account or to a role (platform
  support), on everything or on one subject (``client:<e-mail>``); plugins record them through
  ``ctx.grants`` (emergency access, support access) and core's permission checks consult them.
- ``audit_people`` and ``audit_personal``: the personal data the audit trail refers to by
  pseudonym (e-mail and name of a person; the IP of an entry), outside the hashed entries, so an
  erasure can empty them while the chain still verifies.
- ``bookings.client_phone`` becomes text: encrypted at rest it is longer than 40 characters.
- On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE of ``audit_entries`` to everyone;
  only the tables' owner (the migration role) can disable it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION bookwell_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % of audit_entries refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_users_provider_id_providers", "providers", ["provider_id"], ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.alter_column(
            "client_phone", existing_type=sa.String(length=40), type_=sa.Text(),
            existing_nullable=True,
        )
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("permission", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("plugin", sa.String(length=100), nullable=False),
        sa.Column("granted_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (role IS NULL)", name="ck_access_grants_one_grantee"
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["granted_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["revoked_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_access_grants_tenant_expires", "access_grants", ["tenant_id", "expires_at"]
    )
    op.create_table(
        "audit_people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pseudonym", name="uq_audit_people_pseudonym"),
    )
    op.create_index("ix_audit_people_tenant_email", "audit_people", ["tenant_id", "email"])
    op.create_table(
        "audit_personal",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["audit_entries.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["audit_people.id"]),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_index("ix_audit_personal_person_id", "audit_personal", ["person_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
            "FOR EACH ROW EXECUTE FUNCTION bookwell_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries "
            "FOR EACH STATEMENT EXECUTE FUNCTION bookwell_audit_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries")
        op.execute("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION IF EXISTS bookwell_audit_append_only()")
    op.drop_index("ix_audit_personal_person_id", table_name="audit_personal")
    op.drop_table("audit_personal")
    op.drop_index("ix_audit_people_tenant_email", table_name="audit_people")
    op.drop_table("audit_people")
    op.drop_index("ix_access_grants_tenant_expires", table_name="access_grants")
    op.drop_table("access_grants")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.alter_column(
            "client_phone", existing_type=sa.Text(), type_=sa.String(length=40),
            existing_nullable=True,
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("fk_users_provider_id_providers", type_="foreignkey")
        batch_op.drop_column("provider_id")
