"""Emergency shelters: places, occupancy and whether they are open."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, geodesic_distance, in_bbox, knn, point_value
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


async def nearest_with_space(*, session: AsyncSession, lon: float, lat: float, k: int) -> list[tuple[Shelter, float]]:
    """Open or standby shelters with free places, nearest first (index-ordered, exact distance)."""
    point = point_value(lon, lat)
    rows = await session.execute(
        select(Shelter, geodesic_distance(Shelter.location, point))
        .where(Shelter.status.in_([ShelterStatus.STANDBY, ShelterStatus.OPEN]), Shelter.capacity > Shelter.occupancy)
        .order_by(knn(Shelter.location, point))
        .limit(k)
    )
    return sorted(((s, float(d)) for s, d in rows), key=lambda pair: pair[1])


async def nearest_shelters(*, session: AsyncSession, lon: float, lat: float, k: int) -> list[tuple[Shelter, float]]:
    point = point_value(lon, lat)
    rows = await session.execute(
        select(Shelter, geodesic_distance(Shelter.location, point)).order_by(knn(Shelter.location, point)).limit(k)
    )
    return sorted(((s, float(d)) for s, d in rows), key=lambda pair: pair[1])
