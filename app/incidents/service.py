"""Incidents: reporting, editing with optimistic versions, and the lifecycle.

reported → verified → dispatched → in_progress → controlled → closed, and reported/verified → dismissed.
Every change bumps `version` and writes its event (subject incident) in the same transaction; the
events of an incident are its timeline.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db import DriverStatement
from app.errors import AppError, Conflict, Forbidden, NotFound
from app.events import service as event_service
from app.geo.geojson import BBox, lon_lat
from app.geo.queries import fetch_page, in_bbox
from app.incidents.models import Incident, IncidentCategory, IncidentCodeCounter, IncidentStatus
from app.incidents.schemas import IncidentCreate, IncidentUpdate
from app.incidents.types import FROM_ROMAN, INCIDENT_TYPES, ROMAN, IncidentType
from app.townships import service as township_service

# The human code's date is the local (Beijing) date: what the duty officer's calendar shows.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# How far outside the district a cross-border incident may lie (the partner districts' reach).
CROSS_BORDER_MAX_M = 60_000

TRANSITIONS: dict[IncidentStatus, tuple[IncidentStatus, ...]] = {
    IncidentStatus.REPORTED: (IncidentStatus.VERIFIED, IncidentStatus.DISPATCHED, IncidentStatus.DISMISSED),
    IncidentStatus.VERIFIED: (IncidentStatus.DISPATCHED, IncidentStatus.DISMISSED),
    IncidentStatus.DISPATCHED: (IncidentStatus.IN_PROGRESS, IncidentStatus.CONTROLLED),
    IncidentStatus.IN_PROGRESS: (IncidentStatus.CONTROLLED,),
    # A fire that flares up again goes back to in_progress.
    IncidentStatus.CONTROLLED: (IncidentStatus.IN_PROGRESS, IncidentStatus.CLOSED),
    IncidentStatus.CLOSED: (),
    IncidentStatus.DISMISSED: (),
}
FINAL = (IncidentStatus.CLOSED, IncidentStatus.DISMISSED)


class IncidentNotFound(NotFound):
    code = "incident_not_found"


class VersionConflict(Conflict):
    code = "version_conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class IncidentFinal(Conflict):
    code = "incident_closed"


class OutsideDistrict(AppError):
    status_code = 422
    code = "outside_district"


class OutOfScope(Forbidden):
    code = "out_of_scope"


def incident_event_data(incident: Incident, **extra: Any) -> dict[str, Any]:
    lon, lat = lon_lat(incident.location)
    return {
        "incident_id": incident.id,
        "code": incident.code,
        "type": incident.type,
        "category": incident.category.value,
        "severity": ROMAN.get(incident.severity) if incident.severity else None,
        "status": incident.status.value,
        "title": incident.title,
        "lon": lon,
        "lat": lat,
        "version": incident.version,
        **extra,
    }


async def _record(session: AsyncSession, incident: Incident, topic: str, actor: str, **extra: Any) -> None:
    await event_service.record(
        session=session,
        topic=topic,
        subject_type="incident",
        subject_id=incident.id,
        actor=actor,
        township=incident.township_code,
        exercise=incident.exercise,
        data=incident_event_data(incident, **extra),
    )


async def _next_code(session: AsyncSession, at: datetime) -> str:
    day = at.astimezone(LOCAL_TZ).date()
    stmt = pg_insert(IncidentCodeCounter).values(day=day, last=1)
    number = await session.scalar(
        stmt.on_conflict_do_update(
            index_elements=[IncidentCodeCounter.day], set_={"last": IncidentCodeCounter.last + 1}
        ).returning(IncidentCodeCounter.last)
    )
    return f"JZ-{day:%Y%m%d}-{number:04d}"


async def _place(session: AsyncSession, lon: float, lat: float, cross_border: bool) -> tuple[str | None, bool]:
    """The township holding the point, or (None, True) for an accepted cross-border point."""
    township = await township_service.township_for_point(session=session, lon=lon, lat=lat)
    if township is not None:
        return township, False
    if not cross_border:
        raise OutsideDistrict(
            "the point lies outside Jizhou District; set cross_border to report an incident across the border",
            details={"lon": lon, "lat": lat},
        )
    distance = await township_service.distance_to_district(session=session, lon=lon, lat=lat)
    if distance > CROSS_BORDER_MAX_M:
        raise OutsideDistrict(
            f"the point is {distance / 1000:.0f} km from the district; cross-border incidents must lie within "
            f"{CROSS_BORDER_MAX_M // 1000} km",
            details={"lon": lon, "lat": lat, "distance_m": round(distance)},
        )
    return None, True


def require_scope(principal: Principal, township: str | None, *, what: str) -> None:
    if principal.can_write_township(township):
        return
    raise OutOfScope(
        f"a {principal.role.value} token for township {principal.township} may not {what} "
        + (f"in township {township}" if township else "outside the district"),
        details={"township": township, "your_township": principal.township},
    )


async def report(*, session: AsyncSession, principal: Principal, data: IncidentCreate) -> Incident:
    lon, lat = data.location.wgs84(data.coord_sys)
    township, cross_border = await _place(session, lon, lat, data.cross_border)
    require_scope(principal, township, what="report an incident")
    info = INCIDENT_TYPES[data.type]
    now = datetime.now(UTC)
    incident = Incident(
        code=await _next_code(session, now),
        category=info.category,
        type=data.type.value,
        type_code=info.code,
        severity=FROM_ROMAN[data.severity] if data.severity else None,
        status=IncidentStatus.REPORTED,
        title=data.title,
        description=data.description,
        address=data.address,
        location=data.location.wkt(data.coord_sys),
        township_code=township,
        cross_border=cross_border,
        dead=data.dead,
        injured=data.injured,
        missing=data.missing,
        trapped=data.trapped,
        people_affected=data.people_affected,
        exercise=data.exercise,
        reported_by=principal.actor,
        reported_at=min(data.reported_at or now, now),
        version=1,
    )
    session.add(incident)
    await session.flush()
    await session.refresh(incident)
    await _record(session, incident, "incident.created", principal.actor)
    return incident


async def get(*, session: AsyncSession, incident_id: int) -> Incident:
    incident = await session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFound(f"no incident has the id {incident_id}", details={"incident_id": incident_id})
    return incident


@dataclass(frozen=True, slots=True)
class IncidentSite:
    """What a recommendation needs of an incident: what happened, where, and to how many people."""

    id: int
    type: IncidentType
    people_affected: int
    township_code: str | None
    lon: float
    lat: float


INCIDENT_SITE = DriverStatement.of(
    text(
        """
        SELECT id, type, people_affected, township_code,
               ST_X(CAST(location AS geometry)) AS lon, ST_Y(CAST(location AS geometry)) AS lat
        FROM incident WHERE id = :incident_id
        """
    )
)


async def site(*, session: AsyncSession, incident_id: int) -> IncidentSite:
    """The incident's site, read on the driver: the recommendation's first statement, no ORM entity needed."""
    rows = await INCIDENT_SITE.fetch(session, incident_id=incident_id)
    if not rows:
        raise IncidentNotFound(f"no incident has the id {incident_id}", details={"incident_id": incident_id})
    row = rows[0]
    return IncidentSite(
        id=row["id"],
        type=IncidentType(row["type"]),
        people_affected=row["people_affected"],
        township_code=row["township_code"],
        lon=row["lon"],
        lat=row["lat"],
    )


async def _get_for_update(session: AsyncSession, incident_id: int) -> Incident:
    # A row lock by primary key: concurrent edits of one incident queue here, then see each other's version.
    incident = await session.scalar(
        select(Incident).where(Incident.id == incident_id).with_for_update().execution_options(populate_existing=True)
    )
    if incident is None:
        raise IncidentNotFound(f"no incident has the id {incident_id}", details={"incident_id": incident_id})
    return incident


def _check_version(incident: Incident, expected: int | None) -> None:
    if expected is None:
        raise AppError(
            "send the version you edited (If-Match header or version field) so no update is lost",
            status_code=428,
            code="version_required",
            details={"current_version": incident.version},
        )
    if expected != incident.version:
        raise VersionConflict(
            f"the incident changed since version {expected}; it is at version {incident.version}",
            details={"expected_version": expected, "current_version": incident.version},
        )


async def update_incident(
    *, session: AsyncSession, principal: Principal, incident_id: int, data: IncidentUpdate, if_match: int | None
) -> Incident:
    incident = await _get_for_update(session, incident_id)
    require_scope(principal, incident.township_code, what="edit an incident")
    _check_version(incident, if_match if if_match is not None else data.version)
    if incident.status in FINAL:
        raise IncidentFinal(f"incident {incident.code} is {incident.status.value}; it can no longer be edited")
    changes: dict[str, Any] = {}
    fields = data.model_dump(exclude_unset=True, exclude={"version", "location", "coord_sys", "type", "severity"})
    for name, value in fields.items():
        if value is not None and getattr(incident, name) != value:
            changes[name] = [getattr(incident, name), value]
            setattr(incident, name, value)
    if "severity" in data.model_fields_set:
        severity = FROM_ROMAN[data.severity] if data.severity else None
        if severity != incident.severity:
            changes["severity"] = [ROMAN.get(incident.severity or 0), data.severity]
            incident.severity = severity
    if data.type is not None and data.type.value != incident.type:
        info = INCIDENT_TYPES[data.type]
        changes["type"] = [incident.type, data.type.value]
        incident.type, incident.type_code, incident.category = data.type.value, info.code, info.category
    if data.location is not None:
        lon, lat = data.location.wgs84(data.coord_sys)
        allow_outside = data.cross_border if data.cross_border is not None else incident.cross_border
        township, cross_border = await _place(session, lon, lat, allow_outside)
        require_scope(principal, township, what="move an incident")
        old = lon_lat(incident.location)
        incident.location = data.location.wkt(data.coord_sys)
        changes["location"] = [list(old), [lon, lat]]
        if township != incident.township_code:
            changes["township"] = [incident.township_code, township]
        incident.township_code, incident.cross_border = township, cross_border
    if not changes:
        return incident
    incident.version += 1
    await session.flush()
    await session.refresh(incident)
    await _record(session, incident, "incident.updated", principal.actor, changes=_json_changes(changes))
    return incident


def _json_changes(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: [v.value if hasattr(v, "value") else v for v in pair] for k, pair in changes.items()}


async def transition(
    *,
    session: AsyncSession,
    principal: Principal,
    incident_id: int,
    to: IncidentStatus,
    note: str,
    expected_version: int | None = None,
) -> Incident:
    incident = await _get_for_update(session, incident_id)
    require_scope(principal, incident.township_code, what="change an incident's status")
    if expected_version is not None:
        _check_version(incident, expected_version)
    return await _move(session, incident, to, principal.actor, note)


async def _move(session: AsyncSession, incident: Incident, to: IncidentStatus, actor: str, note: str) -> Incident:
    allowed = TRANSITIONS[incident.status]
    if to not in allowed:
        raise IllegalTransition(
            f"incident {incident.code} is {incident.status.value}; it cannot go to {to.value}",
            details={"status": incident.status.value, "to": to.value, "allowed": [s.value for s in allowed]},
        )
    previous = incident.status
    incident.status = to
    if to is IncidentStatus.CLOSED:
        incident.closed_at = datetime.now(UTC)
    incident.version += 1
    await session.flush()
    await session.refresh(incident)
    await _record(session, incident, "incident.status_changed", actor, previous=previous.value, note=note)
    return incident


async def lock_for_dispatch(*, session: AsyncSession, incident_id: int) -> Incident:
    """The incident, row-locked, refusing final ones: what a dispatch assigns teams to."""
    incident = await _get_for_update(session, incident_id)
    if incident.status in FINAL:
        raise IncidentFinal(
            f"incident {incident.code} is {incident.status.value}; no team can be assigned to it",
            details={"incident_id": incident.id, "status": incident.status.value},
        )
    return incident


async def mark_dispatched(*, session: AsyncSession, incident: Incident, actor: str) -> Incident:
    """After a dispatch: reported/verified incidents move to dispatched; later stages stay where they are."""
    if incident.status in (IncidentStatus.REPORTED, IncidentStatus.VERIFIED):
        return await _move(session, incident, IncidentStatus.DISPATCHED, actor, "teams dispatched")
    return incident


@dataclass(frozen=True, kw_only=True)
class ListFilter:
    statuses: list[IncidentStatus] | None = None
    types: list[IncidentType] | None = None
    category: IncidentCategory | None = None
    severities: list[int] | None = None
    township: str | None = None
    bbox: BBox | None = None
    reported_after: datetime | None = None
    reported_before: datetime | None = None
    # Drills never mix with real incidents: the default lists real ones only; None means both.
    exercise: bool | None = False
    cross_border: bool | None = None
    ids: list[int] | None = None

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        if self.statuses:
            stmt = stmt.where(Incident.status.in_(self.statuses))
        if self.types:
            stmt = stmt.where(Incident.type.in_([t.value for t in self.types]))
        if self.category:
            stmt = stmt.where(Incident.category == self.category)
        if self.severities:
            stmt = stmt.where(Incident.severity.in_(self.severities))
        if self.township:
            stmt = stmt.where(Incident.township_code == self.township)
        if self.bbox:
            stmt = stmt.where(in_bbox(Incident.location, self.bbox))
        if self.reported_after:
            stmt = stmt.where(Incident.reported_at >= self.reported_after)
        if self.reported_before:
            stmt = stmt.where(Incident.reported_at < self.reported_before)
        if self.exercise is not None:
            stmt = stmt.where(Incident.exercise.is_(self.exercise))
        if self.cross_border is not None:
            stmt = stmt.where(Incident.cross_border.is_(self.cross_border))
        if self.ids is not None:
            stmt = stmt.where(Incident.id.in_(self.ids))
        return stmt


async def list_incidents(
    *, session: AsyncSession, where: ListFilter, limit: int, offset: int
) -> tuple[list[Incident], int]:
    stmt = where.apply(select(Incident)).order_by(Incident.reported_at.desc(), Incident.id.desc())
    return await fetch_page(session, stmt, limit=limit, offset=offset)


async def location_of(*, session: AsyncSession, incident_id: int) -> tuple[float, float]:
    incident = await get(session=session, incident_id=incident_id)
    return lon_lat(incident.location)


def lon_lat_of(incident: Incident) -> tuple[float, float]:
    return lon_lat(incident.location)
