"""What a recommendation needs besides teams, in one statement: the nearest shelters with free places,
the nearest depots holding the rule's items (with those items' stock), the nearest usable helipad and
the distance to the aviation base.

Read-only; the shelters, depots and helipads services own these tables and their writes. Each part is
shortlisted by its GiST index (`<->`) and measured exactly (geodesic metres), as their services do.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

NEARBY = text(
    """
    WITH here AS (
        SELECT CAST(ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326) AS geography)
                   AS point,
               CAST(:items AS varchar[]) AS items
    )
    SELECT
        (SELECT coalesce(json_agg(s ORDER BY s.distance_m, s.id), '[]')
         FROM (SELECT s.id, s.code, s.name, s.level, s.township_code AS township, s.capacity, s.occupancy,
                      ST_Distance(s.location, here.point) AS distance_m,
                      ST_X(CAST(s.location AS geometry)) AS lon, ST_Y(CAST(s.location AS geometry)) AS lat
               FROM shelter AS s
               WHERE s.status IN ('standby', 'open') AND s.capacity > s.occupancy
               ORDER BY s.location <-> here.point
               LIMIT :shelters) AS s) AS shelters,
        (SELECT coalesce(json_agg(d ORDER BY d.distance_m, d.id), '[]')
         FROM (SELECT d.id, d.code, d.name, d.level, d.township_code AS township,
                      ST_Distance(d.location, here.point) AS distance_m,
                      ST_X(CAST(d.location AS geometry)) AS lon, ST_Y(CAST(d.location AS geometry)) AS lat,
                      (SELECT json_agg(json_build_object('item', st.item_code, 'name', i.name, 'unit', i.unit,
                                                         'quantity', st.quantity) ORDER BY st.item_code)
                       FROM depot_stock AS st JOIN item AS i ON i.code = st.item_code
                       WHERE st.depot_id = d.id AND st.item_code = ANY(here.items) AND st.quantity > 0) AS stock
               FROM depot AS d
               WHERE d.id IN (SELECT depot_id FROM depot_stock WHERE item_code = ANY(here.items) AND quantity > 0)
               ORDER BY d.location <-> here.point
               LIMIT :depots) AS d) AS depots,
        (SELECT row_to_json(h)
         FROM (SELECT h.id, h.code, h.name, h.kind, ST_Distance(h.location, here.point) AS distance_m,
                      ST_X(CAST(h.location AS geometry)) AS lon, ST_Y(CAST(h.location AS geometry)) AS lat
               FROM helipad AS h
               WHERE h.status = 'usable'
               ORDER BY h.location <-> here.point
               LIMIT 1) AS h) AS helipad,
        (SELECT ST_Distance(h.location, here.point)
         FROM helipad AS h
         WHERE h.status = 'usable' AND h.kind = 'base'
         ORDER BY h.location <-> here.point
         LIMIT 1) AS aviation_base_m
    FROM here
    """
)


@dataclass(frozen=True, slots=True)
class Nearby:
    # Plain dicts as the statement gives them (distance_m, lon, lat and each table's columns), nearest first.
    shelters: list[dict[str, Any]]
    depots: list[dict[str, Any]]
    helipad: dict[str, Any] | None
    aviation_base_m: float | None


async def nearby(
    *, session: AsyncSession, lon: float, lat: float, shelters: int, items: list[str], depots: int
) -> Nearby:
    """Up to `shelters` shelters with space and `depots` depots holding any of `items` (none without
    items), the nearest usable helipad and the distance to the nearest usable aviation base."""
    row = (
        await session.execute(
            NEARBY, {"lon": lon, "lat": lat, "shelters": shelters, "items": items, "depots": depots if items else 0}
        )
    ).one()
    # The json columns arrive decoded (SQLAlchemy's asyncpg dialect registers a codec for json).
    found_shelters, found_depots, helipad, aviation_base_m = row
    return Nearby(shelters=found_shelters, depots=found_depots, helipad=helipad, aviation_base_m=aviation_base_m)
