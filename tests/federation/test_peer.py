"""A real peer: two instances of the service (Jizhou and Pinggu), each a uvicorn process with its own
database, JWT secret and federation keys, run a full mutual-aid exchange over HTTP:
Pinggu requests -> Jizhou accepts with named teams -> Jizhou commits (teams dispatched) -> Pinggu releases
(teams available again), with the request and resource states checked through each side's API."""

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from app.auth import mint_token
from app.config import Settings
from app.users.models import Role
from tests.conftest import RUN_ID, TEST_SECRET, CommittedDb, create_database, drop_database
from tests.federation.helpers import signed

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PINGGU_JWT_SECRET = "pinggu-test-jwt-secret-" + "q" * 32
# Test-only keys: Jizhou signs with J, Pinggu with P; each side holds the other's as an inbound key.
J_KEY = ("jizhou-k1", "jizhou-peer-signing-secret-" + "1" * 24)
P_KEY = ("pinggu-k1", "pinggu-peer-signing-secret-" + "2" * 24)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Instance:
    name: str
    url: str
    db_url: str
    jwt_secret: str
    process: subprocess.Popen[bytes]
    log: Path

    def headers(self, role: str = "command") -> dict[str, str]:
        settings = Settings(database_url=self.db_url, jwt_secret=self.jwt_secret, environment="test")
        return {"Authorization": "Bearer " + mint_token(settings=settings, subject=f"peer-{role}", role=Role(role))}


def start(
    name: str, db_url: str, jwt_secret: str, port: int, sender: str, partners: dict[str, Any], log: Path
) -> Instance:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "JIZHOU_JWT_SECRET": jwt_secret,
        "JIZHOU_ENVIRONMENT": "test",
        "JIZHOU_LOG_JSON": "false",
        "JIZHOU_LOG_LEVEL": "WARNING",
        "JIZHOU_FEDERATION_SENDER_ID": sender,
        "JIZHOU_FEDERATION_PARTNERS": json.dumps(partners),
        # Fast retries so the test does not wait on backoff (the peer may start after us).
        "JIZHOU_FEDERATION_RETRY_BASE_S": "0.2",
        "JIZHOU_FEDERATION_RETRY_MAX_S": "1",
        "JIZHOU_FEDERATION_WORKER_POLL_S": "0.3",
    }
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    return Instance(name, f"http://127.0.0.1:{port}", db_url, jwt_secret, process, log)


async def wait_ready(instance: Instance, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if instance.process.poll() is not None:
                raise AssertionError(f"{instance.name} exited:\n{instance.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(instance.url + "/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{instance.name} did not become ready:\n{instance.log.read_text()[-3000:]}")


def stop(instance: Instance) -> None:
    instance.process.terminate()
    try:
        instance.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        instance.process.kill()
        instance.process.wait(timeout=10)


@pytest.fixture
async def peers(
    committed_db: CommittedDb, template_db: str, tmp_path: Path
) -> AsyncIterator[tuple[Instance, Instance]]:
    # Pinggu's own database: the same seed data, plus Jizhou as its partner.
    pinggu_db_name = f"jizhou_test_{RUN_ID}_{uuid.uuid4().hex[:8]}_pinggu"
    pinggu_db = await create_database(pinggu_db_name, template=template_db)
    conn = await asyncpg.connect(pinggu_db)
    try:
        await conn.execute(
            "INSERT INTO partner (id, adcode, name, name_en, parent, roles, endpoint, active) VALUES "
            "('jizhou', '120119', '蓟州区', 'Jizhou District', '天津市', "
            "ARRAY['emergency_linkage','forest_fire_defence'], NULL, true)"
        )
    finally:
        await conn.close()
    j_port, p_port = free_port(), free_port()
    j_url, p_url = f"http://127.0.0.1:{j_port}", f"http://127.0.0.1:{p_port}"
    jizhou = start(
        "jizhou",
        committed_db.url,
        TEST_SECRET,
        j_port,
        "jizhou",
        {
            "pinggu": {
                "endpoint": p_url,
                "inbound_keys": {P_KEY[0]: P_KEY[1]},
                "outbound_key_id": J_KEY[0],
                "outbound_secret": J_KEY[1],
            }
        },
        tmp_path / "jizhou.log",
    )
    pinggu = start(
        "pinggu",
        pinggu_db,
        PINGGU_JWT_SECRET,
        p_port,
        "pinggu",
        {
            "jizhou": {
                "endpoint": j_url,
                "inbound_keys": {J_KEY[0]: J_KEY[1]},
                "outbound_key_id": P_KEY[0],
                "outbound_secret": P_KEY[1],
            }
        },
        tmp_path / "pinggu.log",
    )
    try:
        await asyncio.gather(wait_ready(jizhou), wait_ready(pinggu))
        yield jizhou, pinggu
    finally:
        stop(jizhou)
        stop(pinggu)
        await drop_database(pinggu_db_name)


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, within_s: float = 30) -> T:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = await check()
        if value is not None:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_mutual_aid_between_two_instances(peers: tuple[Instance, Instance]) -> None:
    jizhou, pinggu = peers
    async with httpx.AsyncClient(timeout=20) as http:
        J, P = jizhou.url + "/api/v1", pinggu.url + "/api/v1"
        jh, ph = jizhou.headers(), pinggu.headers()

        async def get(url: str, headers: dict[str, str]) -> Any:
            r = await http.get(url, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()

        async def one(base: str, headers: dict[str, str], direction: str, state: str) -> dict[str, Any] | None:
            items = (await get(f"{base}/federation/aid-requests?direction={direction}", headers))["items"]
            return items[0] if items and items[0]["state"] == state else None

        async def team_status(team_id: int) -> str:
            return str((await get(f"{J}/teams/{team_id}", jh))["properties"]["status"])

        # 1. Pinggu's command center asks Jizhou for two forest-fire teams.
        r = await http.post(
            f"{P}/federation/aid-requests",
            headers=ph,
            json={
                "partner": "jizhou",
                "resources": [{"capability": "forest_fire", "quantity": 2, "description": "fire on the ridge"}],
                "location": {"type": "Point", "coordinates": [117.25, 40.21]},
                "note": "Fire front crossing towards the Jizhou border",
            },
        )
        assert r.status_code == 201, r.text
        asked = r.json()
        assert (asked["direction"], asked["state"]) == ("outbound", "requested")

        # 2. It arrives at Jizhou as a request waiting for a decision.
        received = await eventually(lambda: one(J, jh, "inbound", "requested"), "the request at Jizhou")
        assert received["partner"] == "pinggu" and received["request_id"] == asked["request_id"]
        assert received["resources"][0]["capability"] == "forest_fire"

        # 3. Jizhou's command center accepts with named teams (a team the agreement does not share is refused).
        teams = {
            kind: (await get(f"{J}/teams?kind={kind}", jh))["features"][0]
            for kind in ("forest_fire", "aviation", "township_fire")
        }
        forest, aviation = teams["forest_fire"]["id"], teams["aviation"]["id"]
        assert await team_status(forest) == "available"
        decision = f"{J}/federation/aid-requests/{received['id']}/decision"
        r = await http.post(
            decision, headers=jh, json={"decision": "accept", "team_ids": [teams["township_fire"]["id"]]}
        )
        assert (r.status_code, r.json()["code"]) == (409, "team_not_shared")
        r = await http.post(decision, headers=jh, json={"decision": "accept", "team_ids": [forest, aviation]})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "accepted" and r.json()["team_ids"] == sorted([forest, aviation])
        r = await http.post(decision, headers=jh, json={"decision": "decline"})  # decided already
        assert (r.status_code, r.json()["code"]) == (409, "illegal_aid_transition")
        assert await team_status(forest) == "available"  # accepted, not yet committed

        # 4. Pinggu sees the acceptance with the offered teams.
        accepted = await eventually(lambda: one(P, ph, "outbound", "accepted"), "the acceptance at Pinggu")
        assert {o["resourceID"] for o in accepted["offered"]} == {f"jizhou:team:{forest}", f"jizhou:team:{aviation}"}

        # 5. Jizhou commits: the teams are booked (dispatched) on Jizhou.
        r = await http.post(f"{J}/federation/aid-requests/{received['id']}/commit", headers=jh)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "committed"
        assert await team_status(forest) == "dispatched" and await team_status(aviation) == "dispatched"
        # Partners see them as dispatched in Jizhou's shared resources, too.
        path = "/federation/v1/resources"
        r = await http.get(jizhou.url + path, headers=signed("GET", path, key=P_KEY))
        assert r.status_code == 200, r.text
        shared = {t["resourceID"]: t["status"] for t in r.json()["teams"]["items"]}
        assert shared[f"jizhou:team:{forest}"] == "dispatched"

        committed = await eventually(lambda: one(P, ph, "outbound", "committed"), "the commitment at Pinggu")
        assert len(committed["offered"]) == 2

        # 6. Pinggu no longer needs them and releases: the teams are available on Jizhou again.
        r = await http.post(
            f"{P}/federation/aid-requests/{asked['id']}/release", headers=ph, json={"reason": "fire controlled"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "released"
        await eventually(lambda: one(J, jh, "inbound", "released"), "the release at Jizhou")
        assert await team_status(forest) == "available" and await team_status(aviation) == "available"

        # Every message on both sides was acknowledged; the exchange is on Jizhou's event feed.
        for base, headers in ((J, jh), (P, ph)):
            items = (await get(f"{base}/federation/outbox", headers))["items"]
            assert items and {m["state"] for m in items} == {"delivered"}, items
        kinds = [m["content_types"][0] for m in reversed((await get(f"{J}/federation/outbox", jh))["items"])]
        assert kinds == ["ResponseToRequestResource", "CommitResource"]

    conn = await asyncpg.connect(jizhou.db_url)
    try:
        rows = await conn.fetch(
            "SELECT topic, township_code FROM event WHERE topic LIKE 'federation.aid_%' ORDER BY seq"
        )
        team_events = await conn.fetch(
            "SELECT data->>'status' AS status FROM event WHERE topic = 'team.status_changed' "
            "AND subject_id = $1 ORDER BY seq",
            str(forest),
        )
    finally:
        await conn.close()
    assert [r["topic"] for r in rows] == [
        "federation.aid_requested",
        "federation.aid_decided",
        "federation.aid_committed",
        "federation.aid_released",
    ]
    assert all(r["township_code"] is None for r in rows)
    assert [r["status"] for r in team_events] == ["dispatched", "available"]
