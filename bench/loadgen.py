"""An HTTP load generator that runs in client processes of its own.

Each process runs `concurrency` clients, each on a keep-alive connection of its own (bench/http1.py: a lean
client, so the load generator takes little of the CPU it shares with the service), and loops until the window
ends; only requests that complete inside the measuring window count, and the
process reports its own CPU over that window, so a reader sees whether the client was the bottleneck.

Closed loop by default (each client sends again as soon as it is answered: the service's capacity). With
`interval_s` each client sends on a fixed schedule instead (open loop: an offered rate, as gateways post), and a
request's latency counts from the moment it was due, so a service that falls behind its schedule shows the
wait too (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from bench.http1 import Http1Client, ProtocolError
from bench.workload import DISTRICT_POINTS, jitter


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    token: str
    kind: Literal["get", "positions"]
    path: str
    concurrency: int
    # Wall-clock instants (time.time()) shared by every process: they start, measure and stop together.
    start_at: float
    measure_from: float
    measure_until: float
    team_ids: tuple[int, ...] = ()
    batch: int = 50
    seed: int = 0
    # Open loop: each client sends one request every interval_s (0: closed loop).
    interval_s: float = 0.0


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    items: int = 0
    # Positions: how many the service said it applied (a fix older than the stored one is not).
    applied: int = 0
    cpu_s: float = 0.0
    first_error: str = ""

    def merge(self, other: LoadResult) -> None:
        self.latencies += other.latencies
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.transport_errors += other.transport_errors
        self.items += other.items
        self.applied += other.applied
        self.cpu_s += other.cpu_s
        self.first_error = self.first_error or other.first_error


def positions_body(team_ids: list[int], rng: random.Random) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    positions = []
    for team_id in team_ids:
        lon, lat = jitter(rng.choice(DISTRICT_POINTS), rng, 0.008)
        positions.append(
            {
                "team_id": team_id,
                "location": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
                "recorded_at": now,
            }
        )
    return {"positions": positions}


async def _load(spec: LoadSpec) -> LoadResult:
    result = LoadResult()
    rng = random.Random(spec.seed)
    headers = {"Authorization": f"Bearer {spec.token}"}
    cpu_at_start: list[float] = []

    async def mark_window() -> None:
        await asyncio.sleep(max(0.0, spec.measure_from - time.time()))
        cpu_at_start.append(time.process_time())

    async def client_loop(index: int) -> None:
        # One keep-alive connection per client, as a dispatcher's console or a gateway would hold.
        client = Http1Client(spec.base_url, headers)
        get_request = client.get(spec.path)
        # Open loop: the clients' schedules are staggered evenly over one interval.
        due = time.perf_counter() + spec.interval_s * index / max(1, spec.concurrency)
        try:
            while (now := time.time()) < spec.measure_until:
                if spec.interval_s:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    now = time.time()
                if spec.kind == "get":
                    request, count = get_request, 1
                else:
                    ids = rng.sample(spec.team_ids, min(spec.batch, len(spec.team_ids)))
                    request, count = client.post_json(spec.path, positions_body(ids, rng)), len(ids)
                began = time.perf_counter()
                if spec.interval_s:
                    began, due = min(began, due), due + spec.interval_s
                try:
                    status, body = await client.send(request)
                except (ProtocolError, OSError, TimeoutError) as exc:
                    if now >= spec.measure_from:
                        result.transport_errors += 1
                        result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                    continue
                elapsed = time.perf_counter() - began
                done = time.time()
                if spec.measure_from <= done < spec.measure_until:
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if status < 300:
                        result.latencies.append(elapsed)
                        result.items += count
                        if spec.kind == "positions":
                            result.applied += int(orjson.loads(body).get("applied", count))
                    elif not result.first_error:
                        result.first_error = f"HTTP {status}: {body[:300].decode(errors='replace')}"
        finally:
            client.close()

    await asyncio.sleep(max(0.0, spec.start_at - time.time()))
    marker = asyncio.create_task(mark_window())
    await asyncio.gather(*(client_loop(i) for i in range(spec.concurrency)))
    await marker
    result.cpu_s = time.process_time() - cpu_at_start[0]
    return result


def run_in_process(spec: LoadSpec) -> LoadResult:
    try:
        import uvloop

        return uvloop.run(_load(spec))
    except ImportError:
        return asyncio.run(_load(spec))


class ClientProcesses:
    """Client processes, started (spawned) and warm before any window is set, so none starts late."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pool = ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn"))

    async def __aenter__(self) -> ClientProcesses:
        loop = asyncio.get_running_loop()
        # Busy tasks, one per worker, force every process to start now.
        await asyncio.gather(*(loop.run_in_executor(self.pool, time.sleep, 0.5) for _ in range(self.count)))
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.to_thread(self.pool.shutdown, wait=True, cancel_futures=True)

    async def run(self, specs: list[LoadSpec]) -> LoadResult:
        loop = asyncio.get_running_loop()
        parts = await asyncio.gather(*(loop.run_in_executor(self.pool, run_in_process, spec) for spec in specs))
        total = LoadResult()
        for part in parts:
            total.merge(part)
        return total


def window(warmup_s: float, duration_s: float, spawn_s: float = 0.5) -> tuple[float, float, float]:
    """(start_at, measure_from, measure_until): a moment to hand the specs over, a warm-up, the measure."""
    start = time.time() + spawn_s
    return start, start + warmup_s, start + warmup_s + duration_s
