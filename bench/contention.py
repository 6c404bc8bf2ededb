"""5. Contention: 16 dispatchers booking teams from the same area at once; no team is ever booked twice.

Each dispatcher has an incident of its own near one point (16 operators on 16 incidents in one area, so they
do not queue on one incident's row lock, only on the teams). It reads the recommendation, books its first
1-2 teams, and on 409 reads the recommendation again; a booking is held a moment, then released, so the
teams cycle. Afterwards SQL checks that no team ever held two unreleased dispatches.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import asyncpg
import httpx

from bench.context import Bench
from bench.core import Summary, cores_text, cores_used, cpu_sample
from bench.infra import backend_pids, http_client, running_server
from bench.workload import DISTRICT_POINTS, create_incident, jitter

SECTION = "contention"
DISPATCHERS = 16
AREA = DISTRICT_POINTS[0]  # the district's seat: the most teams within reach
HOLD_S = (0.0, 0.05)


@dataclass
class Tally:
    bookings: int = 0
    teams_booked: int = 0
    conflicts: int = 0
    releases: int = 0
    empty: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    book_latencies: list[float] = field(default_factory=list)

    def error(self, what: str, response: httpx.Response | None = None, exc: Exception | None = None) -> None:
        key = f"{what} {response.status_code if response is not None else type(exc).__name__}"
        self.errors[key] = self.errors.get(key, 0) + 1


async def dispatcher(
    client: httpx.AsyncClient, incident_id: int, until: float, rng: random.Random, tally: Tally
) -> None:
    base = f"/api/v1/incidents/{incident_id}"
    while time.monotonic() < until:
        try:
            rec = await client.get(f"{base}/recommendation")
            if rec.status_code != 200:
                tally.error("recommendation", rec)
                continue
            teams = [t["id"] for t in rec.json()["teams"]]
            if not teams:
                tally.empty += 1
                await asyncio.sleep(0.01)
                continue
            wanted = teams[: rng.choice((1, 2))]
            began = time.perf_counter()
            booked = await client.post(f"{base}/dispatches", json={"team_ids": wanted})
            if booked.status_code == 409:
                tally.conflicts += 1
                continue
            if booked.status_code != 201:
                tally.error("dispatch", booked)
                continue
            tally.book_latencies.append(time.perf_counter() - began)
            tally.bookings += 1
            dispatches = booked.json()["dispatches"]
            tally.teams_booked += len(dispatches)
            await asyncio.sleep(rng.uniform(*HOLD_S))
            for d in dispatches:
                released = await client.post(f"{base}/dispatches/{d['id']}/release")
                if released.status_code == 200:
                    tally.releases += 1
                else:
                    tally.error("release", released)
        except httpx.HTTPError as exc:
            tally.error("transport", exc=exc)


async def run(bench: Bench) -> None:
    r = bench.report
    seconds = bench.sizes.contention_s
    r.heading(f"5. contention — {DISPATCHERS} dispatchers booking from the same area for {seconds:.0f} s")
    name, url = await bench.databases.clone(SECTION)
    tally = Tally()
    try:
        async with running_server(url) as server, http_client(server, connections=DISPATCHERS) as client:
            rng = random.Random(5)
            incidents = [
                await create_incident(client, jitter(AREA, rng), title=f"bench contention {i}", kind="building_fire")
                for i in range(DISPATCHERS)
            ]
            pids = {"server": [server.pid]}
            if bench.local_db:
                pids["db"] = await backend_pids(url, name)
            before = cpu_sample(p for group in pids.values() for p in group)
            until = time.monotonic() + seconds
            started = time.monotonic()
            await asyncio.gather(
                *(
                    dispatcher(client, incident["id"], until, random.Random(i), tally)
                    for i, incident in enumerate(incidents)
                )
            )
            elapsed = time.monotonic() - started
            if bench.local_db:
                pids["db"] = sorted(set(pids["db"]) | set(await backend_pids(url, name)))
            after = cpu_sample(p for group in pids.values() for p in group)
        conn = await asyncpg.connect(url)
        try:
            doubles = await conn.fetch(
                "SELECT team_id FROM dispatch WHERE released_at IS NULL GROUP BY team_id HAVING count(*) > 1"
            )
            checked = int(await conn.fetchval("SELECT count(*) FROM dispatch"))
            # Beyond the index: team status and dispatch rows agree (every team is free again at the end).
            mismatched = int(
                await conn.fetchval(
                    """SELECT count(*) FROM team t WHERE
                         (t.status = 'dispatched') <> EXISTS (
                           SELECT 1 FROM dispatch d WHERE d.team_id = t.id AND d.released_at IS NULL)"""
                )
            )
            contested = int(await conn.fetchval("SELECT count(DISTINCT team_id) FROM dispatch"))
        finally:
            await conn.close()
    finally:
        await bench.databases.drop(name)

    used = cores_used(before, after, pids)
    book = Summary.of(tally.book_latencies)
    r.info(SECTION, "bookings_per_s", "bookings/s (successful dispatch POSTs)", tally.bookings / elapsed, "bookings/s")
    r.info(SECTION, "teams_booked_per_s", "teams booked/s", tally.teams_booked / elapsed, "/s")
    r.info(SECTION, "conflicts", "409s (team taken by another dispatcher)", tally.conflicts, "")
    r.verdict(
        SECTION,
        "double_bookings",
        "double bookings",
        not doubles,
        f"{len(doubles)} (checked {checked:,} dispatches)",
        "0",
        value=len(doubles),
        checked=checked,
    )
    r.verdict(
        SECTION,
        "status_mismatches",
        "teams whose status disagrees with dispatches",
        mismatched == 0,
        str(mismatched),
        "0",
        value=mismatched,
    )
    r.note(
        f"double bookings: {len(doubles)} (checked {checked:,} dispatches over {contested} teams);"
        f" booking p50 {book.p50 * 1000:.1f} ms · p99 {book.p99 * 1000:.1f} ms;"
        f" {tally.releases:,} releases; {tally.empty} empty recommendations"
    )
    if tally.errors:
        r.note(f"unexpected answers: {tally.errors}")
    r.note(f"cores used: {cores_text(used)}")
    r.detail(SECTION, booking_ms=book.ms(), errors=tally.errors, conflicts=tally.conflicts, checked=checked)
