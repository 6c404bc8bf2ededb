"""The pool pings a connection only after it sat idle, and replaces one that no longer answers."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from app.config import Settings
from tests.conftest import _admin


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def test_a_busy_connection_is_not_pinged_and_an_idle_dead_one_is_replaced(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IF_IDLE_S", 0.3)
    engine = db.create_engine(settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0}))
    pings = 0

    def count(*_: object) -> None:
        nonlocal pings
        pings += 1

    try:
        first = await _backend_pid(engine)
        original_ping = engine.sync_engine.dialect.do_ping

        def counting_ping(dbapi_connection: object) -> bool:
            count()
            return original_ping(dbapi_connection)

        monkeypatch.setattr(engine.sync_engine.dialect, "do_ping", counting_ping)
        # Used again at once: the same backend, no round trip spent on a ping.
        assert await _backend_pid(engine) == first
        assert pings == 0

        # Idle past the threshold, and its backend killed meanwhile (a restart, a failover, a firewall).
        await asyncio.sleep(0.4)
        admin = await _admin()
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        # The request still succeeds: the ping found the dead connection and the pool opened another.
        second = await _backend_pid(engine)
        assert second != first
        assert pings == 1
    finally:
        await engine.dispose()
