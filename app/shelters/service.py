"""Emergency shelters: places, occupancy and whether they are open."""

from typing import Any

from sqlalchemy import and_, case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db import sql_limit
from app.errors import AppError
from app.events import service as event_service
from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, geodesic_distance, in_bbox, knn, point_value
from app.shelters.models import Shelter, ShelterLevel, ShelterStatus
from app.shelters.schemas import ShelterCreate, ShelterPatch
from app.upsert import UpsertResult, upsert_by_key
from app.writes import (
    PlannedEdit,
    create_resource,
    edit_resource,
    ensure_can_write,
    place_new,
    snapshot_point,
)


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


def nearest_with_space_json(limit: int) -> str:
    """For one-round-trip composites (the recommendation, app/dispatch/nearby.py): a correlated subquery over
    a row `here(point geography, ...)`, giving the `limit` nearest shelters with free places as a JSON array
    nearest first (the GiST index shortlists, the geodesic distance orders). This domain's SQL stays here.

    The limit is written into the text, not bound: a generic plan (the hot read pool plans nothing else) of
    `LIMIT $n` expects a tenth of the table and scans all of it, 67 ms at 100,000 shelters instead of 0.2
    (bench section 3)."""
    return _NEAREST_WITH_SPACE_JSON.format(limit=sql_limit(limit))


_NEAREST_WITH_SPACE_JSON = """
    (SELECT coalesce(json_agg(s ORDER BY s.distance_m, s.id), '[]')
     FROM (SELECT s.id, s.code, s.name, s.level, s.township_code AS township, s.capacity, s.occupancy,
                  ST_Distance(s.location, here.point) AS distance_m,
                  ST_X(CAST(s.location AS geometry)) AS lon, ST_Y(CAST(s.location AS geometry)) AS lat
           FROM shelter AS s
           WHERE s.status IN ('standby', 'open') AND s.capacity > s.occupancy
           ORDER BY s.location <-> here.point
           LIMIT {limit}) AS s)
"""


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


# ---------------------------------------------------------------------------------------- writes


class ShelterNotFound(AppError):
    status_code = 404
    code = "shelter_not_found"

    def __init__(self, shelter_id: int) -> None:
        super().__init__(f"no shelter has the id {shelter_id}", details={"shelter_id": shelter_id})


class ShelterFull(AppError):
    status_code = 409
    code = "shelter_full"


class ShelterClosed(AppError):
    status_code = 409
    code = "shelter_closed"


class OccupancyBelowZero(AppError):
    status_code = 409
    code = "occupancy_below_zero"


class OccupancyAboveCapacity(AppError):
    status_code = 422
    code = "occupancy_above_capacity"


class StatusConflict(AppError):
    status_code = 422
    code = "shelter_status_conflict"


def _free(shelter: Shelter) -> dict[str, Any]:
    return {
        "shelter_id": shelter.id,
        "status": ShelterStatus(shelter.status).value,
        "capacity": shelter.capacity,
        "occupancy": shelter.occupancy,
        "free_places": max(0, shelter.capacity - shelter.occupancy),
    }


def _status_after(new_occupancy: Any, new_capacity: Any) -> Any:
    """The status a shelter takes when its occupancy or capacity changes (and nobody sets one).

    In an UPDATE's SET the bare columns are the values before the change:
    - closed stays closed, and a standby shelter stays on standby unless people arrive;
    - no free places left: full;
    - full, but declared so by an operator while places were still free: stays full until someone
      reopens it (check-outs must not reopen a shelter closed for reasons the count does not see);
    - otherwise open (arrivals open a standby shelter; a full one reopens when places free up).
    """
    status = Shelter.__table__.c.status

    def value(s: ShelterStatus) -> Any:
        return literal(s, type_=status.type)

    return case(
        (Shelter.status == ShelterStatus.CLOSED, Shelter.status),
        (and_(Shelter.status == ShelterStatus.STANDBY, new_occupancy <= Shelter.occupancy), Shelter.status),
        (new_occupancy >= new_capacity, value(ShelterStatus.FULL)),
        (and_(Shelter.status == ShelterStatus.FULL, Shelter.occupancy < Shelter.capacity), Shelter.status),
        else_=value(ShelterStatus.OPEN),
    )


def shelter_snapshot(shelter: Shelter) -> dict[str, Any]:
    return {
        "code": shelter.code,
        "name": shelter.name,
        "level": ShelterLevel(shelter.level).value,
        "site_type": shelter.site_type,
        "capacity": shelter.capacity,
        "occupancy": shelter.occupancy,
        "area_m2": shelter.area_m2,
        "status": ShelterStatus(shelter.status).value,
        "address": shelter.address,
        "township": shelter.township_code,
        "location": snapshot_point(shelter.location),
    }


async def create_shelter(*, session: AsyncSession, data: ShelterCreate, principal: Principal) -> Shelter:
    """A new shelter, on standby and empty, in the township holding its point (scope-checked)."""
    place = await place_new(
        session=session, principal=principal, point=data.location, coord_sys=data.coord_sys, township=data.township
    )
    shelter: Shelter = await create_resource(
        session,
        Shelter,
        subject="shelter",
        values={
            "code": data.code,
            "name": data.name,
            "level": data.level,
            "site_type": data.site_type,
            "capacity": data.capacity,
            "occupancy": 0,
            "area_m2": data.area_m2,
            "status": ShelterStatus.STANDBY,
            "address": data.address,
            "location": place.wkt,
            "township_code": place.township,
        },
        principal=principal,
        event_data=lambda sh: {"shelter_id": sh.id, "version": sh.version, **shelter_snapshot(sh)},
    )
    return shelter


async def _writable_shelter(
    *, session: AsyncSession, shelter_id: int, principal: Principal, lock: bool = False
) -> Shelter:
    shelter = await session.get(Shelter, shelter_id, populate_existing=True, with_for_update=lock or None)
    if shelter is None:
        raise ShelterNotFound(shelter_id)
    ensure_can_write(principal, shelter.township_code)
    return shelter


async def update_shelter(
    *, session: AsyncSession, shelter_id: int, patch: ShelterPatch, expected_version: int, principal: Principal
) -> Shelter:
    """Edit a shelter made against `expected_version` (else 409), including status and occupancy.

    Occupancy never exceeds capacity (422). Without an explicit status, a change of occupancy or
    capacity moves the status by the rule of `_status_after`; an explicit `open` needs free places.
    """

    def occupancy_rules(edit: PlannedEdit) -> None:
        occupancy, capacity = edit.wanted["occupancy"], edit.wanted["capacity"]
        if occupancy > capacity:
            raise OccupancyAboveCapacity(
                f"occupancy {occupancy} would exceed the capacity {capacity}",
                details={"occupancy": occupancy, "capacity": capacity},
            )
        status = edit.values.get("status")
        if status is ShelterStatus.OPEN and occupancy >= capacity:
            raise StatusConflict(
                "a shelter without free places cannot be open (it is full)",
                details={"occupancy": occupancy, "capacity": capacity},
            )
        if status is None and (occupancy != edit.before["occupancy"] or capacity != edit.before["capacity"]):
            edit.values["status"] = _status_after(literal(occupancy), literal(capacity))

    updated: Shelter = await edit_resource(
        session,
        Shelter,
        subject="shelter",
        subject_id=shelter_id,
        fields=patch.given(),
        coord_sys=patch.coord_sys,
        expected=expected_version,
        principal=principal,
        load=lambda: _writable_shelter(session=session, shelter_id=shelter_id, principal=principal),
        point_field="location",
        snapshot=shelter_snapshot,
        event_data=lambda sh: {**_free(sh), "code": sh.code, "version": sh.version},
        rules=occupancy_rules,
    )
    return updated


async def change_occupancy(
    *,
    session: AsyncSession,
    shelter_id: int,
    principal: Principal,
    delta: int | None = None,
    occupancy: int | None = None,
) -> Shelter:
    """Check people in (delta > 0) or out (delta < 0), or set a head count (`occupancy`).

    One conditional UPDATE decides, on the row as it is when written: check-ins only into a standby
    or open shelter and only up to its capacity (409 `shelter_full` with the free places otherwise),
    so concurrent check-ins can never overfill it; check-outs never below zero. A head count is a
    correction and may be given in any status, up to the capacity (422 above it). Each change bumps
    the version (a PATCH of the occupancy made before it must not overwrite it) and moves the status
    as `_status_after` says.
    """
    shelter = await _writable_shelter(session=session, shelter_id=shelter_id, principal=principal, lock=True)
    before = _free(shelter)
    conditions: list[Any]
    if delta is not None:
        new_occupancy: Any = Shelter.occupancy + delta
        conditions = (
            [Shelter.status.in_([ShelterStatus.STANDBY, ShelterStatus.OPEN]), new_occupancy <= Shelter.capacity]
            if delta > 0
            else [new_occupancy >= 0]
        )
    else:
        assert occupancy is not None
        new_occupancy = literal(occupancy)
        conditions = [new_occupancy <= Shelter.capacity, Shelter.occupancy != occupancy]
    updated: Shelter | None = await session.scalar(
        update(Shelter)
        .where(Shelter.id == shelter_id, *conditions)
        .values(
            occupancy=new_occupancy,
            status=_status_after(new_occupancy, Shelter.capacity),
            version=Shelter.version + 1,
            updated_at=func.now(),
        )
        .returning(Shelter)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if updated is None:
        return _refusal(shelter, delta=delta, occupancy=occupancy)
    after = _free(updated)
    await event_service.record(
        session=session,
        topic="shelter.occupancy_changed",
        subject_type="shelter",
        subject_id=updated.id,
        actor=principal.actor,
        township=updated.township_code,
        data={
            **after,
            "code": updated.code,
            "delta": after["occupancy"] - before["occupancy"],
            "status_from": before["status"],
            "version": updated.version,
        },
    )
    return updated


def _refusal(shelter: Shelter, *, delta: int | None, occupancy: int | None) -> Shelter:
    """Why the conditional UPDATE wrote nothing (the row is locked, so `shelter` is its state)."""
    state = _free(shelter)
    if occupancy is not None:
        if occupancy == shelter.occupancy:
            return shelter  # the count is what it was: nothing to write
        raise OccupancyAboveCapacity(
            f"shelter {shelter.id} holds at most {shelter.capacity} people", details={**state, "requested": occupancy}
        )
    assert delta is not None
    if delta < 0:
        raise OccupancyBelowZero(
            f"shelter {shelter.id} holds {shelter.occupancy} people; {-delta} cannot leave",
            details={**state, "requested": delta},
        )
    if shelter.status is ShelterStatus.CLOSED:
        raise ShelterClosed(f"shelter {shelter.id} is closed", details={**state, "requested": delta})
    raise ShelterFull(
        f"shelter {shelter.id} has {state['free_places']} free places; {delta} were asked for"
        if shelter.status is not ShelterStatus.FULL or state["free_places"] == 0
        else f"shelter {shelter.id} has been declared full",
        details={**state, "requested": delta},
    )
