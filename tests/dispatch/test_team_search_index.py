"""The nearest-team search by believed position (fresh live fix, else base) stays exact and index-driven
whether no team, some or all are live: the position_live flag (trigger + sweep) only steers the indexes."""

import re
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from structlog.testing import capture_logs

from app.db import create_sessionmaker
from app.teams import service as team_service
from app.teams.models import TeamStatus
from app.teams.sweep import warn_if_autovacuum_is_off

FRESH_S = 1800
FIRE = (117.46, 40.19)

# Where a team is believed to be, computed the slow way (every row), as the reference.
BRUTE_FORCE = text(
    """
    SELECT id, ST_Distance(CASE WHEN position IS NOT NULL AND position_at > now() - interval '1800 seconds'
                                THEN position ELSE base END,
                           ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS d
    FROM team
    WHERE status = 'available' AND capabilities && ARRAY['forest_fire']::varchar(32)[]
    ORDER BY d, id
    LIMIT :k
    """
)


async def _flags(session: AsyncSession, *ids: int) -> dict[int, bool]:
    rows = await session.execute(text("SELECT id, position_live FROM team WHERE id = ANY(:ids)"), {"ids": list(ids)})
    return {row.id: row.position_live for row in rows}


async def _two_teams(session: AsyncSession) -> tuple[int, int]:
    ids = (await session.execute(text("SELECT id FROM team ORDER BY id LIMIT 2"))).scalars().all()
    return ids[0], ids[1]


async def test_a_written_fix_marks_the_team_live_and_the_sweep_clears_it_once_stale(session: AsyncSession) -> None:
    fresh, stale = await _two_teams(session)
    await session.execute(
        text(
            "UPDATE team SET position = ST_Project(base, 200, radians(90)), "
            "position_at = CASE WHEN id = :fresh THEN now() ELSE now() - interval '3 hours' END "
            "WHERE id IN (:fresh, :stale)"
        ),
        {"fresh": fresh, "stale": stale},
    )
    # The trigger marks every written fix, stale or not: the clock is the sweep's business.
    assert await _flags(session, fresh, stale) == {fresh: True, stale: True}
    before = (await session.execute(text("SELECT position, position_at FROM team WHERE id = :id"), {"id": stale})).one()

    assert await team_service.sweep_stale_positions(session=session, fresh_s=FRESH_S) >= 1
    assert await _flags(session, fresh, stale) == {fresh: True, stale: False}
    # The fix itself stays on the team (and in its track); only the index hint changed.
    after = (await session.execute(text("SELECT position, position_at FROM team WHERE id = :id"), {"id": stale})).one()
    assert after == before
    assert await team_service.sweep_stale_positions(session=session, fresh_s=FRESH_S) == 0  # idempotent

    # A new fix makes it live again; a flag wrong the other way (set by hand) is put right by the sweep.
    await session.execute(text("UPDATE team SET position_at = now() WHERE id = :id"), {"id": stale})
    await session.execute(text("UPDATE team SET position_live = false WHERE id = :id"), {"id": fresh})
    assert await _flags(session, fresh, stale) == {fresh: False, stale: True}
    assert await team_service.sweep_stale_positions(session=session, fresh_s=FRESH_S) == 1
    assert await _flags(session, fresh, stale) == {fresh: True, stale: True}


@pytest.mark.parametrize("swept", [False, True])
async def test_a_team_whose_fix_is_stale_is_ranked_by_its_base(session: AsyncSession, swept: bool) -> None:
    team_id = (await session.execute(text("SELECT id FROM team WHERE kind = 'forest_fire'"))).scalar_one()
    # Its stale fix is right at the fire: were it used, the team would be nearest at ~0 m.
    await session.execute(
        text(
            "UPDATE team SET position = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, "
            "position_at = now() - interval '3 hours' WHERE id = :id"
        ),
        {"lon": FIRE[0], "lat": FIRE[1], "id": team_id},
    )
    if swept:
        await team_service.sweep_stale_positions(session=session, fresh_s=FRESH_S)
    assert await _flags(session, team_id) == {team_id: not swept}
    base_m = (
        await session.execute(
            text(
                "SELECT ST_Distance(base, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) "
                "FROM team WHERE id = :id"
            ),
            {"lon": FIRE[0], "lat": FIRE[1], "id": team_id},
        )
    ).scalar_one()
    found = await team_service.nearest_teams(
        session=session, lon=FIRE[0], lat=FIRE[1], capabilities=["forest_fire"], k=50, fresh_s=FRESH_S
    )
    mine = next(c for c in found if c.id == team_id)
    assert mine.position_source == "base"
    assert mine.distance_m == pytest.approx(base_m, abs=0.01)
    assert mine.position_age_s == pytest.approx(3 * 3600, abs=60)


async def _synthetic_teams(session: AsyncSession, count: int) -> None:
    """`count` forest-fire teams at random points of the district (seeded), every one on a fresh live fix
    150 m from its base, except every 10th: a stale fix, swept for half of them."""
    await session.execute(text("SELECT setseed(0.7)"))
    await session.execute(
        text(
            """
            INSERT INTO team (code, name, kind, capabilities, headcount, township_code, base)
            SELECT 'SYN-' || g, 'synthetic ' || g, 'forest_fire', ARRAY['forest_fire'], 10, NULL,
                   ST_SetSRID(ST_MakePoint(117.2 + random() * 0.55, 39.75 + random() * 0.5), 4326)::geography
            FROM generate_series(1, :count) AS g
            """
        ),
        {"count": count},
    )
    await session.execute(
        text(
            """
            UPDATE team SET position = ST_Project(base, 150, radians(45)),
                            position_at = CASE WHEN id % 10 = 0 THEN now() - interval '2 hours' ELSE now() END
            """
        )
    )
    await session.execute(text("UPDATE team SET position_live = false WHERE id % 20 = 0"))  # swept stale ones
    await session.execute(text("ANALYZE team"))


async def test_with_thousands_of_live_teams_the_search_is_exact_and_uses_the_indexes(session: AsyncSession) -> None:
    await _synthetic_teams(session, 5000)
    k = 100
    params: dict[str, Any] = {
        "lon": FIRE[0],
        "lat": FIRE[1],
        "fresh_s": FRESH_S,
        "capabilities": ["forest_fire"],
        "k": [k],
    }
    plan = "\n".join(
        (await session.execute(text("EXPLAIN " + team_service.TEAM_SHORTLISTS.text), params)).scalars().all()
    )
    assert "Seq Scan on team" not in plan, plan
    # The live teams are walked by their partial index in distance order; the few others by whichever
    # of their indexes the planner prefers (KNN on ix_team_base_not_live, or the flag's btree).
    assert "Index Scan using ix_team_position_live on team" in plan, plan

    found = await team_service.nearest_teams(
        session=session, lon=FIRE[0], lat=FIRE[1], capabilities=["forest_fire"], k=k, fresh_s=FRESH_S
    )
    truth = (await session.execute(BRUTE_FORCE, {"lon": FIRE[0], "lat": FIRE[1], "k": k})).all()
    assert [c.id for c in found] == [team_id for team_id, _ in truth]
    for candidate, (_, distance) in zip(found, truth, strict=True):
        assert candidate.distance_m == pytest.approx(distance, abs=0.01)
    assert {c.position_source for c in found} == {"live", "base"}  # both kinds among the nearest


async def test_in_a_surge_the_busy_teams_near_the_fire_are_never_walked(session: AsyncSession) -> None:
    """Thousands of teams at their bases, the 1,000 nearest the fire busy: the search still reads only the
    available ones (their own partial index), and finds exactly the nearest of them."""
    await session.execute(text("SELECT setseed(0.3)"))
    await session.execute(
        text(
            """
            INSERT INTO team (code, name, kind, capabilities, headcount, township_code, base)
            SELECT 'SRG-' || g, 'surge ' || g, 'forest_fire', ARRAY['forest_fire'], 10, NULL,
                   ST_SetSRID(ST_MakePoint(117.2 + random() * 0.55, 39.75 + random() * 0.5), 4326)::geography
            FROM generate_series(1, 5000) AS g
            """
        )
    )
    await session.execute(
        text(
            """
            UPDATE team SET status = 'on_scene' WHERE id IN (
                SELECT id FROM team ORDER BY base <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography
                LIMIT 1000)
            """
        ),
        {"lon": FIRE[0], "lat": FIRE[1]},
    )
    await session.execute(text("ANALYZE team"))
    params = {"lon": FIRE[0], "lat": FIRE[1], "fresh_s": FRESH_S, "capabilities": ["forest_fire"], "k": [20]}
    plan = "\n".join(
        (await session.execute(text("EXPLAIN ANALYZE " + team_service.TEAM_SHORTLISTS.text), params)).scalars().all()
    )
    assert "Index Scan using ix_team_base_available on team" in plan, plan
    # What the walk threw away: other capabilities only, never the 1,000 busy teams in front of it.
    walk = plan.split("Index Scan using ix_team_base_available on team")[1].split("->")[0]
    removed = re.search(r"Rows Removed by Filter: (\d+)", walk)
    assert removed is None or int(removed.group(1)) < 100, plan

    found = await team_service.nearest_teams(
        session=session, lon=FIRE[0], lat=FIRE[1], capabilities=["forest_fire"], k=40, fresh_s=FRESH_S
    )
    truth = (await session.execute(BRUTE_FORCE, {"lon": FIRE[0], "lat": FIRE[1], "k": 40})).all()
    # The shortlist is cut by the index's sphere distance and ranked by the spheroid's: only its last few
    # places may differ where two teams are a few metres apart (a recommendation shortlists 4x its need).
    assert [c.id for c in found][:30] == [team_id for team_id, _ in truth][:30]
    assert {c.status for c in found} == {TeamStatus.AVAILABLE}


async def test_the_sweep_warns_when_the_server_does_not_autovacuum(engine: AsyncEngine) -> None:
    """Position fixes leave dead team rows: a server without autovacuum gets a warning, one with it none."""
    async with engine.connect() as conn:
        expected_on = (await conn.execute(text("SHOW autovacuum"))).scalar_one() == "on"
    with capture_logs() as logs:
        on = await warn_if_autovacuum_is_off(create_sessionmaker(engine))
    assert on is expected_on
    warned = [entry for entry in logs if entry["event"] == "autovacuum_off"]
    assert len(warned) == (0 if expected_on else 1)
    if warned:
        assert warned[0]["log_level"] == "warning" and "VACUUM ANALYZE team" in warned[0]["fix"]
