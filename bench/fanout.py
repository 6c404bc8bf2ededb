"""4. Fan-out: 1,000 live-feed clients on one server process, then 2 processes with 1,000 each.

An incident posted through the API is an `incident.created` event; each client (in a process of its own,
see bench/wsclient.py) notes when it arrived. Commit-to-delivery is measured from the event's `ts` (the
transaction's start, `now()`, so a little before the commit: the figure is an upper bound) on the same
machine's clock; delivery after the API answered the POST is printed next to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bench.context import Bench
from bench.core import ROOT, Summary, cores_text, cores_used, cpu_sample
from bench.infra import LOG_DIR, Server, forget_pid, http_client, register_pid, running_server, token
from bench.workload import FIRE_POINT, create_incident, jitter

SECTION = "fanout"
LIVE_PATH = "/api/v1/live"
# The bench's clients ask for batch frames (every event that became deliverable at once in one frame), as a
# screen showing the whole district would; the clients count each event inside a batch as one delivery.
BATCH_QUERY = "?batch=true"
EVENT_GAP_S = 0.5
CONNECT_TIMEOUT_S = 120.0
COLLECT_TIMEOUT_S = 15.0


async def probe_live(server: Server) -> str | None:
    """None when the live endpoint accepts a command token; else why the handshake failed."""
    try:
        async with connect(
            server.ws_url + LIVE_PATH, additional_headers={"Authorization": f"Bearer {token()}"}, open_timeout=10
        ):
            return None
    except InvalidStatus as exc:
        return f"the websocket handshake on {LIVE_PATH} answered HTTP {exc.response.status_code}"


def live_absent(reason: str | None) -> bool:
    return reason is not None and ("HTTP 403" in reason or "HTTP 404" in reason)


class LiveClients:
    """`count` websocket clients of one server, in a `python -m bench.wsclient` process of their own."""

    def __init__(self, server: Server, count: int) -> None:
        self.server = server
        self.count = count
        self.ready: dict[str, Any] = {}
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> LiveClients:
        log = (LOG_DIR / f"wsclient-{self.server.port}-{time.monotonic_ns()}.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.wsclient",
            "--url",
            self.server.ws_url + LIVE_PATH + BATCH_QUERY,
            "--clients",
            str(self.count),
            cwd=ROOT,
            env={**os.environ, "BENCH_WS_TOKEN": token()},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            limit=1 << 26,  # the results line holds every receive time
        )
        log.close()
        register_pid(self.process.pid)
        self.ready = await self._read_line(CONNECT_TIMEOUT_S)
        return self

    async def _read_line(self, timeout_s: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=timeout_s)
        if not line:
            raise RuntimeError(f"the websocket client process exited (code {await self.process.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    async def _send(self, command: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()

    @property
    def connected(self) -> int:
        return int(self.ready.get("ready", 0))

    async def collect(self, events: int, timeout_s: float = COLLECT_TIMEOUT_S) -> dict[str, Any]:
        await self._send(f"collect {events} {timeout_s}")
        return await self._read_line(timeout_s + 30)

    async def __aexit__(self, *_: object) -> None:
        if self.process is None:
            return
        with contextlib.suppress(Exception):
            await self._send("quit")
        try:
            await asyncio.wait_for(self.process.wait(), timeout=20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        forget_pid(self.process.pid)


async def post_events(servers: list[Server], events: int, label: str) -> dict[str, tuple[float, float]]:
    """Post `events` incidents, alternating between the servers; (sent, answered) wall times by incident id."""
    rng = random.Random(7)
    sent: dict[str, tuple[float, float]] = {}
    clients = [http_client(s) for s in servers]
    try:
        for i in range(events):
            began = time.time()
            incident = await create_incident(clients[i % len(clients)], jitter(FIRE_POINT, rng), title=f"{label} {i}")
            sent[str(incident["id"])] = (began, time.time())
            await asyncio.sleep(EVENT_GAP_S)
    finally:
        for client in clients:
            await client.aclose()
    return sent


def delays(
    collected: list[dict[str, Any]], sent: dict[str, tuple[float, float]]
) -> tuple[list[float], list[float], int]:
    """(from event ts, from the API's answer, deliveries received) over every client and event."""
    from_ts: list[float] = []
    from_answer: list[float] = []
    for result in collected:
        for incident_id, got in result["received"].items():
            if incident_id not in sent:
                continue
            from_ts += [at - got["ts"] for at in got["at"]]
            from_answer += [at - sent[incident_id][1] for at in got["at"]]
    return from_ts, from_answer, len(from_ts)


async def _measure(bench: Bench, servers: list[Server], label: str, key: str) -> None:
    r = bench.report
    n = bench.sizes.fanout_clients
    events = bench.sizes.fanout_events
    async with contextlib.AsyncExitStack() as stack:
        groups = [await stack.enter_async_context(LiveClients(server, n)) for server in servers]
        connected = sum(g.connected for g in groups)
        for g in groups:
            if g.ready.get("failed"):
                r.note(f"{g.ready['failed']} of {n} clients could not connect: {g.ready.get('error')}")
        # A warm-up event first, not counted: every socket is attached and the feeds are settled (a process that
        # has just started holds its feed until the transactions running at its start end), so what is
        # measured is the steady fan-out, not a start-up.
        await post_events(servers[:1], 1, f"bench {key} warm-up")
        warm = [await g.collect(1) for g in groups]
        began_cpu = [float(w.get("cpu_s", 0.0)) for w in warm]
        pids = {"server": [s.pid for s in servers]}
        before = cpu_sample(pids["server"])
        sent = await post_events(servers, events, f"bench {key}")
        collected = [await g.collect(events) for g in groups]
        after = cpu_sample(pids["server"])
    from_ts, from_answer, received = delays(collected, sent)
    expected = connected * events
    s, a = Summary.of(from_ts), Summary.of(from_answer)
    post = Summary.of([answered - began for began, answered in sent.values()])
    client_cpu = sum(c["cpu_s"] for c in collected) - sum(began_cpu)
    used = cores_used(before, after, pids, extra_own_s=client_cpu)
    # The server processes' CPU over the posts and the deliveries (the POSTs' own work included): the cost of
    # fan-out that the machine's other tenants disturb much less than they do the latencies.
    server_cpu_s = sum(after.processes.get(p, 0.0) - before.processes.get(p, 0.0) for p in pids["server"])
    # The target is checked on the upper bound (from the event's ts, the transaction's start); the lower
    # bound (from the API's answer, sent after the commit) shows how much of it was the POST's own work.
    r.check(SECTION, f"{key}_p99_ms", f"{label}: commit→delivery p99", s.p99 * 1000, "ms", at_most=250)
    r.info(SECTION, f"{key}_p50_ms", f"{label}: commit→delivery p50", s.p50 * 1000, "ms")
    r.info(SECTION, f"{key}_max_ms", f"{label}: commit→delivery max", s.max * 1000, "ms")
    r.info(SECTION, f"{key}_answer_p99_ms", f"{label}: delivery after the answer, p99", a.p99 * 1000, "ms")
    r.info(
        SECTION,
        f"{key}_server_cpu_us_per_delivery",
        f"{label}: server CPU per delivery",
        server_cpu_s / received * 1e6 if received else float("nan"),
        "µs",
    )
    r.verdict(
        SECTION,
        f"{key}_delivered",
        f"{label}: deliveries",
        received == expected,
        f"{received:,} of {expected:,}",
        "all",
        value=received,
    )
    r.note(
        f"{connected:,} clients, {events} events {EVENT_GAP_S} s apart; commit→delivery is bracketed: from the"
        f" event's ts (upper bound) and from the API's answer (lower bound: p50 {a.p50 * 1000:.1f} ms,"
        f" max {a.max * 1000:.1f} ms); the POSTs took p50 {post.p50 * 1000:.1f} ms; client CPU {client_cpu:.1f} s;"
        f" server CPU {server_cpu_s:.2f} s; clients use batch frames ({BATCH_QUERY})"
    )
    r.note(f"cores used: {cores_text(used)}")
    r.detail(
        SECTION,
        **{
            key: {
                "from_ts_ms": s.ms(),
                "from_answer_ms": a.ms(),
                "received": received,
                "expected": expected,
                "server_cpu_s": server_cpu_s,
                "cores": used,
            }
        },
    )


async def run(bench: Bench) -> None:
    r = bench.report
    n = bench.sizes.fanout_clients
    r.heading(f"4. fan-out — {n:,} live clients on one server process, then 2 processes × {n:,}")
    name, url = await bench.databases.clone(SECTION)
    try:
        async with running_server(url) as first:
            reason = await probe_live(first)
            if live_absent(reason):
                why = f"endpoint not present ({reason})"
                r.skipped(SECTION, "one_p99_ms", f"1 process × {n:,} clients: commit→delivery p99", why)
                r.skipped(SECTION, "two_p99_ms", f"2 processes × {n:,} clients: commit→delivery p99", why)
                return
            if reason is not None:
                raise RuntimeError(reason)
            await _measure(bench, [first], f"1 process × {n:,}", "one")
            async with running_server(url) as second:
                await _measure(bench, [first, second], f"2 processes × {n:,}", "two")
    finally:
        await bench.databases.drop(name)
