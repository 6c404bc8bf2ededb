"""python -m bench.wsclient: many live-feed (websocket) clients in one process of their own.

The fan-out and write-path sections run this as a subprocess, so the clients' CPU is not the bench's and
the server process holds only server work. It speaks JSON lines:
- stdout, once connected: {"ready": <connected>, "failed": <n>, "status": <first rejected HTTP status>, "error": "..."}
- stdin "collect <events> <timeout_s>": wait until `events` incident.created events reached every client (or
  the timeout), then print {"received": {incident_id: {"ts": <event ts, epoch s>, "at": [<receive times>]}},
  "cpu_s": ..., "closed": <clients the server closed>}
- stdin "quit" (or end of input): close everything and exit.
Events count one by one, whether they come one per frame or inside `batch` frames (`?batch=true` in the URL).
Receive times are time.time() on the same machine as the server and PostgreSQL, so they compare to `ts`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from datetime import datetime
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.core import raise_open_files_limit

TOPIC = "incident.created"
PING_MAX_BYTES = 200  # the server's heartbeat message is tiny; anything longer is not one


class Clients:
    def __init__(self, url: str, token: str, count: int, batch: int) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.count = count
        self.batch = batch
        self.connections: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.failed = 0
        self.closed = 0
        self.status: int | None = None
        self.error = ""
        # incident id -> (event ts, receive times)
        self.received: dict[str, tuple[float, list[float]]] = {}
        self.unparsed: list[tuple[float, bytes]] = []  # (arrival time, frame) not counted yet
        self.changed = asyncio.Event()

    async def _open(self) -> None:
        try:
            conn = await connect(self.url, additional_headers=self.headers, open_timeout=30, max_queue=None)
        except InvalidStatus as exc:
            self.failed += 1
            self.status = self.status or exc.response.status_code
            self.error = self.error or f"HTTP {exc.response.status_code}"
            return
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            self.failed += 1
            self.error = self.error or f"{type(exc).__name__}: {exc}"
            return
        self.connections.append(conn)
        self.readers.append(asyncio.create_task(self._read(conn)))

    async def connect_all(self) -> None:
        for start in range(0, self.count, self.batch):
            await asyncio.gather(*(self._open() for _ in range(start, min(start + self.batch, self.count))))
            if self.status in (403, 404):
                break  # the endpoint is not there: no point knocking 1,000 times

    async def _read(self, conn: ClientConnection) -> None:
        # Frames are kept as they came (bytes, no UTF-8 decoding) with their arrival time and parsed only when
        # counted: parsing them as they arrive was two thirds of this process's CPU, taken from the 2 cores the
        # server it measures runs on (section 6, 500 clients).
        try:
            while True:
                raw = await conn.recv(decode=False)
                at = time.time()
                if len(raw) < PING_MAX_BYTES and b'"ping"' in raw and orjson.loads(raw).get("type") == "ping":
                    await conn.send('{"type": "pong"}')
                    continue
                self.unparsed.append((at, raw))
                self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed += 1

    def _parse_received(self) -> None:
        frames, self.unparsed = self.unparsed, []
        for at, raw in frames:
            message: dict[str, Any] = orjson.loads(raw)
            kind = message.get("type")
            if kind == "event":
                self._note(message, at)
            elif kind == "batch":  # ?batch=true: every event in it counts as a delivery, received at the frame's
                for event in message.get("events") or ():
                    self._note(event, at)

    def _note(self, event: dict[str, Any], at: float) -> None:
        if event.get("topic") != TOPIC:
            return
        data = event.get("data") or {}
        key = str(data.get("incident_id", event.get("seq")))
        if key not in self.received:
            self.received[key] = (datetime.fromisoformat(str(event["ts"])).timestamp(), [])
        self.received[key][1].append(at)

    async def collect(self, events: int, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        alive = len(self.connections)
        while True:
            self._parse_received()
            if time.monotonic() >= deadline:
                break
            complete = sum(1 for _, at in self.received.values() if len(at) >= alive - self.closed)
            if len(self.received) >= events and complete >= events:
                break
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=max(0.01, min(0.5, deadline - time.monotonic())))
        received = {key: {"ts": ts, "at": at} for key, (ts, at) in self.received.items()}
        self.received = {}
        return {"received": received, "cpu_s": time.process_time(), "closed": self.closed}

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main_async(args: argparse.Namespace) -> None:
    clients = Clients(args.url, args.token, args.clients, args.batch)
    await clients.connect_all()
    emit(
        {
            "ready": len(clients.connections),
            "failed": clients.failed,
            "status": clients.status,
            "error": clients.error,
            "cpu_s": time.process_time(),
        }
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := (await reader.readline()).decode().strip():
            command, *rest = line.split()
            if command == "collect":
                emit(await clients.collect(int(rest[0]), float(rest[1])))
            elif command == "quit":
                break
    finally:
        await clients.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wsclient", description=__doc__)
    parser.add_argument("--url", required=True, help="ws://host:port/api/v1/live (with ?batch=true for batch frames)")
    parser.add_argument("--token", default=os.environ.get("BENCH_WS_TOKEN", ""), help="default: $BENCH_WS_TOKEN")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100, help="connections opened at once")
    args = parser.parse_args()
    raise_open_files_limit()
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
