"""Federation fixtures: an app configured with partner keys, over the suite's rolled-back session."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings
from app.db import create_sessionmaker, get_db_session, get_read_session
from app.events.models import Event
from app.federation.models import AidRequest, InboundMessage, OutboxMessage, SharedIncident, SharedWarning
from app.main import create_app
from tests.conftest import make_settings
from tests.federation.helpers import partners_config


@pytest.fixture(scope="session")
def fed_settings(main_db: str) -> Settings:
    return make_settings(main_db, federation_partners=partners_config(), federation_worker_enabled=False)


@pytest.fixture
async def fed_client(
    fed_settings: Settings, engine: AsyncEngine, session: AsyncSession
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(fed_settings)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)

    async def test_session() -> AsyncIterator[AsyncSession]:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()

    app.dependency_overrides[get_db_session] = test_session
    app.dependency_overrides[get_read_session] = test_session
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def snapshot(session: AsyncSession) -> dict[str, Any]:
    """Counts of everything an inbound message could write."""
    out: dict[str, Any] = {}
    for model in (InboundMessage, AidRequest, SharedIncident, SharedWarning, OutboxMessage):
        out[model.__tablename__] = await session.scalar(select(func.count()).select_from(model))
    out["event_max_seq"] = await session.scalar(select(func.max(Event.seq)))
    return out
