"""Townships: the jurisdiction polygons every point is assigned by."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import AppError
from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, in_bbox, point_value
from app.townships.models import Township
from app.upsert import UpsertResult, upsert_by_key


class UnknownTownship(AppError):
    status_code = 422
    code = "unknown_township"

    def __init__(self, township_code: str) -> None:
        super().__init__(f"no township has the code {township_code}", details={"township": township_code})


async def list_townships(*, session: AsyncSession, query: ListQuery) -> tuple[list[Township], int]:
    stmt = select(Township).order_by(Township.code)
    if query.township:
        stmt = stmt.where(Township.code == query.township)
    if query.bbox:
        stmt = stmt.where(in_bbox(Township.boundary, query.bbox))
    return await fetch_page(session, stmt, limit=query.limit, offset=query.offset)


async def get_township(*, session: AsyncSession, code: str) -> Township | None:
    return await session.get(Township, code)


async def ensure_township(*, session: AsyncSession, code: str) -> str:
    if await session.scalar(select(Township.code).where(Township.code == code)) is None:
        raise UnknownTownship(code)
    return code


async def township_for_point(*, session: AsyncSession, lon: float, lat: float) -> str | None:
    """The township whose polygon holds the point (None outside the district).

    A point on a shared border belongs to the township with the lower code, so the answer is stable.
    """
    return await session.scalar(
        select(Township.code)
        .where(func.ST_Covers(Township.boundary, point_value(lon, lat)))
        .order_by(Township.code)
        .limit(1)
    )


async def all_township_codes(*, session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(Township.code))).all())


async def upsert_townships(*, session: AsyncSession, rows: list[dict[str, Any]]) -> UpsertResult:
    """rows: code, name, kind, seat (EWKT), boundary (EWKT)."""
    return await upsert_by_key(session, Township, rows, key="code")


async def distance_to_district(*, session: AsyncSession, lon: float, lat: float) -> float:
    """Geodesic metres from the point to the nearest township polygon (0 inside)."""
    distance = await session.scalar(select(func.min(func.ST_Distance(Township.boundary, point_value(lon, lat)))))
    return float(distance or 0.0)
