"""The schema comes from Alembic only: the migrations round-trip and agree with the models."""

from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import to_asyncpg_url
from app.models import Base
from tests.conftest import RUN_ID, create_database, drop_database, run_cli


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    name = f"jizhou_test_{RUN_ID}_migrations"
    url = await create_database(name)
    try:
        yield url
    finally:
        await drop_database(name)


def _differences(connection) -> list[object]:  # type: ignore[no-untyped-def]
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    env_module = __import__("geoalchemy2.alembic_helpers", fromlist=["include_object"])
    context = MigrationContext.configure(
        connection,
        opts={
            "include_object": lambda obj, name, type_, reflected, compare_to: (
                not (type_ == "table" and name in {"spatial_ref_sys", "topology", "layer"})
                and env_module.include_object(obj, name, type_, reflected, compare_to)
            ),
            "compare_type": True,
        },
    )
    assert ScriptDirectory.from_config(Config("alembic.ini")).get_current_head() == context.get_current_revision()
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_downgrade_upgrade_and_models_match(empty_db: str) -> None:
    for step in (("upgrade", "head"), ("downgrade", "base"), ("upgrade", "head")):
        done = run_cli(empty_db, "-m", "alembic", *step)
        assert done.returncode == 0, done.stderr[-3000:]
    engine = create_async_engine(to_asyncpg_url(empty_db))
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
            assert differences == [], f"models and migrations disagree: {differences}"
            # Every place is WGS-84 geography with a GiST index.
            columns = (
                await conn.execute(
                    text(
                        "SELECT f_table_name, f_geography_column, type, srid FROM geography_columns "
                        "WHERE f_table_schema = 'public' ORDER BY 1, 2"
                    )
                )
            ).all()
            assert {(t, c) for t, c, _, _ in columns} >= {
                ("township", "seat"),
                ("township", "boundary"),
                ("incident", "location"),
                ("team", "base"),
                ("team", "position"),
                ("shelter", "location"),
                ("depot", "location"),
                ("helipad", "location"),
            }
            assert all(srid == 4326 for *_, srid in columns)
            indexed = set(
                (
                    await conn.execute(
                        text(
                            "SELECT t.relname, a.attname FROM pg_index i JOIN pg_class ix ON ix.oid = i.indexrelid "
                            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_am am ON am.oid = ix.relam "
                            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey) "
                            "WHERE am.amname = 'gist'"
                        )
                    )
                ).all()
            )
            missing = {(t, c) for t, c, *_ in columns} - indexed
            assert not missing, f"geography columns without a GiST index: {missing}"
            # Position fixes churn the team table: it is vacuumed and analysed after a fixed count of changes.
            options = (await conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'team'"))).scalar()
            assert {"autovacuum_vacuum_threshold=1000", "autovacuum_analyze_threshold=200"} <= set(options or [])
            # The audit trail cannot be rewritten.
            await conn.execute(
                text(
                    "INSERT INTO event (topic, subject_type, subject_id, actor, data) VALUES ('t', 's', '1', 'a', '{}')"
                )
            )
            with pytest.raises(Exception, match="append-only"):
                await conn.execute(text("UPDATE event SET topic = 'x'"))
    finally:
        await engine.dispose()
