"""Run the real service as a subprocess (uvicorn) for tests that need a server over the network."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import ROOT, TEST_SECRET


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(database_url: str, *, startup_timeout_s: float = 120, **env: str) -> Iterator[Server]:
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "JIZHOU_JWT_SECRET": TEST_SECRET,
        "JIZHOU_ENVIRONMENT": "test",
        "JIZHOU_LOG_LEVEL": "WARNING",
        **env,
    }
    # The log goes to a file, not a pipe: a pipe nobody reads blocks the server once it is full.
    log = tempfile.NamedTemporaryFile(prefix="jizhou-server-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log_path=Path(log.name))
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {server.log()[-3000:]}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not become ready: {server.log()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)
