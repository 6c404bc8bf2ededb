"""The SQL a recommendation needs, captured from the service itself and replayed on raw asyncpg.

The service functions the endpoint calls run once in-process, recording each (statement, parameters) as it
goes to asyncpg: a `before_cursor_execute` listener on the engine for what SQLAlchemy runs (already in `$1`
form), and a connection class that records the calls for the hot statements the service runs on the driver
itself (app.db.DriverStatement). The recommendation runs on the hot read pool (app.db.create_engine(hot_reads=True):
autocommit, generic plans, read-only), and so does the capture. The replay runs the statements in order on one
asyncpg connection with that pool's session settings, in autocommit as the request does, with asyncpg's own
prepared-statement cache, so the difference to the HTTP figure is everything the service adds: HTTP, routing,
auth, the ORM, serialization.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import HOT_READ_SERVER_SETTINGS, create_engine, create_sessionmaker
from app.dispatch import service as dispatch_service
from app.geo.coords import CoordSys
from app.incidents import service as incident_service
from bench.infra import JWT_SECRET

# Sent by SQLAlchemy's asyncpg adapter around a transaction's statements (none on the hot read pool: autocommit).
TRANSACTION_CONTROL = {"", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


class RecordingConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no type hints
    """Calls `recorder` with every statement run on the driver directly (app.db.DriverStatement), at the moment
    it is called: in order with the SQLAlchemy listener's records."""

    recorder: ClassVar[Callable[[str, tuple[Any, ...]], None] | None] = None

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        if (recorder := type(self).recorder) is not None:
            recorder(query, args)
        rows: list[asyncpg.Record] = await super().fetch(query, *args, **kwargs)
        return rows

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        if (recorder := type(self).recorder) is not None:
            recorder(query, args)
        status: str = await super().execute(query, *args, **kwargs)
        return status


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: tuple[Any, ...]

    @property
    def is_team_knn(self) -> bool:
        return "FROM team" in self.sql and "<->" in self.sql


async def _recommend_as_the_endpoint_does(session: AsyncSession, settings: Settings, incident_id: int) -> int:
    # The body of app.dispatch.router.recommendation, minus HTTP and auth.
    site = await incident_service.site(session=session, incident_id=incident_id)
    recommendation = await dispatch_service.recommend(
        session=session,
        settings=settings,
        incident_id=site.id,
        lon=site.lon,
        lat=site.lat,
        incident_type=site.type,
        people_affected=site.people_affected,
        township=site.township_code,
        coord_sys=CoordSys.WGS84,
    )
    return len(recommendation.teams)


async def capture_recommendation_sql(database_url: str, incident_id: int) -> list[Statement]:
    """Run the recommendation once to warm up, then once more with the listener on; return its statements."""
    settings = Settings(database_url=database_url, jwt_secret=JWT_SECRET, environment="test")
    engine = create_engine(settings, connection_class=RecordingConnection, hot_reads=True)
    sessionmaker = create_sessionmaker(engine)
    captured: list[Statement] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append(Statement(statement, tuple(parameters or ())))

    def record_on_driver(query: str, args: tuple[Any, ...]) -> None:
        verb = (query.replace(";", " ").split() or [""])[0].upper()
        if verb not in TRANSACTION_CONTROL:
            captured.append(Statement(query, args))

    try:
        async with sessionmaker() as session:
            await _recommend_as_the_endpoint_does(session, settings, incident_id)
            await session.commit()
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        RecordingConnection.recorder = record_on_driver
        try:
            async with sessionmaker() as session:
                await _recommend_as_the_endpoint_does(session, settings, incident_id)
                await session.commit()
        finally:
            RecordingConnection.recorder = None
            event.remove(engine.sync_engine, "before_cursor_execute", record)
    finally:
        await engine.dispose()
    return captured


async def replay_connection(database_url: str) -> asyncpg.Connection:
    """A plain asyncpg connection with the session settings of the service's hot read pool (no JIT, generic plans,
    read-only), so the replay and its EXPLAINs plan as the service does; with JIT on, a generic plan at 100,000
    teams spends ~40 ms compiling. (Read-only: a section's setup writes on a connection of its own.)"""
    connection: asyncpg.Connection = await asyncpg.connect(
        database_url, server_settings={"jit": "off", **HOT_READ_SERVER_SETTINGS}
    )
    return connection


async def replay(conn: asyncpg.Connection, statements: Sequence[Statement]) -> float:
    """Seconds to run the statements in order, in autocommit as the service does, fetching every row."""
    start = time.perf_counter()
    for s in statements:
        await conn.fetch(s.sql, *s.parameters)
    return time.perf_counter() - start


async def explain(conn: asyncpg.Connection, statement: Statement) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of a captured statement with its own parameters: the *custom* plan,
    made for these values, which PostgreSQL uses for a prepared statement's first executions."""
    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, *statement.parameters)
    return [str(r[0]) for r in rows]


def sql_literal(value: Any) -> str:
    """A parameter as SQL text, for EXPLAIN EXECUTE (which takes no protocol parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, timedelta):
        return f"interval '{value.total_seconds()} seconds'"
    if isinstance(value, list | tuple):
        return "ARRAY[" + ", ".join(sql_literal(v) for v in value) + "]"
    return "'" + str(value).replace("'", "''") + "'"


async def explain_generic(conn: asyncpg.Connection, statement: Statement) -> list[str]:
    """The *generic* plan of the same statement (made without the values): what the service's hot read pool runs."""
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute("PREPARE bench_explain AS " + statement.sql)
        try:
            arguments = ", ".join(sql_literal(v) for v in statement.parameters)
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_explain({arguments})")
        finally:
            await conn.execute("DEALLOCATE bench_explain")
    return [str(r[0]) for r in rows]
