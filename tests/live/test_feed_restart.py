"""The database restarts mid-stream: the hub's listener reconnects by itself, catches up, and nothing is lost.

The shared test server must never be restarted, so the test starts a private PostgreSQL cluster of its own
(initdb into a temporary directory, its own port and socket directory, trust authentication), migrates and
seeds it, and tears it down at the end.
"""

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import ROOT, TEST_SECRET
from tests.live.conftest import Feed, StartServer, committed_seqs, db_connect, free_port, insert_events

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OpenFeed = Callable[..., Awaitable[Feed]]


async def run(*args: str, env: dict[str, str] | None = None, within: float = 120.0) -> str:
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        raise AssertionError(f"{' '.join(args[-3:])} took more than {within:g} s") from None
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"{args[0]} failed:\n{text[-3000:]}"
    return text


@dataclass
class Cluster:
    directory: Path
    port: int
    as_postgres: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/jizhou"

    def pg_ctl(self, *args: str) -> list[str]:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        return [*self.as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-o", options, *args]

    async def restart(self) -> None:
        # Immediate: like a crash. Transactions in flight are lost and the sequence may jump ahead.
        await run(*self.pg_ctl("restart", "-m", "immediate", "-w", "-t", "60", "-l", str(self.directory / "log")))


@contextlib.asynccontextmanager
async def private_cluster() -> AsyncIterator[Cluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    directory = Path(tempfile.mkdtemp(prefix="jizhou-live-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(directory, "postgres")
    cluster = Cluster(directory, free_port(), as_postgres)
    try:
        await run(*as_postgres, str(PG_BIN / "initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")  # fmt: skip
        await run(*cluster.pg_ctl("start", "-w", "-t", "60", "-l", str(directory / "log")))
        admin = await db_connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres")
        await admin.execute("CREATE DATABASE jizhou")
        await admin.close()
        conn = await db_connect(cluster.url)
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        await conn.close()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            await run(*cluster.pg_ctl("stop", "-m", "immediate", "-w"), within=30)
        shutil.rmtree(directory, ignore_errors=True)


async def keep_writing(url: str, stop: asyncio.Event) -> None:
    """Commit an event every few milliseconds; through the restart, reconnect and carry on."""
    conn = None
    while not stop.is_set():
        try:
            if conn is None or conn.is_closed():
                conn = await db_connect(url)
            await insert_events(conn, topic="team.position_reported", subject_type="team", subject_id="3")
            await asyncio.sleep(0.01)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):  # the database is down
            conn = None
            await asyncio.sleep(0.1)
    if conn is not None:
        await conn.close()


async def test_the_feed_survives_a_database_restart_without_losing_an_event(
    start_server: StartServer, open_feed: OpenFeed
) -> None:
    async with private_cluster() as cluster:
        env = {
            **os.environ,
            "DATABASE_URL": cluster.url,
            "JIZHOU_JWT_SECRET": TEST_SECRET,
            "JIZHOU_ENVIRONMENT": "test",
        }
        await run(sys.executable, "-m", "alembic", "upgrade", "head", env=env)
        server = await start_server(cluster.url)
        feed = await open_feed(server, "command", since=0)
        # The seeds go in while the feed streams: a CLI writes without NOTIFY, the hub's poll finds its events.
        seeding = asyncio.create_task(run(sys.executable, "-m", "app", "seed", env=env))
        stop = asyncio.Event()
        writer = asyncio.create_task(keep_writing(cluster.url, stop))
        try:
            await feed.wait(lambda f: len(f.seqs) >= 50, what="events before the restart")
            await seeding
            await cluster.restart()
            before = feed.seqs[-1]
            await feed.wait(lambda f: f.seqs[-1] > before + 50, within=40, what="events after the restart")
        finally:
            stop.set()
            await writer
        conn = await db_connect(cluster.url)
        try:
            expected = await committed_seqs(conn, 0)
        finally:
            await conn.close()
        await feed.wait_seq(expected[-1])
        assert feed.seqs == expected, "every committed event once, in order, across the restart"
        assert not feed.closed, "the socket stayed open through the restart"
        log = server.log()
        assert "live_listener_lost" in log and log.count("live_listener_connected") >= 2
