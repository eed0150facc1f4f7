"""Core's models and core's migrations describe the same schema: a column, index or constraint
added to one and forgotten in the other would pass every test that builds its tables from the
migrations, and fail only on a real upgrade or a query the missing index should have served."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bookwell.core import schema
from bookwell.core.mail import outbox
from bookwell.core.storage import db
from bookwell.core.storage.models import Base


def core_table_of(difference) -> str | None:
    """The table a difference from ``compare_metadata`` is about (a tuple, or a list of tuples
    for a column's modifications)."""
    first = difference[0] if isinstance(difference, list) else difference
    for part in first[1:]:
        table = getattr(part, "table", None)
        if table is not None:
            return table.name
        if isinstance(part, str) and part in Base.metadata.tables:
            return part
        name = getattr(part, "name", None)
        if first[0].endswith("_table") and name:
            return name
    return None


def test_the_migrated_schema_is_the_models_schema(blank_database_url):
    engine = db.build_engine(blank_database_url)
    try:
        schema.upgrade(engine)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    # Plugins' tables live in the same database but not in core's models.
    core = [d for d in differences if core_table_of(d) in Base.metadata.tables]
    assert core == []


def test_the_comparison_sees_a_missing_index(blank_database_url):
    """The test above cannot pass by seeing nothing: an index dropped after the migrations is
    reported."""
    engine = db.build_engine(blank_database_url)
    try:
        schema.upgrade(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_outbox_placeholders")
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    core = [d for d in differences if core_table_of(d) in Base.metadata.tables]
    assert [(d[0], d[1].name) for d in core] == [("add_index", "ix_outbox_placeholders")]


def test_the_look_for_leftover_placeholders_reads_only_placeholders(make_app):
    """Every delivery round runs it: on SQLite it must search the partial index, not scan the
    outbox (sent mail included)."""
    app = make_app()
    if db.engine_of(app).dialect.name != "sqlite":
        return  # PostgreSQL's choice depends on statistics; the index exists there too
    statement = outbox.placeholders_waiting(datetime.now(UTC), 50, None).compile(
        db.engine_of(app), compile_kwargs={"literal_binds": True}
    )
    with db.engine_of(app).connect() as connection:
        plan = [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")]
    assert plan == ["SEARCH outbox_messages USING INDEX ix_outbox_placeholders (created_at<?)"]
