"""Exactly once under concurrency, with real commits: the same message posted several times at once is
stored once and every copy gets the same answer; two operators deciding at once get one success."""

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import text

from app.db import create_engine, create_sessionmaker
from app.main import create_app
from tests.conftest import CommittedDb, make_settings
from tests.federation.helpers import dumps, envelope, partners_config, signed

PATH = "/federation/v1/messages"


@pytest.fixture
async def live(committed_db: CommittedDb) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(committed_db.url, federation_partners=partners_config(), federation_worker_enabled=False)
    app = create_app(settings)
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        client.app_engine = engine  # type: ignore[attr-defined]
        yield client
    await engine.dispose()


async def count(client: httpx.AsyncClient, sql: str) -> int:
    async with client.app_engine.connect() as conn:  # type: ignore[attr-defined]
        return int(await conn.scalar(text(sql)))


async def test_concurrent_duplicates_are_stored_once(live: httpx.AsyncClient) -> None:
    request = {"requestID": "pinggu:aid:race", "resources": [{"capability": "forest_fire", "quantity": 1}]}
    body = dumps(envelope([{"contentType": "RequestResource", "contentObject": request}], kind="Request"))
    answers = await asyncio.gather(
        *(live.post(PATH, content=body, headers=signed("POST", PATH, body)) for _ in range(6))
    )
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert await count(live, "SELECT count(*) FROM federation_inbound") == 1
    assert await count(live, "SELECT count(*) FROM federation_aid_request") == 1
    assert await count(live, "SELECT count(*) FROM event WHERE topic = 'federation.aid_requested'") == 1


async def test_two_operators_deciding_at_once_get_one_success(
    live: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    request = {"requestID": "pinggu:aid:decide", "resources": [{"capability": "forest_fire", "quantity": 1}]}
    body = dumps(envelope([{"contentType": "RequestResource", "contentObject": request}], kind="Request"))
    assert (await live.post(PATH, content=body, headers=signed("POST", PATH, body))).status_code == 200
    aid = (await live.get("/api/v1/federation/aid-requests", headers=auth())).json()["items"][0]
    forest = (await live.get("/api/v1/teams?kind=forest_fire", headers=auth())).json()["features"][0]["id"]
    url = f"/api/v1/federation/aid-requests/{aid['id']}/decision"
    answers = await asyncio.gather(
        live.post(url, headers=auth(), json={"decision": "accept", "team_ids": [forest]}),
        live.post(url, headers=auth(), json={"decision": "decline", "reason": "busy"}),
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert await count(live, "SELECT count(*) FROM federation_outbox") == 1
    assert await count(live, "SELECT count(*) FROM event WHERE topic = 'federation.aid_decided'") == 1


async def test_partners_and_their_configuration_are_listed(
    live: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    body = (await live.get("/api/v1/federation/partners", headers=auth("viewer"))).json()
    assert body["sender_id"] == "jizhou"
    by_id = {p["id"]: p for p in body["partners"]}
    assert set(by_id) == {"pinggu", "sanhe", "xinglong", "yutian", "zunhua"}
    assert by_id["pinggu"]["can_send"] and by_id["pinggu"]["can_receive"]
    assert not by_id["sanhe"]["can_send"] and not by_id["sanhe"]["can_receive"]
    assert by_id["yutian"]["roles"] == ["forest_fire_defence"]
    assert "secret" not in str(body)
