"""The bench's own databases and servers: throwaway databases on the server of DATABASE_URL (a migrated,
seeded template, cloned per section), the real service as uvicorn subprocesses, tokens and clients.

Everything started here is registered, so `cleanup()` ends it and drops the databases even when a
section fails or the run is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from app.auth import mint_token
from app.config import Settings
from app.users.models import Role
from bench.core import ROOT, raise_open_files_limit

# Any 40+ character value: the bench mints its tokens with the same secret it gives the servers.
JWT_SECRET = "bench-only-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
LOG_DIR = Path(tempfile.mkdtemp(prefix="jizhou-bench-"))


def _child_setup() -> None:
    raise_open_files_limit()


# ---- processes ------------------------------------------------------------------------------------

_processes: list[subprocess.Popen[bytes]] = []


def spawn(args: list[str], *, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child of the bench (with a raised open-files limit), remembered for cleanup."""
    process = subprocess.Popen(  # noqa: S603
        args, cwd=ROOT, env=env or os.environ.copy(), preexec_fn=_child_setup, **kwargs
    )
    _processes.append(process)
    return process


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ValueError):
        _processes.remove(process)


# Children started through asyncio (client processes the bench talks to over pipes), by pid.
_pids: set[int] = set()


def register_pid(pid: int) -> None:
    _pids.add(pid)


def forget_pid(pid: int) -> None:
    _pids.discard(pid)


def stop_all_processes() -> None:
    for process in list(_processes):
        stop_process(process, timeout_s=5)
    for pid in list(_pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _pids.discard(pid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        """The server and every process under it (uvicorn's workers when started with workers > 1)."""
        found, queue = [], [self.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(OSError):
                    queue += [int(child) for child in (task / "children").read_text().split()]
        return found

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "JIZHOU_JWT_SECRET": JWT_SECRET,
        "JIZHOU_ENVIRONMENT": "test",
        "JIZHOU_LOG_LEVEL": "WARNING",
        **extra,
    }


async def start_server(
    database_url: str, env: dict[str, str] | None = None, startup_timeout_s: float = 60, workers: int = 1
) -> Server:
    """`python -m app serve` (uvicorn, one process unless `workers` > 1) on a free port, once /readyz answers."""
    port = free_port()
    log = LOG_DIR / f"server-{port}.log"
    # A file, not a pipe: a pipe nobody reads would block the server once full.
    with log.open("wb") as out:
        process = spawn(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", str(workers)],
            env=server_env(database_url, **(env or {})),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(url=f"http://127.0.0.1:{port}", port=port, process=process, log=log)
    deadline = time.monotonic() + startup_timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited at start: {server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{server.url}/readyz")).status_code == 200:
                    return server
            if time.monotonic() > deadline:
                stop_process(process)
                raise TimeoutError(f"the server did not become ready in {startup_timeout_s:.0f} s: {server.log_tail()}")
            await asyncio.sleep(0.1)


async def stop_server(server: Server) -> None:
    await asyncio.to_thread(stop_process, server.process)


@contextlib.asynccontextmanager
async def running_server(
    database_url: str, *, workers: int = 1, env: dict[str, str] | None = None
) -> AsyncIterator[Server]:
    server = await start_server(database_url, env, workers=workers)
    try:
        yield server
    finally:
        await stop_server(server)


# ---- tokens and clients ---------------------------------------------------------------------------


def token(role: Role = Role.COMMAND, *, subject: str = "bench", township: str | None = None) -> str:
    settings = Settings(jwt_secret=JWT_SECRET, environment="test")
    return mint_token(settings=settings, subject=subject, role=role, township=township)


def auth_headers(role: Role = Role.COMMAND) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"}


def http_client(server: Server, *, connections: int = 8, timeout_s: float = 30) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        headers=auth_headers(),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=timeout_s,
    )


# ---- databases ------------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@dataclass
class Databases:
    """jizhou_bench_<run>: migrated and seeded once, then only cloned (jizhou_bench_<run>_<section>)."""

    server_url: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    template_ready: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def template(self) -> str:
        return f"jizhou_bench_{self.run_id}"

    def url(self, name: str) -> str:
        return with_database(self.server_url, name)

    async def admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url("postgres"))

    async def server_versions(self) -> tuple[str, bool]:
        """PostgreSQL's version, and whether the server is on this machine (so /proc shows its backends)."""
        conn = await self.admin()
        try:
            version = str(await conn.fetchval("SHOW server_version")).split()[0]
            # Looked up while connected: the backend ends with the connection.
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            local = Path(f"/proc/{backend}/stat").exists()  # noqa: ASYNC240  (a stat of /proc, instant)
        finally:
            await conn.close()
        return version, local

    async def _cli(self, url: str, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=ROOT,
            env=server_env(url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=600)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {out.decode(errors='replace')[-3000:]}")

    async def ensure_template(self) -> None:
        async with self._lock:
            if self.template_ready:
                return
            conn = await self.admin()
            try:
                await conn.execute(f'CREATE DATABASE "{self.template}"')
            finally:
                await conn.close()
            conn = await asyncpg.connect(self.url(self.template))
            try:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            finally:
                await conn.close()
            await self._cli(self.url(self.template), "-m", "alembic", "upgrade", "head")
            await self._cli(self.url(self.template), "-m", "app", "seed")
            self.template_ready = True

    async def postgis_version(self) -> str:
        conn = await asyncpg.connect(self.url(self.template))
        try:
            return str(await conn.fetchval("SELECT postgis_lib_version()"))
        finally:
            await conn.close()

    async def clone(self, label: str) -> tuple[str, str]:
        """A fresh seeded database of the section's own: (name, libpq URL)."""
        await self.ensure_template()
        name = f"{self.template}_{label}"
        conn = await self.admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await conn.close()
        return name, self.url(name)

    async def drop(self, name: str) -> None:
        conn = await self.admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def drop_all(self) -> list[str]:
        """Every database of this run (clones first, the template last)."""
        conn = await self.admin()
        try:
            names = [r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")]
            ours = sorted((n for n in names if n == self.template or n.startswith(self.template + "_")), reverse=True)
            for name in ours:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        return ours


async def backend_pids(database_url: str, database: str) -> list[int]:
    """PostgreSQL backends connected to one database (the service's pool), for CPU accounting."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]
