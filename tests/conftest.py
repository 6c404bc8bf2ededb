"""Test databases and clients.

The suite builds its own throwaway databases on the server of DATABASE_URL and drops them at the end:
- a template, migrated by the real Alembic migrations and seeded once;
- the main test database, cloned from the template, where every test runs inside a transaction that
  is rolled back (the app's session dependency is overridden to a savepoint-joined session);
- `committed_db`: a fresh clone per test for what needs real commits (races, live feed, servers).
Database names carry a per-run id, so parallel runs on one server do not meet.
"""

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from app.auth import mint_token
from app.config import Settings, to_asyncpg_url
from app.db import create_sessionmaker, get_db_session, get_read_session
from app.main import create_app
from app.users.models import Role

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:8]
SERVER_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/jizhou")
TEST_SECRET = "test-secret-" + "x" * 40


def db_url(name: str) -> str:
    parts = urlsplit(SERVER_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _admin() -> asyncpg.Connection:
    parts = urlsplit(SERVER_URL)
    return await asyncpg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        database="postgres",
    )


async def create_database(name: str, template: str | None = None) -> str:
    conn = await _admin()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await conn.close()
    return db_url(name)


async def drop_database(name: str) -> None:
    conn = await _admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m app ...` or alembic against a database, as an operator would."""
    env = {**os.environ, "DATABASE_URL": url, "JIZHOU_JWT_SECRET": TEST_SECRET, "JIZHOU_ENVIRONMENT": "test"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


TEMPLATE_DB = f"jizhou_test_{RUN_ID}_template"


@pytest.fixture(scope="session")
async def template_db() -> AsyncIterator[str]:
    """Migrated and seeded once per run; only ever cloned, never connected to by tests."""
    url = await create_database(TEMPLATE_DB)
    conn = await asyncpg.connect(to_asyncpg_url(url).replace("+asyncpg", ""))
    await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    await conn.close()
    for args in (("-m", "alembic", "upgrade", "head"), ("-m", "app", "seed")):
        done = run_cli(url, *args)
        assert done.returncode == 0, done.stderr[-3000:]
    try:
        yield TEMPLATE_DB
    finally:
        await drop_database(TEMPLATE_DB)


@dataclass
class CommittedDb:
    name: str
    url: str


@pytest.fixture
async def committed_db(template_db: str) -> AsyncIterator[CommittedDb]:
    """A database of its own (seeded) for tests that need real commits."""
    name = f"jizhou_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = await create_database(name, template=template_db)
    try:
        yield CommittedDb(name=name, url=url)
    finally:
        await drop_database(name)


def make_settings(url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=url,
        jwt_secret=TEST_SECRET,
        environment="test",  # type: ignore[arg-type]
        log_json=False,
        log_level="WARNING",
        **overrides,
    )


@pytest.fixture(scope="session")
async def main_db(template_db: str) -> AsyncIterator[str]:
    name = f"jizhou_test_{RUN_ID}_main"
    url = await create_database(name, template=template_db)
    try:
        yield url
    finally:
        await drop_database(name)


@pytest.fixture(scope="session")
def settings(main_db: str) -> Settings:
    return make_settings(main_db)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.sqlalchemy_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """The test's session: whatever it (or the app) commits is a savepoint rolled back at the end."""
    async with AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False, autoflush=False
    ) as session:
        yield session


@pytest.fixture
async def client(settings: Settings, engine: AsyncEngine, session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
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

    # The hot read pool's sessions too: reads must see what the test wrote in its transaction.
    app.dependency_overrides[get_db_session] = test_session
    app.dependency_overrides[get_read_session] = test_session
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture(scope="session")
def token() -> Callable[..., str]:
    """token(role, township=..., team=..., partner=...) -> bearer token signed with the test secret."""
    settings = make_settings("postgresql://unused/none")

    def mint(
        role: str = "command",
        *,
        township: str | None = None,
        team: int | None = None,
        partner: str | None = None,
        ttl_s: int | None = None,
    ) -> str:
        return mint_token(
            settings=settings,
            subject=f"test-{role}",
            role=Role(role),
            township=township,
            team_id=team,
            partner_id=partner,
            ttl_s=ttl_s,
        )

    return mint


@pytest.fixture
def auth(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """auth(role, ...) -> headers with a bearer token."""

    def headers(role: str = "command", **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(role, **kwargs)}"}

    return headers


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Leftovers of this run (a crashed fixture) must not pile up on the server.
    async def sweep() -> None:
        conn = await _admin()
        try:
            names = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"jizhou_test_{RUN_ID}_%")
            for row in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        finally:
            await conn.close()

    with contextlib.suppress(OSError):
        asyncio.run(sweep())
