"""Helipads: the aviation base and the temporary landing points."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, geodesic_distance, in_bbox, knn, point_value
from app.helipads.models import Helipad, HelipadKind, HelipadStatus
from app.upsert import UpsertResult, upsert_by_key


async def list_helipads(
    *, session: AsyncSession, query: ListQuery, kind: HelipadKind | None = None
) -> tuple[list[Helipad], int]:
    stmt = select(Helipad).order_by(Helipad.id)
    if query.township:
        stmt = stmt.where(Helipad.township_code == query.township)
    if query.bbox:
        stmt = stmt.where(in_bbox(Helipad.location, query.bbox))
    if kind:
        stmt = stmt.where(Helipad.kind == kind)
    return await fetch_page(session, stmt, limit=query.limit, offset=query.offset)


async def get_helipad(*, session: AsyncSession, helipad_id: int) -> Helipad | None:
    return await session.get(Helipad, helipad_id)


async def upsert_helipads(*, session: AsyncSession, rows: list[dict[str, Any]]) -> UpsertResult:
    """Seed or import by code.

    rows: code, name, name_en, kind, location, township_code;
    status is set on insert only.
    """
    return await upsert_by_key(session, Helipad, rows, key="code", insert_only=("status",), returning="id")


async def nearest_helipads(
    *, session: AsyncSession, lon: float, lat: float, k: int, usable_only: bool = True, kind: HelipadKind | None = None
) -> list[tuple[Helipad, float]]:
    point = point_value(lon, lat)
    stmt = select(Helipad, geodesic_distance(Helipad.location, point)).order_by(knn(Helipad.location, point)).limit(k)
    if usable_only:
        stmt = stmt.where(Helipad.status == HelipadStatus.USABLE)
    if kind is not None:
        stmt = stmt.where(Helipad.kind == kind)
    rows = await session.execute(stmt)
    return sorted(((h, float(d)) for h, d in rows), key=lambda pair: pair[1])
