"""Live-feed tests run real servers (`python -m app serve` in a subprocess) and a real websocket client.

Every server gets a free port and the test's own database; every wait is bounded.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.config import to_asyncpg_url
from app.events import service as event_service
from tests.conftest import ROOT, RUN_ID, TEST_SECRET, CommittedDb, create_database, drop_database

READY_TIMEOUT_S = 120.0  # generous: a loaded 2-core machine can take a minute to import and start a server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m app serve` on a free port against one database."""

    def __init__(self, database_url: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.database_url = database_url
        self.log_path = Path(tempfile.mkstemp(prefix="live-server-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.tokens_used: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": database_url,
                "JIZHOU_JWT_SECRET": TEST_SECRET,
                "JIZHOU_ENVIRONMENT": "test",
                "JIZHOU_LOG_LEVEL": "INFO",
                **env,
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/live"

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"server not ready in {READY_TIMEOUT_S} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, within: float = 20.0) -> int:
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return await asyncio.to_thread(self.process.wait, 5)

    async def stop(self) -> None:
        self.terminate()
        await self.wait_exit()
        self._log.close()
        log = self.log_path.read_text(errors="replace")
        self.log_path.unlink(missing_ok=True)
        for token in self.tokens_used:
            assert token not in log, "a token reached the server's log"


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """start_server(database_url, JIZHOU_LIVE_...=...) -> a ready Server, stopped at the end of the test."""
    servers: list[Server] = []

    async def start(database_url: str, **env: str) -> Server:
        server = Server(database_url, env)
        servers.append(server)
        await server.wait_ready()
        return server

    try:
        yield start
    finally:
        await asyncio.gather(*(s.stop() for s in servers))


@pytest.fixture
async def server(committed_db: CommittedDb, start_server: StartServer) -> Server:
    return await start_server(committed_db.url)


@pytest.fixture(scope="module")
async def shared_db(template_db: str) -> AsyncIterator[CommittedDb]:
    """A database of the module's own, for tests that only read relative to the newest seq they saw."""
    name = f"jizhou_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = await create_database(name, template=template_db)
    try:
        yield CommittedDb(name=name, url=url)
    finally:
        await drop_database(name)


@pytest.fixture(scope="module")
async def shared_server(shared_db: CommittedDb) -> AsyncIterator[Server]:
    """One server for a module's tests that do not need one of their own (a server costs seconds to start)."""
    server = Server(shared_db.url, {})
    try:
        await server.wait_ready()
        yield server
    finally:
        await server.stop()


class Feed:
    """A live-feed client that answers pings (unless told not to) and records every message."""

    def __init__(self, ws: ClientConnection, *, pong: bool = True) -> None:
        self.ws = ws
        self.pong = pong
        self.messages: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.messages.append(message)
                if message["type"] == "ping" and self.pong:
                    await self.ws.send('{"type": "pong"}')
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self._changed.set()

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event received, in order, whether one per message or inside `batch` messages (`?batch=true`)."""
        found: list[dict[str, Any]] = []
        for m in self.messages:
            if m["type"] == "event":
                found.append(m)
            elif m["type"] == "batch":
                found += m["events"]
        return found

    @property
    def batches(self) -> list[list[dict[str, Any]]]:
        return [m["events"] for m in self.messages if m["type"] == "batch"]

    @property
    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.events]

    @property
    def closed(self) -> bool:
        return self._task.done()

    async def wait(self, predicate: Callable[["Feed"], bool], within: float = 20.0, what: str = "") -> None:
        deadline = time.monotonic() + within
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.closed and not predicate(self)):
                raise AssertionError(
                    f"{what or 'condition'} not met: {len(self.events)} events, last seqs {self.seqs[-5:]}, "
                    f"closed {self.close_code} {self.close_reason!r}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    async def wait_seq(self, seq: int, within: float = 20.0) -> None:
        await self.wait(lambda f: bool(f.seqs) and f.seqs[-1] >= seq, within, f"seq {seq}")

    async def wait_closed(self, within: float = 20.0) -> tuple[int | None, str | None]:
        await self.wait(lambda f: f.closed, within, "close")
        return self.close_code, self.close_reason

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 5)


@pytest.fixture
async def open_feed(token: Callable[..., str]) -> AsyncIterator[Callable[..., Awaitable[Feed]]]:
    """open_feed(server, role, since=..., township=..., team=..., query=..., pong=..., **connect_kwargs)."""
    feeds: list[Feed] = []

    async def open_(
        server: Server,
        role: str = "command",
        *,
        since: int | None = None,
        township: str | None = None,
        team: int | None = None,
        query: str = "",
        pong: bool = True,
        **kwargs: Any,
    ) -> Feed:
        bearer = token(role, township=township, team=team)
        server.tokens_used.append(bearer)
        params = "&".join(p for p in (f"since={since}" if since is not None else "", query) if p)
        ws = await connect(
            server.url + (f"?{params}" if params else ""),
            additional_headers={"Authorization": f"Bearer {bearer}"},
            open_timeout=10,
            **kwargs,
        )
        feed = Feed(ws, pong=pong)
        feeds.append(feed)
        return feed

    try:
        yield open_
    finally:
        for feed in feeds:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(feed.close(), 5)


async def db_connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url, timeout=10)


INSERT_SQL = """
INSERT INTO event (topic, township_code, subject_type, subject_id, actor, data)
SELECT $1, $2, $3, $4, 'test', $5::jsonb FROM generate_series(1, $6) RETURNING seq
"""


async def insert_events(
    conn: asyncpg.Connection,
    count: int = 1,
    *,
    topic: str = "incident.created",
    township: str | None = None,
    subject_type: str = "incident",
    subject_id: str = "1",
    data: dict[str, Any] | None = None,
) -> list[int]:
    """Events written by plain SQL (a CLI, a worker): no NOTIFY, only the hub's poll finds them."""
    rows = await conn.fetch(INSERT_SQL, topic, township, subject_type, subject_id, json.dumps(data or {}), count)
    return [r["seq"] for r in rows]


async def record_events(url: str, events: list[dict[str, Any]]) -> list[int]:
    """Events written through the service layer in one committed transaction."""
    engine = create_async_engine(to_asyncpg_url(url), pool_size=1)
    try:
        async with AsyncSession(engine) as session, session.begin():
            return [await event_service.record(session=session, actor="test", **e) for e in events]
    finally:
        await engine.dispose()


async def wait_live(feed: Feed, conn: asyncpg.Connection) -> int:
    """Until the feed streams live events. A socket's handshake completes before the hub is ready, and at start-up the
    hub waits for the writers running then to end: tests about live delivery must not race that."""
    (seq,) = await insert_events(conn, topic="test.warm_up")
    await conn.execute("NOTIFY jizhou_live")  # a hub that polls rarely still reads it now
    await feed.wait_seq(seq)
    return seq


async def newest_seq(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM event"))


async def committed_seqs(conn: asyncpg.Connection, after: int) -> list[int]:
    return [r["seq"] for r in await conn.fetch("SELECT seq FROM event WHERE seq > $1 ORDER BY seq", after)]
