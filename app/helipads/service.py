"""Helipads: the aviation base and the temporary landing points."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import AppError
from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, geodesic_distance, in_bbox, knn, point_value
from app.helipads.models import Helipad, HelipadKind, HelipadStatus
from app.helipads.schemas import HelipadCreate, HelipadPatch
from app.upsert import UpsertResult, upsert_by_key
from app.writes import (
    create_resource,
    edit_resource,
    ensure_can_write,
    place_new,
    snapshot_point,
)


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


# For one-round-trip composites (the recommendation, app/dispatch/nearby.py): correlated subqueries over a
# row `here(point geography, ...)`: the nearest usable helipad as a JSON object, and the geodesic metres to
# the nearest usable aviation base. This domain's SQL stays here.
NEAREST_USABLE_JSON = """
    (SELECT row_to_json(h)
     FROM (SELECT h.id, h.code, h.name, h.kind, ST_Distance(h.location, here.point) AS distance_m,
                  ST_X(CAST(h.location AS geometry)) AS lon, ST_Y(CAST(h.location AS geometry)) AS lat
           FROM helipad AS h
           WHERE h.status = 'usable'
           ORDER BY h.location <-> here.point
           LIMIT 1) AS h)
"""
AVIATION_BASE_DISTANCE = """
    (SELECT ST_Distance(h.location, here.point)
     FROM helipad AS h
     WHERE h.status = 'usable' AND h.kind = 'base'
     ORDER BY h.location <-> here.point
     LIMIT 1)
"""


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


# ---------------------------------------------------------------------------------------- writes


class HelipadNotFound(AppError):
    status_code = 404
    code = "helipad_not_found"

    def __init__(self, helipad_id: int) -> None:
        super().__init__(f"no helipad has the id {helipad_id}", details={"helipad_id": helipad_id})


def helipad_snapshot(helipad: Helipad) -> dict[str, Any]:
    return {
        "code": helipad.code,
        "name": helipad.name,
        "name_en": helipad.name_en,
        "kind": HelipadKind(helipad.kind).value,
        "status": HelipadStatus(helipad.status).value,
        "township": helipad.township_code,
        "location": snapshot_point(helipad.location),
    }


def helipad_summary(helipad: Helipad) -> dict[str, Any]:
    return {
        "helipad_id": helipad.id,
        "code": helipad.code,
        "status": HelipadStatus(helipad.status).value,
        "version": helipad.version,
    }


async def create_helipad(*, session: AsyncSession, data: HelipadCreate, principal: Principal) -> Helipad:
    """A new helipad in the township holding its point (scope-checked)."""
    place = await place_new(
        session=session, principal=principal, point=data.location, coord_sys=data.coord_sys, township=data.township
    )
    helipad: Helipad = await create_resource(
        session,
        Helipad,
        subject="helipad",
        values={
            "code": data.code,
            "name": data.name,
            "name_en": data.name_en,
            "kind": data.kind,
            "status": data.status,
            "location": place.wkt,
            "township_code": place.township,
        },
        principal=principal,
        event_data=lambda h: {"helipad_id": h.id, "version": h.version, **helipad_snapshot(h)},
    )
    return helipad


async def _writable_helipad(*, session: AsyncSession, helipad_id: int, principal: Principal) -> Helipad:
    helipad = await session.get(Helipad, helipad_id, populate_existing=True)
    if helipad is None:
        raise HelipadNotFound(helipad_id)
    ensure_can_write(principal, helipad.township_code)
    return helipad


async def update_helipad(
    *, session: AsyncSession, helipad_id: int, patch: HelipadPatch, expected_version: int, principal: Principal
) -> Helipad:
    """Edit a helipad (including usable/unusable) made against `expected_version` (else 409)."""
    updated: Helipad = await edit_resource(
        session,
        Helipad,
        subject="helipad",
        subject_id=helipad_id,
        fields=patch.given(),
        coord_sys=patch.coord_sys,
        expected=expected_version,
        principal=principal,
        load=lambda: _writable_helipad(session=session, helipad_id=helipad_id, principal=principal),
        point_field="location",
        snapshot=helipad_snapshot,
        event_data=helipad_summary,
    )
    return updated
