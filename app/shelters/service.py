"""Emergency shelters: places, occupancy and whether they are open."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, in_bbox
from app.shelters.models import Shelter, ShelterLevel, ShelterStatus
from app.upsert import UpsertResult, upsert_by_key


async def list_shelters(
    *,
    session: AsyncSession,
    query: ListQuery,
    level: ShelterLevel | None = None,
    status: ShelterStatus | None = None,
) -> tuple[list[Shelter], int]:
    stmt = select(Shelter).order_by(Shelter.id)
    if query.township:
        stmt = stmt.where(Shelter.township_code == query.township)
    if query.bbox:
        stmt = stmt.where(in_bbox(Shelter.location, query.bbox))
    if level:
        stmt = stmt.where(Shelter.level == level)
    if status:
        stmt = stmt.where(Shelter.status == status)
    return await fetch_page(session, stmt, limit=query.limit, offset=query.offset)


async def get_shelter(*, session: AsyncSession, shelter_id: int) -> Shelter | None:
    return await session.get(Shelter, shelter_id)


async def upsert_shelters(*, session: AsyncSession, rows: list[dict[str, Any]]) -> UpsertResult:
    """Seed or import by code.

    rows: code, name, level, site_type, capacity, area_m2, address, location, township_code.
    """
    return await upsert_by_key(session, Shelter, rows, key="code", insert_only=(), returning="id")
