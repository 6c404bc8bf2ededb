"""3. Scale: the same recommendation with 5,000 and 100,000 teams (and shelters), and in a surge."""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg
import orjson

from bench.capture import Statement, capture_recommendation_sql, explain, explain_generic, replay, replay_connection
from bench.context import Bench
from bench.core import Summary
from bench.http1 import Http1Client
from bench.infra import auth_headers, http_client, running_server
from bench.workload import FIRE_POINT, create_incident, timed_get, top_up

SECTION = "scale"
SURGE_BUSY = 1_000
WARMUP = 20
# The GiST indexes a team KNN may walk by base: the plain one, or (migration 0005) the partial one of the
# teams not flagged live. With every team live, the live teams' partial index on position.
BASE_INDEXES = ("idx_team_base", "ix_team_base_not_live", "ix_team_base_available")
LIVE_INDEX = "ix_team_position_live"
# The nearest shelters with space, in the recommendation's composite (app/dispatch/nearby.py).
SHELTER_INDEX = "idx_shelter_location"


@dataclass
class Stage:
    label: str
    http: Summary
    raw: Summary
    plan: list[str]
    generic_plan: list[str]
    # The generic plan (what the hot read pool runs) of the shelters/depots/helipad composite.
    nearby_generic_plan: list[str]
    teams_found: int

    @staticmethod
    def _ms(plan: list[str]) -> float | None:
        for line in plan:
            if line.startswith("Execution Time:"):
                return float(line.split(":")[1].split()[0])
        return None

    @property
    def knn_ms(self) -> float | None:
        return self._ms(self.plan)

    @property
    def knn_generic_ms(self) -> float | None:
        return self._ms(self.generic_plan)

    def uses_index(self, *names: str) -> bool:
        """Both plans of the team KNN walk one of these indexes: the generic one the service runs on its hot
        read pool, and the custom one a plain session would make."""
        return all(
            any(f"Index Scan using {name} on team" in line for line in plan for name in names)
            for plan in (self.plan, self.generic_plan)
        )

    @property
    def nearby_uses_shelter_index(self) -> bool:
        return any(f"Index Scan using {SHELTER_INDEX} on shelter" in line for line in self.nearby_generic_plan)


async def _stage(
    bench: Bench, label: str, url: str, client: Http1Client, conn: asyncpg.Connection, incident_id: int
) -> Stage:
    path = f"/api/v1/incidents/{incident_id}/recommendation"
    request = client.get(path)
    # Captured anew at each stage: the statements' parameters (excluded ids, depot ids) follow the data.
    statements = await capture_recommendation_sql(url, incident_id)
    knn: Statement = next(s for s in statements if s.is_team_knn)
    nearby: Statement = next(s for s in statements if "FROM shelter AS s" in s.sql)
    for _ in range(WARMUP):
        await timed_get(client, request, path)
        await replay(conn, statements)
    http: list[float] = []
    raw: list[float] = []
    body: bytes | None = None
    deadline = time.monotonic() + bench.sizes.scale_stage_max_s
    for _ in range(bench.sizes.scale_samples):
        if time.monotonic() > deadline:
            break
        body, seconds = await timed_get(client, request, path)
        http.append(seconds)
        raw.append(await replay(conn, statements))
    teams_found = len(orjson.loads(body)["teams"]) if body is not None else 0
    return Stage(
        label,
        Summary.of(http),
        Summary.of(raw),
        await explain(conn, knn),
        await explain_generic(conn, knn),
        await explain_generic(conn, nearby),
        teams_found,
    )


PLAN_WORDS = ("Scan", "idx_", "Rows Removed", "Sort  ", "Limit", "Execution Time")


def _print_plan(bench: Bench, stage: Stage) -> None:
    """The plans' scans (which index, how many rows each had to skip) and time; the JSON has all of them."""
    r = bench.report
    for kind, plan in (("custom plan", stage.plan), ("generic plan", stage.generic_plan)):
        r.note(f"EXPLAIN (ANALYZE, BUFFERS) of the team KNN query, {stage.label}, {kind}:")
        for line in plan:
            if any(word in line for word in PLAN_WORDS):
                r.note("    " + line.rstrip()[:200])


async def run(bench: Bench) -> None:
    r = bench.report
    small, large = bench.sizes.scale_teams
    r.heading(f"3. scale — the recommendation with {small:,} and {large:,} teams and shelters, then a surge")
    name, url = await bench.databases.clone(SECTION)
    stages: list[Stage] = []
    try:
        conn = await replay_connection(url)  # read-only, as the service's hot read pool
        setup = await asyncpg.connect(url)  # the section's own writes: seeding, the surge, the live positions
        try:
            async with running_server(url) as server, http_client(server, connections=1) as client:
                incident = await create_incident(client, FIRE_POINT, title="bench scale", people_affected=200)
                lean = Http1Client(server.url, auth_headers())  # the measured requests (bench/http1.py)
                for total in (small, large):
                    added = await top_up(setup, "team", total)
                    await top_up(setup, "shelter", total)
                    r.note(f"{total:,} teams and shelters ({added:,} synthetic teams added, random in the bbox)")
                    stages.append(await _stage(bench, f"{total:,} teams", url, lean, conn, incident["id"]))
                # The surge: the 1,000 teams nearest the fire are all busy; the index must walk past them.
                await setup.execute(
                    """UPDATE team SET status = 'on_scene' WHERE id IN (
                         SELECT id FROM team WHERE status = 'available'
                         ORDER BY base <-> ST_SetSRID(ST_MakePoint($1::float8, $2::float8), 4326)::geography
                         LIMIT $3)""",
                    *FIRE_POINT,
                    SURGE_BUSY,
                )
                await setup.execute("ANALYZE team")
                r.note(f"surge: the {SURGE_BUSY:,} teams nearest the fire set on_scene")
                stages.append(await _stage(bench, f"{large:,} teams, surge", url, lean, conn, incident["id"]))
                # Beyond the brief: every team reporting a fresh live position (responders' phones all on).
                # The base-position branch of the KNN must then skip every team, which the plan shows.
                await setup.execute(
                    """UPDATE team SET position = ST_Project(base, 150, radians(45)), position_at = now()"""
                )
                await setup.execute("ANALYZE team")
                r.note("all live: every team given a fresh live position 150 m from its base")
                stages.append(await _stage(bench, f"{large:,} teams, all live", url, lean, conn, incident["id"]))
                lean.close()
        finally:
            await setup.close()
            await conn.close()
    finally:
        await bench.databases.drop(name)

    base, big, surge, live = stages
    for stage in stages:
        key = stage.label.replace(",", "").replace(" ", "_")
        r.info(SECTION, f"http_p50_ms_{key}", f"HTTP p50, {stage.label}", stage.http.p50 * 1000, "ms")
        r.note(
            f"HTTP p99 {stage.http.p99 * 1000:.2f} ms · raw SQL p50 {stage.raw.p50 * 1000:.2f} ms"
            f" · KNN query {stage.knn_ms} ms (custom plan), {stage.knn_generic_ms} ms (generic)"
            f" · {stage.teams_found} teams proposed"
        )
        r.detail(
            SECTION,
            **{
                key: {
                    "http_ms": stage.http.ms(),
                    "raw_ms": stage.raw.ms(),
                    "plan": stage.plan,
                    "generic_plan": stage.generic_plan,
                    "knn_ms": stage.knn_ms,
                    "knn_generic_ms": stage.knn_generic_ms,
                    "nearby_generic_plan": stage.nearby_generic_plan,
                }
            },
        )
    r.check(
        SECTION, "ratio_large_small", f"p50 {big.label} / {base.label}", big.http.p50 / base.http.p50, "×", at_most=2
    )
    r.check(
        SECTION,
        "ratio_surge_small",
        f"p50 {surge.label} / {base.label}",
        surge.http.p50 / base.http.p50,
        "×",
        at_most=2,
    )
    r.info(SECTION, "ratio_live_small", f"p50 {live.label} / {base.label}", live.http.p50 / base.http.p50, "×")
    r.info(SECTION, "raw_ratio_large_small", "raw SQL p50 ratio, large / small", big.raw.p50 / base.raw.p50, "×")
    r.info(SECTION, "raw_ratio_surge_small", "raw SQL p50 ratio, surge / small", surge.raw.p50 / base.raw.p50, "×")
    r.info(SECTION, "raw_ratio_live_small", "raw SQL p50 ratio, all live / small", live.raw.p50 / base.raw.p50, "×")
    for stage in (big, surge, live):
        _print_plan(bench, stage)
    # (custom plans; the generic ones are printed above)
    used = big.uses_index(*BASE_INDEXES) and surge.uses_index(*BASE_INDEXES) and live.uses_index(LIVE_INDEX)
    r.verdict(
        SECTION,
        "gist_index_used",
        f"team KNN by a GiST index, custom and generic plan ({' or '.join(BASE_INDEXES)}; all live: {LIVE_INDEX})",
        used,
        "yes" if used else "no",
        "used",
    )
    r.note(f"generic plan of the shelters/depots/helipad composite at {big.label}:")
    for line in big.nearby_generic_plan:
        if any(word in line for word in ("Scan", "Execution Time")):
            r.note("    " + line.rstrip()[:200])
    shelters_indexed = big.nearby_uses_shelter_index and not any(
        "Seq Scan on shelter" in line for line in big.nearby_generic_plan
    )
    r.verdict(
        SECTION,
        "shelter_index_used",
        f"nearest shelters by {SHELTER_INDEX} in the composite's generic plan, {big.label}",
        shelters_indexed,
        "yes" if shelters_indexed else "no",
        "used",
    )
    for kind, attribute in (("custom plan", "plan"), ("generic plan", "generic_plan")):
        full = [s.label for s in stages if any("Seq Scan on team" in line for line in getattr(s, attribute))]
        walked = [
            s.label
            for s in stages
            if any("Rows Removed by Filter" in line and _removed(line) >= 10_000 for line in getattr(s, attribute))
        ]
        if full or walked:
            r.note(
                f"{kind}: a branch of the team KNN query reads the whole table (Seq Scan) at: {'; '.join(full) or '—'};"
                f" an index or table scan filters out 10,000+ rows at: {'; '.join(walked) or '—'}"
            )


def _removed(line: str) -> int:
    try:
        return int(line.rsplit(":", 1)[1].strip())
    except (IndexError, ValueError):
        return 0
