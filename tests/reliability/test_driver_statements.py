"""Statements the service runs on the asyncpg driver (app.db.on_driver) belong to the request's transaction and
fail like SQLAlchemy's own: a lost connection is a 503 and leaves the pool, a deadlock a retryable conflict.

These run on the real session lifecycle (a committed database, the app's own sessions): the suite's usual
savepoint-joined session has its transaction begun already, which hid statements that ran in autocommit.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import DriverStatement, create_engine, create_sessionmaker, on_driver
from app.errors import is_database_unavailable, is_transaction_conflict
from app.main import create_app
from tests.conftest import CommittedDb, make_settings

Auth = Callable[..., dict[str, str]]

BACKEND_PID = DriverStatement.of(text("SELECT pg_backend_pid() AS pid"))


async def terminate(url: str, pid: int) -> None:
    admin = await asyncpg.connect(url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_connection_lost_under_a_driver_statement_is_unavailable_and_leaves_the_pool(
    committed_db: CommittedDb,
) -> None:
    engine = create_engine(make_settings(committed_db.url, db_pool_size=1, db_max_overflow=0))
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session:
            (row,) = await BACKEND_PID.fetch(session)
            await terminate(committed_db.url, row["pid"])
            with pytest.raises(DBAPIError) as caught:  # noqa: PT012 (the termination reaches us asynchronously)
                for _ in range(50):
                    await BACKEND_PID.fetch(session)
                    await asyncio.sleep(0.02)
            assert caught.value.connection_invalidated
            assert is_database_unavailable(caught.value)
            await session.rollback()
        # The only pooled connection was the broken one: the next session must get a new backend, not it.
        async with sessionmaker() as session:
            (again,) = await BACKEND_PID.fetch(session)
            assert again["pid"] != row["pid"]
    finally:
        await engine.dispose()


async def test_a_deadlock_on_the_driver_is_a_transaction_conflict(committed_db: CommittedDb) -> None:
    engine = create_engine(make_settings(committed_db.url))
    sessionmaker = create_sessionmaker(engine)
    both_hold_one = asyncio.Barrier(2)
    errors: list[BaseException] = []

    async def lock_in_order(first: int, second: int) -> None:
        async with sessionmaker() as session:
            try:
                async with on_driver(session) as driver:
                    await driver.execute("SELECT id FROM team WHERE id = $1 FOR UPDATE", first)
                await both_hold_one.wait()
                async with on_driver(session) as driver:
                    await driver.execute("SELECT id FROM team WHERE id = $1 FOR UPDATE", second)
            except DBAPIError as exc:
                errors.append(exc)
            finally:
                await session.rollback()

    try:
        await asyncio.wait_for(asyncio.gather(lock_in_order(1, 2), lock_in_order(2, 1)), 30)
    finally:
        await engine.dispose()
    assert len(errors) == 1, errors  # PostgreSQL breaks the cycle by aborting one of the two
    (error,) = errors
    assert isinstance(error, DBAPIError)
    assert is_transaction_conflict(error)
    assert not error.connection_invalidated


async def test_a_statement_error_on_the_driver_keeps_the_connection(committed_db: CommittedDb) -> None:
    engine = create_engine(make_settings(committed_db.url, db_pool_size=1, db_max_overflow=0))
    sessionmaker = create_sessionmaker(engine)
    pids: list[Any] = []
    try:
        async with sessionmaker() as session:
            (row,) = await BACKEND_PID.fetch(session)
            pids.append(row["pid"])
            with pytest.raises(DBAPIError) as caught:
                async with on_driver(session) as driver:
                    await driver.execute("SELECT 1 / 0")
            assert not caught.value.connection_invalidated
            assert not is_database_unavailable(caught.value)
            await session.rollback()
        async with sessionmaker() as session:
            (row,) = await BACKEND_PID.fetch(session)
            pids.append(row["pid"])
    finally:
        await engine.dispose()
    assert pids[0] == pids[1]  # a bad statement is not a broken connection


async def test_a_refused_position_batch_keeps_nothing_on_the_real_session(
    committed_db: CommittedDb, auth: Auth
) -> None:
    """The batch statement is the request's first: it must still be undone by the 403 that follows it."""
    admin = await asyncpg.connect(committed_db.url)
    try:
        rows = await admin.fetch("SELECT id, township_code FROM team ORDER BY id")
        mine, township = rows[0]["id"], rows[0]["township_code"]
        theirs = next(r["id"] for r in rows if r["township_code"] != township)
        before = await admin.fetchval("SELECT max(seq) FROM event")
        at = datetime.now(UTC).isoformat()
        batch = [
            {"team_id": team_id, "location": {"type": "Point", "coordinates": [117.41, 40.05]}, "recorded_at": at}
            for team_id in (mine, theirs)
        ]
        app = create_app(make_settings(committed_db.url))
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
        ):
            refused = await client.post("/api/v1/positions", json=batch, headers=auth("township", township=township))
        assert refused.status_code == 403, refused.text
        kept = await admin.fetchrow(
            "SELECT (SELECT count(*) FROM team_track WHERE team_id = ANY($1::bigint[])) AS track,"
            " (SELECT count(*) FROM team WHERE id = ANY($1::bigint[]) AND position_at >= $2::timestamptz) AS moved,"
            " (SELECT count(*) FROM event WHERE seq > $3) AS events",
            [mine, theirs],
            datetime.fromisoformat(at),
            before,
        )
    finally:
        await admin.close()
    assert dict(kept) == {"track": 0, "moved": 0, "events": 0}


async def test_the_hot_read_pool_plans_generically_in_autocommit_and_refuses_writes(committed_db: CommittedDb) -> None:
    engine = create_engine(make_settings(committed_db.url, db_read_pool_size=1, db_read_max_overflow=0), hot_reads=True)
    sessionmaker = create_sessionmaker(engine)
    show = DriverStatement.of(text("SELECT current_setting('plan_cache_mode') AS mode"))
    try:
        async with sessionmaker() as session:
            assert (await show.fetch(session))[0]["mode"] == "force_generic_plan"
            async with on_driver(session) as driver:
                assert not driver.is_in_transaction()  # no BEGIN was sent, none is left open
            with pytest.raises(DBAPIError) as caught:
                async with on_driver(session) as driver:
                    await driver.execute("UPDATE team SET headcount = headcount + 1")
            assert getattr(caught.value.orig, "sqlstate", None) == "25006"  # read-only transaction
            assert not caught.value.connection_invalidated
    finally:
        await engine.dispose()


async def test_the_recommendation_reads_committed_bookings_on_the_hot_pool_and_survives_losing_it(
    committed_db: CommittedDb, auth: Auth
) -> None:
    """The real app, its own two pools: the advice sees a booking the moment it commits (each autocommit statement
    takes a fresh snapshot), and a read connection the server dropped is a 503 at worst, never a 500, and only once."""
    app = create_app(make_settings(committed_db.url, db_read_pool_size=1, db_read_max_overflow=0))
    incident = {
        "type": "forest_fire",
        "location": {"type": "Point", "coordinates": [117.46, 40.19]},
        "title": "山火",
        "people_affected": 20,
    }
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        reported = await client.post("/api/v1/incidents", json=incident, headers=auth())
        assert reported.status_code == 201, reported.text
        path = f"/api/v1/incidents/{reported.json()['id']}/recommendation"
        before = await client.get(path, headers=auth())
        assert before.status_code == 200, before.text
        first = before.json()["teams"][0]["id"]

        booked = await client.post(
            f"/api/v1/incidents/{reported.json()['id']}/dispatches", json={"team_ids": [first]}, headers=auth()
        )
        assert booked.status_code == 201, booked.text
        after = await client.get(path, headers=auth())
        assert after.status_code == 200, after.text
        assert first not in [team["id"] for team in after.json()["teams"]]

        admin = await asyncpg.connect(committed_db.url)
        try:
            dropped = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'jizhou-api-reads'"
            )
        finally:
            await admin.close()
        assert dropped == 1  # the pool's one connection
        statuses = [(await client.get(path, headers=auth())).status_code for _ in range(3)]
    assert statuses[0] in (200, 503), statuses  # 200 when the pool's ping found the dead connection first
    assert statuses[1:] == [200, 200], statuses
