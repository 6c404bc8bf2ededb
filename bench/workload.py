"""Requests the sections send, shaped as a client of the API would send them."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from bench.http1 import Http1Client

# The district's bounding box (WGS-84) where synthetic teams, shelters and incidents go.
BBOX = (117.2, 39.75, 117.75, 40.25)

# Where the recommendation is asked: the northern mountains (forest-fire country, a mountain township).
FIRE_POINT = (117.46, 40.19)
# Points inside the district's townships (the city, the mountains, the plains, east and west), each at least
# 1.5 km inside the district's edge, so a jitter of up to 0.008° stays in a township.
DISTRICT_POINTS = [
    (117.405, 40.045),
    (117.46, 40.19),
    (117.38, 39.80),
    (117.66, 40.05),
    (117.27, 40.02),
    (117.50, 40.02),
]


class UnexpectedResponse(RuntimeError):
    def __init__(self, what: str, response: httpx.Response) -> None:
        super().__init__(f"{what}: HTTP {response.status_code} {response.text[:500]}")
        self.status_code = response.status_code


def jitter(point: tuple[float, float], rng: random.Random, degrees: float = 0.004) -> tuple[float, float]:
    return (point[0] + rng.uniform(-degrees, degrees), point[1] + rng.uniform(-degrees, degrees))


def incident_body(
    point: tuple[float, float], *, title: str, kind: str = "forest_fire", people_affected: int = 0
) -> dict[str, Any]:
    return {
        "type": kind,
        "location": {"type": "Point", "coordinates": [round(point[0], 6), round(point[1], 6)]},
        "coord_sys": "wgs84",
        "title": title,
        "people_affected": people_affected,
        "exercise": True,  # the bench's incidents are drills: they never count as real
    }


async def create_incident(
    client: httpx.AsyncClient,
    point: tuple[float, float],
    *,
    title: str = "bench",
    kind: str = "forest_fire",
    people_affected: int = 0,
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/incidents", json=incident_body(point, title=title, kind=kind, people_affected=people_affected)
    )
    if response.status_code != 201:
        raise UnexpectedResponse("POST /api/v1/incidents", response)
    body: dict[str, Any] = response.json()
    return body


async def get_recommendation(client: httpx.AsyncClient, incident_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/incidents/{incident_id}/recommendation")
    if response.status_code != 200:
        raise UnexpectedResponse("GET recommendation", response)
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Tally:
    """Outcomes of a load loop: latencies (s) of the successes, and counts by status."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0

    def add(self, status: int, seconds: float, ok: bool) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if ok:
            self.latencies.append(seconds)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> int:
        return sum(self.statuses.values()) - self.ok + self.transport_errors


async def timed_get(client: Http1Client, request: bytes, path: str) -> tuple[bytes, float]:
    """One measured GET on the lean client (bench/http1.py): its body and seconds; a non-200 raises."""
    start = time.perf_counter()
    status, body = await client.send(request)
    seconds = time.perf_counter() - start
    if status != 200:
        raise UnexpectedResponse(path, httpx.Response(status, content=body))
    return body, seconds


# ---- synthetic resources, bulk-inserted in SQL (setup, not what is measured) ------------------------

INSERT_TEAMS = """
INSERT INTO team (code, name, name_en, kind, capabilities, headcount, base, status)
SELECT 'BENCH-T-' || g,
       'bench team ' || g,
       'bench team ' || g,
       (ARRAY['forest_fire', 'township_fire', 'social', 'militia'])[1 + (g % 4)],
       CASE WHEN g % 2 = 0 THEN ARRAY['forest_fire', 'water_supply']
            ELSE ARRAY['forest_fire', 'search_rescue'] END::varchar(32)[],
       20,
       ST_SetSRID(ST_MakePoint($3::float8 + random() * ($5::float8 - $3::float8),
                               $4::float8 + random() * ($6::float8 - $4::float8)), 4326)::geography,
       'available'
FROM generate_series($1::int, $2::int) AS g
"""

INSERT_SHELTERS = """
INSERT INTO shelter (code, name, level, site_type, capacity, occupancy, location, status)
SELECT 'BENCH-S-' || g,
       'bench shelter ' || g,
       'emergency',
       'square',
       500,
       0,
       ST_SetSRID(ST_MakePoint($3::float8 + random() * ($5::float8 - $3::float8),
                               $4::float8 + random() * ($6::float8 - $4::float8)), 4326)::geography,
       'standby'
FROM generate_series($1::int, $2::int) AS g
"""


async def top_up(conn: asyncpg.Connection, table: str, total: int, *, seed: float = 0.42) -> int:
    """Insert synthetic rows (random points in the district's bbox) until `table` holds `total`; ANALYZE it."""
    have = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    first = int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE code LIKE 'BENCH-%'")) + 1
    missing = total - have
    if missing > 0:
        await conn.execute("SELECT setseed($1)", seed)
        sql = INSERT_TEAMS if table == "team" else INSERT_SHELTERS
        await conn.execute(sql, first, first + missing - 1, *BBOX)
    await conn.execute(f"ANALYZE {table}")
    return max(missing, 0)
