"""Spatial query pieces shared by the domains' repositories."""

from typing import Any, TypeVar

from geoalchemy2 import Geography, Geometry
from sqlalchemy import ColumnElement, Select, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.geojson import BBox

M = TypeVar("M")


def point_value(lon: float, lat: float) -> ColumnElement[Any]:
    """A WGS-84 geography point as a bound expression."""
    return cast(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326), Geography(srid=4326))


def in_bbox(column: Any, bbox: BBox) -> ColumnElement[bool]:
    # `&&` on geography lets the GiST index pick candidates; the planar test then keeps the
    # lon/lat rectangle semantics that OGC bbox filters promise.
    envelope = func.ST_MakeEnvelope(*bbox, 4326)
    return and_(
        column.op("&&")(cast(envelope, Geography(srid=4326))),
        func.ST_Intersects(cast(column, Geometry(srid=4326)), envelope),
    )


async def fetch_page(session: AsyncSession, stmt: Select[M], *, limit: int, offset: int) -> tuple[list[M], int]:
    """One page of entities and how many match in all."""
    matched = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.scalars(stmt.limit(limit).offset(offset))).all()
    return list(rows), int(matched or 0)


def knn(column: Any, point: ColumnElement[Any]) -> ColumnElement[Any]:
    """Index-ordered nearest-first (`<->`, answered by the GiST index); rank exactly with ST_Distance."""
    return column.op("<->")(point)  # type: ignore[no-any-return]


def geodesic_distance(column: Any, point: ColumnElement[Any]) -> ColumnElement[float]:
    """Metres on the WGS-84 spheroid (geography's default)."""
    return func.ST_Distance(column, point)
