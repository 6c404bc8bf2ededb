"""The SQL a recommendation needs, captured from the service itself and replayed on raw asyncpg.

The service functions the endpoint calls run once in-process, with a `before_cursor_execute` listener on
the engine recording each (statement, parameters) exactly as SQLAlchemy hands them to asyncpg (already in
`$1` form). The replay runs them in order on one asyncpg connection inside one transaction, as the request
does, with asyncpg's own prepared-statement cache, so the difference to the HTTP figure is everything the
service adds: HTTP, routing, auth, the ORM, serialization.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.dispatch import service as dispatch_service
from app.geo.coords import CoordSys
from app.incidents import service as incident_service
from app.incidents.types import IncidentType
from bench.infra import JWT_SECRET


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: tuple[Any, ...]

    @property
    def is_team_knn(self) -> bool:
        return "FROM team" in self.sql and "<->" in self.sql


async def _recommend_as_the_endpoint_does(session: AsyncSession, settings: Settings, incident_id: int) -> int:
    # The body of app.dispatch.router.recommendation, minus HTTP and auth.
    incident = await incident_service.get(session=session, incident_id=incident_id)
    lon, lat = incident_service.lon_lat_of(incident)
    recommendation = await dispatch_service.recommend(
        session=session,
        settings=settings,
        incident=incident,
        lon=lon,
        lat=lat,
        incident_type=IncidentType(incident.type),
        people_affected=incident.people_affected,
        township=incident.township_code,
        coord_sys=CoordSys.WGS84,
    )
    return len(recommendation.teams)


async def capture_recommendation_sql(database_url: str, incident_id: int) -> list[Statement]:
    """Run the recommendation once to warm up, then once more with the listener on; return its statements."""
    settings = Settings(database_url=database_url, jwt_secret=JWT_SECRET, environment="test")
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    captured: list[Statement] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append(Statement(statement, tuple(parameters or ())))

    try:
        async with sessionmaker() as session:
            await _recommend_as_the_endpoint_does(session, settings, incident_id)
            await session.commit()
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            async with sessionmaker() as session:
                await _recommend_as_the_endpoint_does(session, settings, incident_id)
                await session.commit()
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
    finally:
        await engine.dispose()
    # pool_pre_ping's ping is not a cursor execute; anything else recorded is a real statement of the request.
    return captured


async def replay(conn: asyncpg.Connection, statements: Sequence[Statement]) -> float:
    """Seconds to run the statements in order, in one transaction (BEGIN ... COMMIT), fetching every row."""
    start = time.perf_counter()
    async with conn.transaction():
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
    """The *generic* plan of the same statement (made without the values): what a prepared statement
    (asyncpg's, so the service's) may switch to after five executions when it looks no costlier."""
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute("PREPARE bench_explain AS " + statement.sql)
        try:
            arguments = ", ".join(sql_literal(v) for v in statement.parameters)
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_explain({arguments})")
        finally:
            await conn.execute("DEALLOCATE bench_explain")
    return [str(r[0]) for r in rows]
