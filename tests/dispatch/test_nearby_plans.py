"""The recommendation's shelters/depots/helipad composite (app/dispatch/nearby.py) runs on the hot read pool,
which plans every statement generically: its plan must walk the GiST indexes however many shelters there are,
and still give exactly the nearest shelters with space."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import on_driver, sql_limit
from app.dispatch import nearby as nearby_service

FIRE = (117.46, 40.19)
ITEMS = ["201", "202"]

NEAREST_WITH_SPACE_BRUTE_FORCE = text(
    """
    SELECT id FROM shelter
    WHERE status IN ('standby', 'open') AND capacity > occupancy
    ORDER BY ST_Distance(location, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography), id
    LIMIT :k
    """
)


async def test_with_20000_shelters_the_generic_plan_walks_the_index_and_finds_the_nearest(
    session: AsyncSession,
) -> None:
    await session.execute(text("SELECT setseed(0.5)"))
    await session.execute(
        text(
            """
            INSERT INTO shelter (code, name, level, site_type, capacity, occupancy, location, status)
            SELECT 'SYN-S-' || g, 'synthetic shelter ' || g, 'emergency', 'square', 500,
                   CASE WHEN g % 7 = 0 THEN 500 ELSE 0 END,  -- every 7th is full
                   ST_SetSRID(ST_MakePoint(117.2 + random() * 0.55, 39.75 + random() * 0.5), 4326)::geography,
                   CASE WHEN g % 11 = 0 THEN 'closed' ELSE 'standby' END
            FROM generate_series(1, 20000) AS g
            """
        )
    )
    await session.execute(text("ANALYZE shelter"))
    statement = nearby_service.nearby_statement(20, 5)
    async with on_driver(session) as driver:
        await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await driver.execute("PREPARE nearby_plan AS " + statement.sql)
        try:
            # EXPLAIN EXECUTE takes no protocol parameters: the values as literals.
            rows = await driver.fetch(f"EXPLAIN EXECUTE nearby_plan({FIRE[0]}, {FIRE[1]}, '{{201,202}}')")
        finally:
            await driver.execute("DEALLOCATE nearby_plan")
    plan = "\n".join(row[0] for row in rows)
    assert "Seq Scan on shelter" not in plan, plan
    assert "Index Scan using idx_shelter_location on shelter" in plan, plan

    found = await nearby_service.nearby(session=session, lon=FIRE[0], lat=FIRE[1], shelters=20, items=ITEMS, depots=5)
    truth = (await session.execute(NEAREST_WITH_SPACE_BRUTE_FORCE, {"lon": FIRE[0], "lat": FIRE[1], "k": 20})).all()
    assert [s["id"] for s in found.shelters] == [shelter_id for (shelter_id,) in truth]
    assert len(found.depots) == 5 and found.helipad is not None


@pytest.mark.parametrize("limit", [-1, 1001, 2.0, True, "5; DROP TABLE team"])
def test_a_limit_written_into_sql_is_a_small_plain_int(limit: object) -> None:
    with pytest.raises(ValueError, match="literal LIMIT"):
        sql_limit(limit)  # type: ignore[arg-type]
