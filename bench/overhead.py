"""1. Recommendation overhead: the endpoint over HTTP next to the same SQL on raw asyncpg, interleaved."""

from __future__ import annotations

import time

from bench.capture import capture_recommendation_sql, replay, replay_connection
from bench.context import Bench
from bench.core import Summary, cores_text, cores_used, cpu_sample
from bench.http1 import Http1Client
from bench.infra import auth_headers, backend_pids, http_client, running_server
from bench.workload import FIRE_POINT, create_incident, timed_get

SECTION = "overhead"
WARMUP = 50


async def run(bench: Bench) -> None:
    r = bench.report
    r.heading("1. recommendation overhead — HTTP vs the same SQL on raw asyncpg, one client, interleaved")
    name, url = await bench.databases.clone(SECTION)
    try:
        async with running_server(url) as server, http_client(server, connections=1) as client:
            incident = await create_incident(client, FIRE_POINT, title="bench overhead", people_affected=200)
            path = f"/api/v1/incidents/{incident['id']}/recommendation"
            statements = await capture_recommendation_sql(url, incident["id"])
            r.note(
                f"GET {path}: forest fire at {FIRE_POINT} (township {incident['township']}), 200 people affected;"
                f" the request runs {len(statements)} SQL statements,"
                " replayed raw in autocommit, as the hot read pool runs them"
            )
            conn = await replay_connection(url)
            # The measured requests go on the lean client (bench/http1.py), so the figure is the service's
            # and the loopback's, not httpx's (~1 ms of its own per request on this machine).
            lean = Http1Client(server.url, auth_headers())
            request = lean.get(path)
            try:
                for _ in range(WARMUP):
                    await timed_get(lean, request, path)
                    await replay(conn, statements)
                pids = {"server": [server.pid]}
                if bench.local_db:
                    pids["db_http"] = await backend_pids(url, name)
                    pids["db_raw"] = [conn.get_server_pid()]
                    pids["db_http"] = [p for p in pids["db_http"] if p not in pids["db_raw"]]
                before = cpu_sample(p for group in pids.values() for p in group)
                http: list[float] = []
                raw: list[float] = []
                deadline = time.monotonic() + bench.sizes.overhead_max_s
                for _ in range(bench.sizes.overhead_pairs):
                    if time.monotonic() > deadline:
                        r.note(f"time budget of {bench.sizes.overhead_max_s:.0f} s reached after {len(http)} pairs")
                        break
                    _, seconds = await timed_get(lean, request, path)
                    http.append(seconds)
                    raw.append(await replay(conn, statements))
                after = cpu_sample(p for group in pids.values() for p in group)
            finally:
                lean.close()
                await conn.close()
    finally:
        await bench.databases.drop(name)

    h, s = Summary.of(http), Summary.of(raw)
    used = cores_used(before, after, pids)
    n = len(http)
    wall = after.wall - before.wall
    per_request_ms = {k: round(v * wall / n * 1000, 3) for k, v in used.items() if k not in ("machine", "other")}
    r.detail(SECTION, http_ms=h.ms(), raw_ms=s.ms(), statements=[st.sql for st in statements], cores=used)
    r.detail(SECTION, cpu_ms_per_pair=per_request_ms)
    r.check(SECTION, "http_p50_ms", "HTTP p50", h.p50 * 1000, "ms", at_most=5)
    r.check(SECTION, "http_p99_ms", "HTTP p99", h.p99 * 1000, "ms", at_most=25)
    r.info(SECTION, "raw_p50_ms", "raw asyncpg p50 (same SQL)", s.p50 * 1000, "ms")
    r.info(SECTION, "raw_p99_ms", "raw asyncpg p99 (same SQL)", s.p99 * 1000, "ms")
    r.check(SECTION, "ratio_p50", "ratio p50 (HTTP / raw)", h.p50 / s.p50, "×", at_most=3)
    r.info(SECTION, "ratio_p99", "ratio p99 (HTTP / raw)", h.p99 / s.p99, "×")
    r.info(SECTION, "server_cpu_ms", "service CPU per request", per_request_ms.get("server"), "ms")
    r.note(f"{n} pairs; cores used: {cores_text(used)}")
    r.note("CPU ms per HTTP+raw pair: " + " · ".join(f"{k} {v:.2f}" for k, v in per_request_ms.items()))
