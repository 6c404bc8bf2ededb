"""PostgreSQL restarts while clients write: clean 503s, recovery by itself, nothing acknowledged is lost,
and a websocket client resuming from the start sees every committed event exactly once.

Runs on a private cluster (never the shared server), like the live feed's restart test.
"""

import asyncio
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import TEST_SECRET
from tests.live.conftest import db_connect
from tests.live.test_feed_restart import private_cluster, run
from tests.server import running_server

pytestmark = pytest.mark.slow
# A request may wait this long at most (connect timeout 5 s + pool wait 5 s + margin) before it is answered.
MAX_REQUEST_S = 15.0


async def send(client: httpx.AsyncClient, n: int, headers: dict[str, str], team_id: int) -> httpx.Response:
    """Odd requests report an incident, even ones post a team's position."""
    if n % 2:
        return await client.post(
            "/api/v1/incidents",
            headers=headers,
            json={"type": "flood", "location": {"type": "Point", "coordinates": [117.41, 39.95]}, "title": f"r{n}"},
        )
    fix = {
        "team_id": team_id,
        "location": {"type": "Point", "coordinates": [117.4 + n / 1e5, 40.0]},
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    return await client.post("/api/v1/positions", headers=headers, json=[fix])


async def writer(url: str, headers: dict[str, str], team_id: int, stop: asyncio.Event, log: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            started = time.monotonic()
            try:
                response = await send(client, n, headers, team_id)
            except httpx.HTTPError as exc:  # no answer at all: counted, and a failure of the test below
                log["codes"][type(exc).__name__] += 1
                log["latencies"].append(time.monotonic() - started)
                continue
            log["latencies"].append(time.monotonic() - started)
            log["codes"][response.status_code] += 1
            if response.status_code == 201:
                log["incidents"].append(response.json()["id"])
            elif response.status_code >= 500:
                log["error_codes"][response.json().get("code")] += 1
            if response.status_code < 300:
                log["successes_at"].append(time.monotonic())
            await asyncio.sleep(0.02)


async def read_feed(ws_url: str, token: str, until_seq: int) -> list[int]:
    seqs: list[int] = []
    async with websockets.connect(
        f"{ws_url}/api/v1/live?since=0", additional_headers={"Authorization": f"Bearer {token}"}
    ) as socket:
        while not seqs or seqs[-1] < until_seq:
            message = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if message["type"] == "event":
                seqs.append(message["seq"])
            elif message["type"] == "ping":
                await socket.send(json.dumps({"type": "pong"}))
    return seqs


async def test_database_restart_mid_load(token: Any) -> None:
    async with private_cluster() as cluster:
        env = {
            **os.environ,
            "DATABASE_URL": cluster.url,
            "JIZHOU_JWT_SECRET": TEST_SECRET,
            "JIZHOU_ENVIRONMENT": "test",
        }
        await run(sys.executable, "-m", "alembic", "upgrade", "head", env=env)
        await run(sys.executable, "-m", "app", "seed", env=env)
        with running_server(cluster.url) as server:
            headers = {"Authorization": f"Bearer {token('command')}"}
            log: dict[str, Any] = {
                "latencies": [],
                "codes": Counter(),
                "error_codes": Counter(),
                "incidents": [],
                "successes_at": [],
            }
            stop = asyncio.Event()
            team_ids = [1, 2, 3, 4]
            writers = [asyncio.create_task(writer(server.url, headers, t, stop, log)) for t in team_ids]
            await asyncio.sleep(2)
            restarted_at = time.monotonic()
            await cluster.restart()
            back_at = time.monotonic()
            await asyncio.sleep(8)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*writers), 60)

            conn = await db_connect(cluster.url)
            try:
                stored = await conn.fetch("SELECT id FROM incident WHERE id = ANY($1::bigint[])", log["incidents"])
                with_events = await conn.fetchval(
                    "SELECT count(DISTINCT subject_id) FROM event WHERE topic = 'incident.created' "
                    "AND subject_id = ANY($1)",
                    [str(i) for i in log["incidents"]],
                )
                committed = [r["seq"] for r in await conn.fetch("SELECT seq FROM event ORDER BY seq")]
            finally:
                await conn.close()
            seqs = await read_feed(server.url.replace("http", "ws"), token("command"), committed[-1])
            server_log = server.log()

    after_restart = [t for t in log["successes_at"] if t > back_at]
    recovery_s = (after_restart[0] - back_at) if after_restart else None
    print(  # the figures RELIABILITY.md quotes
        f"\nrequests={sum(log['codes'].values())} codes={dict(log['codes'])} errors={dict(log['error_codes'])} "
        f"restart_s={back_at - restarted_at:.1f} recovery_s={recovery_s} max_latency_s={max(log['latencies']):.2f} "
        f"acknowledged_incidents={len(log['incidents'])} events_checked={len(committed)}"
    )
    assert set(log["codes"]) <= {200, 201, 503}, (log["codes"], server_log[-4000:])
    assert set(log["error_codes"]) <= {"database_unavailable"}, log["error_codes"]
    assert max(log["latencies"]) < MAX_REQUEST_S, "a request hung past the bound"
    assert recovery_s is not None and recovery_s < 10, "the service did not recover by itself"
    assert len(stored) == len(set(log["incidents"])) == with_events, "an acknowledged write is missing"
    assert seqs == committed, "every committed event exactly once, in order"
