"""Database engine, the declarative base and the request's unit of work.

A request gets one session; the session dependency commits once when the route returns
(before the response is sent, so a failed commit is never reported as a success) and rolls
back on any error. Services only add and flush.
"""

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar

import asyncpg
import orjson
import structlog
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, TextClause, event, func
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.config import Settings
from app.errors import AppError, ServiceUnavailable, is_database_unavailable

log = structlog.get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


# A pooled connection idle for longer than this is pinged before use (see ping_idle_connections).
PING_IF_IDLE_S = 1.0


# Connections of the hot read pool (create_engine(hot_reads=True)): every statement run on them plans generically,
# and none may write.
HOT_READ_SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan", "default_transaction_read_only": "on"}


def create_engine(
    settings: Settings, *, connection_class: type[asyncpg.Connection] = asyncpg.Connection, hot_reads: bool = False
) -> AsyncEngine:
    """The engine every process uses; `connection_class` lets the bench record statements (bench/capture.py).

    `hot_reads=True` makes the second pool, for the read paths asked for all the time (the recommendation: at
    every incident, and every few seconds while one is open). Its connections are autocommit and read-only, so a
    request on it sends no BEGIN and no COMMIT, and they plan every statement generically as a session setting
    (no SET LOCAL): three of the recommendation's six round trips gone, each ~0.1 ms of CPU on either side here.
    Generically, because for the recommendation's big LATERAL KNN statements PostgreSQL otherwise keeps choosing
    a custom plan per call, ~0.9 ms of planning for ~0.5 ms of execution, while the generic plans walk the same
    GiST indexes (bench section 3 prints them at 100,000 teams; a bound LIMIT would not, see app.db.sql_limit).
    Only statements whose generic plan is known to be right belong on it. Each statement sees its own snapshot,
    which an advice like the recommendation can take (booking re-checks every team atomically).
    """
    server_settings = {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.db_statement_timeout_ms * 3),
        "application_name": "jizhou-api-reads" if hot_reads else "jizhou-api",
        # Short queries only: a plan whose estimate crosses jit_above_cost (a prepared statement's
        # generic plan, say) would spend ~100 ms compiling to save microseconds (bench, section 3).
        "jit": "off",
    }
    if hot_reads:
        server_settings |= HOT_READ_SERVER_SETTINGS
    engine = create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_read_pool_size if hot_reads else settings.db_pool_size,
        max_overflow=settings.db_read_max_overflow if hot_reads else settings.db_max_overflow,
        # json/jsonb columns (the recommendation's composites) decoded by orjson, not the standard library.
        json_deserializer=orjson.loads,
        # Waiting for a pooled connection is bounded too: past it the request gets a 503.
        pool_timeout=settings.db_connect_timeout_s,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            "connection_class": connection_class,
            "server_settings": server_settings,
        },
        **({"isolation_level": "AUTOCOMMIT"} if hot_reads else {}),
    )
    ping_idle_connections(engine)
    return engine


def ping_idle_connections(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only when it has been idle for a while.

    SQLAlchemy's pool_pre_ping pings at every checkout: a round trip per request, and on this machine a loopback
    send costs ~0.25 ms of CPU (bench section 1). A connection used within the last second is as good as a ping
    says. One that sat idle (where a database restart hides) is pinged, and replaced if it does not answer, so
    the first request after a quiet restart still succeeds. A restart under load fails the requests that hold
    or next take a broken connection with a 503 (database_unavailable, Retry-After), and SQLAlchemy's disconnect
    handling then recycles every connection older than the failure (tests/reliability/test_database_restart.py).
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def remember_when_idle(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since <= PING_IF_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(f"an idle pooled connection did not answer a ping: {exc!r}") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after the commit so routes can serialize what they wrote.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# Called with the session after a successful commit (the live feed's wake-up hooks in here).
AfterCommitHook = Callable[[AsyncSession], Any]


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException as exc:
            # The connection may be gone (that may be why we are here): a failed rollback changes nothing.
            with contextlib.suppress(Exception):
                await session.rollback()
            if (unavailable := _unavailable(exc)) is not None:
                raise unavailable from exc
            raise
    # Committed: what follows must never turn a done write into an error for the client.
    for hook in getattr(request.app.state, "after_commit_hooks", ()):
        try:
            await hook(session)
        except Exception:
            log.exception("after_commit_hook_failed", hook=getattr(hook, "__qualname__", repr(hook)))


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on the hot read pool (create_engine(hot_reads=True)): nothing to commit, nothing to roll back."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.read_sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException as exc:
            if (unavailable := _unavailable(exc)) is not None:
                raise unavailable from exc
            raise


def _unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The database's absence, as a handled 503 (an exception escaping the app would make the server drop the
    client's keep-alive connection too)."""
    if isinstance(exc, Exception) and not isinstance(exc, AppError) and is_database_unavailable(exc):
        return ServiceUnavailable(
            "the database is not reachable right now; retry shortly",
            code="database_unavailable",
            headers={"Retry-After": "2"},
        )
    return None


# scope="function": the commit runs before the response is sent, so its failure becomes the response.
SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A hot read statement, compiled once at import to asyncpg's `$n` form, run on the session's own asyncpg
    connection (so inside the request's transaction, and in tests inside the test's).

    SQLAlchemy's execution path (the adapted cursor, result proxy, row objects) costs ~0.3 ms of CPU and ~0.5 ms
    of latency per statement on top of asyncpg's (bench section 1); for the recommendation, asked for at every
    incident and every few seconds while one is open, that was a third of the service's own time. Only for
    statements whose text is a constant: values are always bound parameters.
    """

    sql: str
    names: tuple[str, ...]

    @classmethod
    def of(cls, clause: TextClause) -> "DriverStatement":
        compiled = clause.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
        return cls(sql=str(compiled), names=tuple(compiled.positiontup or ()))

    async def fetch(self, session: AsyncSession, **params: Any) -> list[asyncpg.Record]:
        async with on_driver(session) as driver:
            rows: list[asyncpg.Record] = await driver.fetch(self.sql, *(params[name] for name in self.names))
        return rows


# A LIMIT written into a statement's text is at most this (a nearest-N list, never a page of a table).
MAX_LITERAL_LIMIT = 1000


def sql_limit(limit: int) -> str:
    """A row limit as SQL text, for statements whose generic plan must know it (see
    shelters.service.nearest_with_space_json); only a plain int in 0..MAX_LITERAL_LIMIT gets through."""
    if type(limit) is not int or not 0 <= limit <= MAX_LITERAL_LIMIT:
        raise ValueError(f"a literal LIMIT must be an int in 0..{MAX_LITERAL_LIMIT}, not {limit!r}")
    return str(limit)


_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)
# SQLSTATEs of a server that is going away: admin shutdown, crash shutdown, cannot connect now.
_SERVER_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})


@contextlib.asynccontextmanager
async def on_driver(session: AsyncSession) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection under the session, inside the session's transaction (its COMMIT, its ROLLBACK).

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it executes itself: a statement
    sent straight to the driver before that would run in autocommit, its writes kept even when the request then
    fails, its SET LOCAL a no-op. So the adapter's own transaction is started here first. (That call is private
    to SQLAlchemy; tests/reliability/test_driver_statements.py fails if it ever stops doing this.)

    And what SQLAlchemy's execution layer does for its own statements is done here for ours: a driver error
    leaves as a `DBAPIError` (the family app/errors.py maps to 503s), and a connection the error broke is
    invalidated, so the pool drops it instead of lending it to the next request.
    """
    connection = await session.connection()
    # SQLAlchemy's AsyncAdapt_asyncpg_connection (typed as the DB-API protocol, which has none of this).
    adapted: Any = (await connection.get_raw_connection()).dbapi_connection
    driver: asyncpg.Connection = adapted.driver_connection
    try:
        if adapted._transaction is None:
            await adapted._start_transaction()
        yield driver
    except Exception as exc:
        # The adapter raises its own DB-API error, the asyncpg one as its cause; the driver raises asyncpg's.
        cause = exc.__cause__ if isinstance(exc, adapted.dbapi.Error) else exc
        if not isinstance(cause, _DRIVER_ERRORS):
            raise
        lost = (
            driver.is_closed()
            # The protocol's state is broken (seen when the server's FATAL arrived between two statements).
            or isinstance(cause, OSError | asyncpg.PostgresConnectionError | asyncpg.InternalClientError)
            or getattr(cause, "sqlstate", None) in _SERVER_GOING_AWAY
        )
        if lost:
            await connection.invalidate(cause)
        raise DBAPIError(None, None, cause, connection_invalidated=lost) from exc
