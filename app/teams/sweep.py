"""The position sweep: every `dispatch_position_sweep_s`, clear `team.position_live` where the fix has
gone stale (and set it where a fresh fix lacks it), so the nearest-team search's partial indexes hold
only their own teams (teams.service.TEAM_SHORTLISTS).

Idempotent and cheap (two ranges of a btree): every process runs it, none coordinates. Missing a round
(database down, process busy) only leaves a few more rows for the search to check one by one.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import is_database_unavailable
from app.teams import service

log = structlog.get_logger(__name__)


async def sweep_once(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    async with sessionmaker() as session:
        changed = await service.sweep_stale_positions(session=session, fresh_s=settings.dispatch_position_fresh_s)
        await session.commit()
    return changed


async def warn_if_autovacuum_is_off(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    """Log a warning when the server does not autovacuum; True when it does.

    Every position fix leaves a dead team row version behind (never a HOT update: position is indexed).
    Without autovacuum they pile up and the nearest-team search slows several-fold within minutes of phones
    reporting (migration 0007; bench section 2 prints the figure after its ingest).
    """
    async with sessionmaker() as session:
        on = (await session.execute(text("SELECT current_setting('autovacuum')::bool"))).scalar_one()
    if not on:
        log.warning(
            "autovacuum_off",
            why="position fixes leave dead team rows that nothing cleans up: the nearest-team search will slow",
            fix="autovacuum = on in postgresql.conf (or VACUUM ANALYZE team regularly)",
        )
    return bool(on)


async def _sweep_forever(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    interval = settings.dispatch_position_sweep_s
    # Processes started together do not all sweep at the same moment.
    await asyncio.sleep(interval * random.uniform(0.1, 1.0))
    checked_autovacuum = False
    while True:
        try:
            if not checked_autovacuum:
                await warn_if_autovacuum_is_off(sessionmaker)
                checked_autovacuum = True
            await sweep_once(sessionmaker, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_database_unavailable(exc):
                log.warning("position_sweep_postponed", error=type(exc).__name__)
            else:
                log.exception("position_sweep_failed")
        await asyncio.sleep(interval)


@asynccontextmanager
async def run_position_sweep(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> AsyncIterator[None]:
    """In the lifespan: the sweep runs in the background until the app stops."""
    task = asyncio.create_task(_sweep_forever(sessionmaker, settings), name="position-sweep")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
