"""Races on a committed database, with real concurrent connections: the database decides, never
the order in which Python happened to run. (Timings are never asserted here; see bench/.)"""

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.auth import Principal
from app.config import to_asyncpg_url
from app.db import create_sessionmaker
from app.depots import service as depot_service
from app.depots.models import LedgerKind
from app.main import create_app
from app.users.models import Role
from tests.conftest import CommittedDb, make_settings
from tests.resources.factories import XIAYING_POINT, depot_body, point, shelter_body, team_body

pytestmark = pytest.mark.slow

Auth = Callable[..., dict[str, str]]


@pytest.fixture
async def live(committed_db: CommittedDb) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (its own pool, real commits) on a database of the test's own."""
    app = create_app(make_settings(committed_db.url, db_pool_size=12, db_max_overflow=12))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            yield client


@pytest.fixture
async def db(committed_db: CommittedDb) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(to_asyncpg_url(committed_db.url), pool_size=12, max_overflow=4)
    yield engine
    await engine.dispose()


async def _scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def _ledger_disagreements(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                """
                SELECT s.depot_id, s.item_code, s.quantity, l.total
                FROM depot_stock s
                FULL JOIN (SELECT depot_id, item_code, sum(delta) AS total FROM stock_ledger GROUP BY 1, 2) l
                  ON l.depot_id = s.depot_id AND l.item_code = s.item_code
                WHERE coalesce(s.quantity, 0) <> coalesce(l.total, 0) OR s.quantity < 0
                """
            )
        )
        return list(rows)


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = await client.post(url, json=body, headers=headers)
    assert response.status_code < 500, response.text
    return response


async def test_concurrent_issues_in_separate_sessions_never_take_stock_below_zero(db: AsyncEngine) -> None:
    sessionmaker = create_sessionmaker(db)
    actor = Principal(subject="race", role=Role.COMMAND).actor
    depot_id = await _scalar(db, "SELECT id FROM depot WHERE code = 'DEP-FOREST'")
    async with sessionmaker() as session:
        await depot_service.record_movement(
            session=session,
            depot_id=depot_id,
            item_code="108",
            delta=35,
            kind=LedgerKind.RECEIPT,
            reason="r",
            actor=actor,
        )
        await session.commit()

    async def issue() -> bool:
        async with sessionmaker() as session:
            try:
                await depot_service.record_movement(
                    session=session,
                    depot_id=depot_id,
                    item_code="108",
                    delta=-10,
                    kind=LedgerKind.ISSUE,
                    reason="火场",
                    actor=actor,
                )
                # Hold the row lock a moment so the others really queue behind it.
                await asyncio.sleep(0.02)
                await session.commit()
                return True
            except depot_service.InsufficientStock:
                await session.rollback()
                return False

    outcomes = await asyncio.gather(*(issue() for _ in range(10)))
    assert sum(outcomes) == 3
    level = await _scalar(db, "SELECT quantity FROM depot_stock WHERE depot_id = :d AND item_code = '108'", d=depot_id)
    assert level == 5
    assert await _ledger_disagreements(db) == []
    events = await _scalar(
        db,
        "SELECT count(*) FROM event WHERE topic = 'depot.stock_changed' AND subject_id = :d AND data->>'item' = '108'",
        d=str(depot_id),
    )
    assert events == 4, "one event per committed movement (1 receipt + 3 issues), none for the refused ones"


async def test_concurrent_issues_over_http_get_201_or_409_and_the_ledger_holds(
    live: httpx.AsyncClient, auth: Auth, db: AsyncEngine
) -> None:
    depot = (await _post(live, "/api/v1/depots", depot_body(), auth("command"))).json()
    url = f"/api/v1/depots/{depot['id']}/movements"
    await _post(live, url, {"kind": "receipt", "item": "104", "quantity": 35, "reason": "入库"}, auth("command"))
    responses = await asyncio.gather(
        *(
            _post(live, url, {"kind": "issue", "item": "104", "quantity": 10, "reason": "发放"}, auth("command"))
            for _ in range(12)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * 9
    assert all(r.json()["code"] == "insufficient_stock" for r in responses if r.status_code == 409)
    balances = sorted(r.json()["balance_after"] for r in responses if r.status_code == 201)
    assert balances == [5, 15, 25], "each issue saw the level the previous one left"
    assert await _ledger_disagreements(db) == []


async def test_concurrent_check_ins_never_overfill_a_shelter(
    live: httpx.AsyncClient, auth: Auth, db: AsyncEngine
) -> None:
    shelter = (await _post(live, "/api/v1/shelters", shelter_body(capacity=10), auth("command"))).json()
    url = f"/api/v1/shelters/{shelter['id']}/occupancy"
    await _post(live, url, {"delta": 4}, auth("command"))
    township = auth("township", township=shelter["properties"]["township"])
    responses = await asyncio.gather(*(_post(live, url, {"delta": 1}, township) for _ in range(15)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 6 + [409] * 9
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"shelter_full"}
    occupancy, status = (
        await _scalar(db, "SELECT occupancy FROM shelter WHERE id = :i", i=shelter["id"]),
        await _scalar(db, "SELECT status FROM shelter WHERE id = :i", i=shelter["id"]),
    )
    assert (occupancy, status) == (10, "full")
    logged = await _scalar(
        db,
        "SELECT count(*) FROM event WHERE topic = 'shelter.occupancy_changed' AND subject_id = :i",
        i=str(shelter["id"]),
    )
    assert logged == 7


async def test_concurrent_edits_of_one_version_let_exactly_one_through(
    live: httpx.AsyncClient, auth: Auth, db: AsyncEngine
) -> None:
    team = (await _post(live, "/api/v1/teams", team_body(), auth("command"))).json()
    responses = await asyncio.gather(
        *(
            live.patch(f"/api/v1/teams/{team['id']}", json={"headcount": n, "version": 1}, headers=auth("command"))
            for n in range(20, 30)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 9
    [winner] = [r.json()["properties"]["headcount"] for r in responses if r.status_code == 200]
    assert await _scalar(db, "SELECT headcount FROM team WHERE id = :i", i=team["id"]) == winner
    assert await _scalar(db, "SELECT version FROM team WHERE id = :i", i=team["id"]) == 2
    updates = await _scalar(
        db, "SELECT count(*) FROM event WHERE topic = 'team.updated' AND subject_id = :i", i=str(team["id"])
    )
    assert updates == 1


async def test_opposite_transfers_at_once_neither_deadlock_nor_lose_stock(
    live: httpx.AsyncClient, auth: Auth, db: AsyncEngine
) -> None:
    a = (await _post(live, "/api/v1/depots", depot_body(), auth("command"))).json()["id"]
    b = (await _post(live, "/api/v1/depots", depot_body(location=point(XIAYING_POINT)), auth("command"))).json()["id"]
    for depot in (a, b):
        await _post(
            live,
            f"/api/v1/depots/{depot}/movements",
            {"kind": "receipt", "item": "301", "quantity": 50, "reason": "入库"},
            auth("command"),
        )

    def transfer(source: int, target: int) -> Any:
        return _post(
            live,
            f"/api/v1/depots/{source}/transfers",
            {"to_depot_id": target, "item": "301", "quantity": 7, "reason": "互调"},
            auth("command"),
        )

    responses = await asyncio.gather(*(transfer(a, b) if i % 2 else transfer(b, a) for i in range(20)))
    assert {r.status_code for r in responses} <= {201, 409}
    level_a = await _scalar(db, "SELECT quantity FROM depot_stock WHERE depot_id = :d AND item_code = '301'", d=a)
    level_b = await _scalar(db, "SELECT quantity FROM depot_stock WHERE depot_id = :d AND item_code = '301'", d=b)
    assert level_a + level_b == 100 and level_a >= 0 and level_b >= 0
    assert await _ledger_disagreements(db) == []
    legs = await _scalar(
        db,
        "SELECT count(*) FROM (SELECT transfer_id FROM stock_ledger WHERE transfer_id IS NOT NULL "
        "GROUP BY transfer_id HAVING count(*) = 2 AND sum(delta) = 0) t",
    )
    assert legs == sum(r.status_code == 201 for r in responses)


async def test_positions_arriving_out_of_order_keep_the_newest(
    live: httpx.AsyncClient, auth: Auth, db: AsyncEngine
) -> None:
    team = (await _post(live, "/api/v1/teams", team_body(), auth("command"))).json()
    now = datetime.now(UTC)
    times = [now - timedelta(seconds=s) for s in (50, 10, 40, 0, 30, 20)]
    responses = await asyncio.gather(
        *(
            _post(
                live,
                f"/api/v1/teams/{team['id']}/position",
                {"location": point([117.40 + i / 1000, 40.05]), "recorded_at": t.isoformat()},
                auth("responder", team=team["id"]),
            )
            for i, t in enumerate(times)
        )
    )
    assert all(r.status_code == 200 for r in responses)
    stored = await _scalar(db, "SELECT position_at FROM team WHERE id = :i", i=team["id"])
    assert stored == now
    lon = await _scalar(db, "SELECT ST_X(position::geometry) FROM team WHERE id = :i", i=team["id"])
    assert lon == pytest.approx(117.403)


async def test_concurrent_batches_over_the_same_teams_neither_deadlock_nor_lose_a_fix(
    live: httpx.AsyncClient, auth: Auth, db: AsyncEngine
) -> None:
    async with db.begin() as conn:
        # 300 teams, so the rows move around the heap as they are updated (an UPDATE ... FROM that locks rows
        # in the order a scan meets them then differs between transactions).
        await conn.execute(
            text(
                """
                INSERT INTO team (code, name, kind, capabilities, headcount, township_code, base)
                SELECT 'RACE-' || g, 'race team ' || g, kind, capabilities, headcount, township_code, base
                FROM (SELECT * FROM team ORDER BY id LIMIT 1) AS first,
                     generate_series(1, 300 - (SELECT count(*) FROM team)) AS g
                """
            )
        )
        ids = [int(i) for i in (await conn.scalars(text("SELECT id FROM team ORDER BY id")))]
    start = datetime.now(UTC) - timedelta(minutes=10)

    def batch(k: int) -> list[dict[str, Any]]:
        # 50 of the teams in an order of their own, all at the batch's own time.
        chosen = random.Random(k).sample(ids, 50)
        at = (start + timedelta(seconds=k)).isoformat()
        return [{"team_id": i, "location": point([117.3 + k / 1000, 40.1]), "recorded_at": at} for i in chosen]

    batches, at_once = 96, 16
    responses: list[httpx.Response] = []
    for first in range(0, batches, at_once):
        responses += await asyncio.gather(
            *(
                _post(live, "/api/v1/positions", {"positions": batch(k)}, auth("command"))
                for k in range(first, first + at_once)
            )
        )
    assert {r.status_code for r in responses} == {200}
    # Every fix joined the track; every team ends at its newest fix; one event per position applied.
    assert await _scalar(db, "SELECT count(*) FROM team_track") == batches * 50
    newest: dict[int, int] = {}
    for k in range(batches):
        for fix in batch(k):
            newest[fix["team_id"]] = k
    stored = await _scalar(
        db,
        "SELECT count(*) FROM team t JOIN unnest(CAST(:ids AS bigint[]), CAST(:ks AS integer[])) AS n(id, k)"
        " ON t.id = n.id WHERE t.position_at = CAST(:start AS timestamptz) + n.k * interval '1 second'",
        ids=list(newest),
        ks=list(newest.values()),
        start=start,
    )
    assert stored == len(newest)
    applied = sum(r.json()["applied"] for r in responses)
    assert await _scalar(db, "SELECT count(*) FROM event WHERE topic = 'team.position'") == applied
