"""6. The write path with events: incident creates and team status writes per second, live feed on vs off.

Rounds alternate OFF, ON, OFF, ON (each on a freshly started server, so one mode's feed never sees the
other's writes), and the figures add the rounds of each mode up. ON is the default settings with live
clients connected; OFF sets JIZHOU_LIVE_ENABLED=false when the service has that switch, else it is the
same server with no client connected (said so in the output).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

import asyncpg
import httpx

from app.config import Settings
from bench.context import Bench
from bench.core import Summary, cores_text, cores_used, cpu_sample
from bench.fanout import BATCH_QUERY, LiveClients, live_absent, probe_live
from bench.infra import Server, backend_pids, http_client, running_server
from bench.workload import DISTRICT_POINTS, incident_body, jitter

SECTION = "writes"
WRITERS = 8
WARMUP_S = 1.0


@dataclass
class Mode:
    name: str
    env: dict[str, str]
    live_clients: int
    incident_s: list[float] = field(default_factory=list)
    status_s: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    delivered: int = 0
    cores: list[dict[str, float]] = field(default_factory=list)
    server_cpu_s: float = 0.0
    wants_live: bool = False
    # Why the live feed is absent ("present" when it is there); "" until asked.
    live_reason: str = ""

    @property
    def writes(self) -> int:
        return len(self.incident_s) + len(self.status_s)

    @property
    def rate(self) -> float:
        return self.writes / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_write(self) -> float:
        return self.server_cpu_s / self.writes * 1000 if self.writes else float("nan")


async def writer(
    client: httpx.AsyncClient, team_id: int, measure_from: float, until: float, rng: random.Random, mode: Mode
) -> None:
    out = False
    n = 0
    while (now := time.monotonic()) < until:
        n += 1
        body = incident_body(jitter(rng.choice(DISTRICT_POINTS), rng, 0.003), title=f"bench writes {mode.name} {n}")
        for kind, method, url, payload, expected in (
            ("incident", "POST", "/api/v1/incidents", body, 201),
            (
                "status",
                "POST",
                f"/api/v1/teams/{team_id}/status",
                {"to": "available" if out else "out_of_service"},
                200,
            ),
        ):
            began = time.perf_counter()
            try:
                response = await client.request(method, url, json=payload)
            except httpx.HTTPError as exc:
                mode.failures[f"{kind} {type(exc).__name__}"] = mode.failures.get(f"{kind} {type(exc).__name__}", 0) + 1
                continue
            elapsed = time.perf_counter() - began
            if kind == "status":
                out = not out
            if now < measure_from or time.monotonic() >= until:
                continue
            if response.status_code == expected:
                (mode.incident_s if kind == "incident" else mode.status_s).append(elapsed)
            else:
                key = f"{kind} {response.status_code}"
                mode.failures[key] = mode.failures.get(key, 0) + 1


async def _round(bench: Bench, mode: Mode, url: str, database: str, team_ids: list[int]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE team SET status = 'available' WHERE id = ANY($1::bigint[])", team_ids)
    finally:
        await conn.close()
    async with running_server(url, env=mode.env) as server, contextlib.AsyncExitStack() as stack:
        if mode.wants_live and mode.live_reason == "":
            # Asked once, on the first ON server: is there a live feed to connect to at all?
            mode.live_reason = await probe_live(server) or "present"
            if live_absent(mode.live_reason):
                mode.live_clients = 0
        clients = await stack.enter_async_context(LiveClients(server, mode.live_clients)) if mode.live_clients else None
        await _write(bench, mode, server, url, database, team_ids)
        if clients is not None:
            collected = await clients.collect(0, 0.5)
            mode.delivered += sum(len(v["at"]) for v in collected["received"].values())


async def _write(bench: Bench, mode: Mode, server: Server, url: str, database: str, team_ids: list[int]) -> None:
    async with http_client(server, connections=WRITERS) as client:
        start = time.monotonic()
        measure_from = start + WARMUP_S
        until = measure_from + bench.sizes.writes_round_s
        tasks = [
            asyncio.create_task(writer(client, team_id, measure_from, until, random.Random(i), mode))
            for i, team_id in enumerate(team_ids)
        ]
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        pids = {"server": [server.pid]}
        if bench.local_db:
            pids["db"] = await backend_pids(url, database)
        before = cpu_sample(p for group in pids.values() for p in group)
        await asyncio.gather(*tasks)
        after = cpu_sample(p for group in pids.values() for p in group)
        mode.seconds += until - measure_from
        used = cores_used(before, after, pids)
        mode.cores.append(used)
        # CPU seconds the service spent in the window: a measure of the feed's cost that the machine's
        # other tenants disturb less than the write rate does.
        mode.server_cpu_s += used["server"] * (until - measure_from)


async def run(bench: Bench) -> None:
    r = bench.report
    rounds = bench.sizes.writes_rounds
    r.heading(f"6. write path with events — {WRITERS} writers, live feed ON vs OFF, {rounds}× each, alternating")
    name, url = await bench.databases.clone(SECTION)
    try:
        conn = await asyncpg.connect(url)
        try:
            team_ids = [int(row["id"]) for row in await conn.fetch("SELECT id FROM team ORDER BY id LIMIT $1", WRITERS)]
        finally:
            await conn.close()
        switch = "live_enabled" in Settings.model_fields
        on = Mode("on", {}, bench.sizes.writes_live_clients, wants_live=True)
        off = Mode("off", {"JIZHOU_LIVE_ENABLED": "false"} if switch else {}, 0)
        for _ in range(rounds):
            for mode in (off, on):
                await _round(bench, mode, url, name, team_ids)
        live = not live_absent(on.live_reason)
        if not live:
            r.note(f"the live feed is not on this branch ({on.live_reason}): ON was the same server with 0 clients")
        elif not switch:
            r.note("no JIZHOU_LIVE_ENABLED switch on this branch: OFF was the same server with 0 websocket clients")
        else:
            r.note(
                f"OFF: JIZHOU_LIVE_ENABLED=false; ON: default settings with {on.live_clients} live clients"
                f" using batch frames ({BATCH_QUERY}: one frame per socket per hub cycle)"
            )
    finally:
        await bench.databases.drop(name)

    for mode in (off, on):
        i, s = Summary.of(mode.incident_s), Summary.of(mode.status_s)
        r.info(SECTION, f"writes_per_s_{mode.name}", f"writes/s, live feed {mode.name.upper()}", mode.rate, "writes/s")
        r.info(
            SECTION,
            f"cpu_ms_per_write_{mode.name}",
            f"service CPU per write, live feed {mode.name.upper()}",
            mode.cpu_ms_per_write,
            "ms",
        )
        r.note(
            f"incident create p50 {i.p50 * 1000:.1f} ms · p99 {i.p99 * 1000:.1f} ms ({i.n});"
            f" status write p50 {s.p50 * 1000:.1f} ms · p99 {s.p99 * 1000:.1f} ms ({s.n})"
            + (f"; failures {mode.failures}" if mode.failures else "")
        )
        if mode.live_clients:
            r.note(f"{mode.live_clients} live clients received {mode.delivered:,} incident.created events")
        for used in mode.cores:
            r.note(f"cores used: {cores_text(used)}")
        r.detail(
            SECTION,
            **{mode.name: {"incident_ms": i.ms(), "status_ms": s.ms(), "rate": mode.rate, "cores": mode.cores}},
        )
    ratio = off.rate / on.rate if on.rate else float("nan")
    r.info(
        SECTION, "cpu_ratio_on_off", "service CPU per write ON / OFF", on.cpu_ms_per_write / off.cpu_ms_per_write, "×"
    )
    label = "write rate OFF / ON (cost of the feed)"
    if live:
        r.check(
            SECTION, "ratio_off_on", label, ratio, "×", at_most=1.5, live_switch=switch, live_clients=on.live_clients
        )
    else:
        # Both modes ran the same thing: what their ratio shows is only the run-to-run noise of this machine.
        r.skipped(
            SECTION, "ratio_off_on", label, f"live feed not present; the same writes twice differ by {ratio:.2f}×"
        )
