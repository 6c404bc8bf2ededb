"""Helipads: the aviation base and the temporary landing points."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, in_bbox
from app.helipads.models import Helipad, HelipadKind
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
