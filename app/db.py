"""Database engine, the declarative base and the request's unit of work.

A request gets one session; the session dependency commits once when the route returns
(before the response is sent, so a failed commit is never reported as a success) and rolls
back on any error. Services only add and flush.
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, ClassVar

import structlog
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, func
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


def create_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        # Waiting for a pooled connection is bounded too: past it the request gets a 503.
        pool_timeout=settings.db_connect_timeout_s,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            "server_settings": {
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(settings.db_statement_timeout_ms * 3),
                "application_name": "jizhou-api",
                # Short queries only: a plan whose estimate crosses jit_above_cost (a prepared statement's
                # generic plan, say) would spend ~100 ms compiling to save microseconds (bench, section 3).
                "jit": "off",
            },
        },
    )


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
            if isinstance(exc, Exception) and not isinstance(exc, AppError) and is_database_unavailable(exc):
                # Answered here, as a handled error: an exception escaping the app would make the server
                # drop the client's keep-alive connection too.
                raise ServiceUnavailable(
                    "the database is not reachable right now; retry shortly",
                    code="database_unavailable",
                    headers={"Retry-After": "2"},
                ) from exc
            raise
    # Committed: what follows must never turn a done write into an error for the client.
    for hook in getattr(request.app.state, "after_commit_hooks", ()):
        try:
            await hook(session)
        except Exception:
            log.exception("after_commit_hook_failed", hook=getattr(hook, "__qualname__", repr(hook)))


# scope="function": the commit runs before the response is sent, so its failure becomes the response.
SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
