"""The plugin's tables, described as its migration made them, for ``ctx.tables``."""

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

metadata = MetaData()

callbacks = Table(
    "front_desk_callbacks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    Column("phone", Text, nullable=False),  # ctx.secrets.encrypt of the normalised number
    Column("phone_digest", String(64), nullable=False),
    Column("note", String(500), nullable=False),
    Column("asked", Integer, nullable=False),
    Column("taken_by", String(254), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=True),
)

acceptances = Table(
    "front_desk_acceptances",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("user_email", String(254), nullable=False),
    Column("rules_version", Integer, nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
)
