"""Database failures a client can do nothing about but retry are 503s with a code, never 500s."""

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import SessionDep, create_sessionmaker
from app.main import create_app
from tests.conftest import make_settings


@pytest.mark.parametrize(("sqlstate", "code"), [("40P01", "transaction_conflict"), ("40001", "transaction_conflict")])
async def test_a_deadlock_or_serialization_failure_is_a_retryable_503(
    main_db: str, engine: AsyncEngine, sqlstate: str, code: str
) -> None:
    app = create_app(make_settings(main_db))
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)

    @app.post("/test/conflict")
    async def conflict(session: SessionDep) -> None:
        # PostgreSQL raising the state itself: asyncpg's DeadlockDetectedError / SerializationError, wrapped by
        # SQLAlchemy, exactly as a real lock-order deadlock or a serializable conflict arrives.
        await session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{sqlstate}'; END $$"))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/test/conflict")
    assert response.status_code == 503, response.text
    assert response.json()["code"] == code
    assert response.headers["Retry-After"] == "1"
