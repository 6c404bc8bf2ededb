"""SQL injection strings in every text filter are plain values; floods of federation requests are limited."""

from collections.abc import Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.main import create_app
from tests.conftest import make_settings

Auth = Callable[..., dict[str, str]]
INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE team; --",
    "pinggu' UNION SELECT password_hash FROM app_user --",
    "\\'; SELECT pg_sleep(5); --",
    "%' OR 1=1 --",
]
TEXT_FILTERS = [
    ("/api/v1/federation/incidents", "partner"),
    ("/api/v1/federation/outbox", "partner"),
    ("/api/v1/federation/aid-requests", "partner"),
    ("/api/v1/federation/warnings", "partner"),
    ("/api/v1/teams", "township"),
    ("/api/v1/incidents", "type"),
    ("/api/v1/incidents", "bbox"),
    ("/api/v1/depots", "item"),
    ("/api/v1/shelters", "level"),
    ("/api/v1/nearest", "capability"),
]


@pytest.mark.parametrize(("path", "param"), TEXT_FILTERS)
async def test_injection_strings_in_text_filters_are_harmless(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession, path: str, param: str
) -> None:
    teams_before = (await session.execute(text("SELECT count(*) FROM team"))).scalar_one()
    for value in INJECTIONS:
        params = {"kind": "team", "lon": 117.4, "lat": 40.0} if path == "/api/v1/nearest" else {}
        response = await client.get(path, params=params | {param: value}, headers=auth())
        assert response.status_code in (200, 400, 422), (path, value, response.text)
        if response.status_code == 200:
            assert response.json().get("numberMatched", 0) == 0 or param == "partner"
    assert (await session.execute(text("SELECT count(*) FROM team"))).scalar_one() == teams_before


async def test_federation_requests_are_rate_limited(main_db: str) -> None:
    app = create_app(
        make_settings(main_db, federation_burst=3, federation_rate_per_s=0.01, federation_worker_enabled=False)
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        codes = [(await client.get("/federation/v1/resources")).status_code for _ in range(5)]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]
