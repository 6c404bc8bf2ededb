"""What a recommendation needs besides teams, in one statement: the nearest shelters with free places,
the nearest depots holding the rule's items (with those items' stock), the nearest usable helipad and
the distance to the aviation base.

One round trip instead of four, without reaching into other domains' tables: each part is a subquery
its own service owns (shelters, depots, helipads); this module only puts them side by side over the
point and the items.
"""

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import DriverStatement
from app.depots.service import nearest_holding_json
from app.helipads.service import AVIATION_BASE_DISTANCE, NEAREST_USABLE_JSON
from app.shelters.service import nearest_with_space_json

# Composed from constants and int limits only (no input reaches the text; the point and items are bound).
NEARBY = """
    WITH here AS (
        SELECT CAST(ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326) AS geography)
                   AS point,
               CAST(:items AS varchar[]) AS items
    )
    SELECT {shelters} AS shelters,
           {depots} AS depots,
           {helipad} AS helipad,
           {aviation_base_m} AS aviation_base_m
    FROM here
"""


# One prepared statement per (shelters, depots) limits: the limits are in the text so that the generic plans
# of the hot read pool walk the GiST indexes (shelters.service.nearest_with_space_json). The recommendation
# asks for two pairs at most.
@functools.cache
def nearby_statement(shelters: int, depots: int) -> DriverStatement:
    sql = NEARBY.format(
        shelters=nearest_with_space_json(shelters),
        depots=nearest_holding_json(depots),
        helipad=NEAREST_USABLE_JSON,
        aviation_base_m=AVIATION_BASE_DISTANCE,
    )
    return DriverStatement.of(text(sql))


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
    (row,) = await nearby_statement(shelters, depots if items else 0).fetch(session, lon=lon, lat=lat, items=items)
    # The json columns arrive decoded (SQLAlchemy's asyncpg dialect registers a codec for json on connect).
    found_shelters, found_depots, helipad, aviation_base_m = row
    return Nearby(shelters=found_shelters, depots=found_depots, helipad=helipad, aviation_base_m=aviation_base_m)
