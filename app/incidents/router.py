from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import AwareDatetime
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import CurrentPrincipal, Principal, Writer
from app.db import SessionDep
from app.errors import BadRequest, Forbidden
from app.events import service as event_service
from app.geo.coords import CoordSys
from app.geo.geojson import GeoJSONResponse, ListQuery, OutCoordSys, collection, list_query, point_geometry
from app.incidents import service
from app.incidents.models import Incident, IncidentCategory, IncidentStatus
from app.incidents.schemas import (
    Casualties,
    IncidentCollection,
    IncidentCreate,
    IncidentFeature,
    IncidentOut,
    IncidentProperties,
    IncidentUpdate,
    SeverityLevel,
    Timeline,
    TimelineEntry,
    TransitionRequest,
)
from app.incidents.types import FROM_ROMAN, INCIDENT_TYPES, ROMAN, SEVERITY_NAMES, IncidentType
from app.params import IdPath
from app.users.models import Role

router = APIRouter(prefix="/incidents", tags=["incidents"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or bad token"},
    403: {"description": "role or township scope"},
    404: {"description": "no such incident"},
    409: {"description": "version conflict or illegal transition"},
    422: {"description": "invalid input"},
}


def properties(i: Incident) -> IncidentProperties:
    kind = IncidentType(i.type)
    return IncidentProperties(
        code=i.code,
        name=i.title,
        title=i.title,
        category=i.category,
        type=kind,
        type_code=i.type_code,
        type_name=INCIDENT_TYPES[kind].name_zh,
        severity=ROMAN[i.severity] if i.severity else None,
        severity_name=SEVERITY_NAMES.get(i.severity or 0),
        status=i.status,
        township=i.township_code,
        cross_border=i.cross_border,
        address=i.address,
        description=i.description,
        casualties=Casualties(dead=i.dead, injured=i.injured, missing=i.missing, trapped=i.trapped),
        people_affected=i.people_affected,
        exercise=i.exercise,
        reported_by=i.reported_by,
        reported_at=i.reported_at,
        closed_at=i.closed_at,
        updated_at=i.updated_at,
        version=i.version,
    )


def to_out(i: Incident, coord_sys: CoordSys, response: Response | None = None) -> IncidentOut:
    if response is not None:
        response.headers["ETag"] = f'"{i.version}"'
    return IncidentOut(id=i.id, location=point_geometry(i.location, coord_sys), **properties(i).model_dump())


def parse_if_match(if_match: str | None) -> int | None:
    """`If-Match: "7"` (also W/"7" or 7) names the version the client edited."""
    if if_match is None:
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 10:
        raise BadRequest('If-Match must carry the incident\'s version, e.g. "3"', code="invalid_if_match")
    return int(value)


async def _ensure_readable(session: AsyncSession, principal: Principal, incident: Incident) -> None:
    if principal.role is Role.RESPONDER:
        from app.dispatch import service as dispatch_service

        if not await dispatch_service.team_is_assigned(
            session=session, incident_id=incident.id, team_id=principal.team_id
        ):
            raise Forbidden("a responder reads only the incidents its team is assigned to", code="out_of_scope")


@router.post("", status_code=201, response_model=IncidentOut, responses=ERRORS)
async def report_incident(
    data: IncidentCreate, session: SessionDep, principal: Writer, response: Response, coord_sys: OutCoordSys
) -> IncidentOut:
    """Report an incident; its township is the polygon that holds the point."""
    incident = await service.report(session=session, principal=principal, data=data)
    response.headers["Location"] = f"/api/v1/incidents/{incident.id}"
    return to_out(incident, coord_sys, response)


@router.get("", response_model=IncidentCollection, response_class=GeoJSONResponse, responses=ERRORS)
async def list_incidents(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    coord_sys: OutCoordSys,
    query: Annotated[ListQuery, Depends(list_query)],
    status: Annotated[list[IncidentStatus] | None, Query()] = None,
    type: Annotated[list[IncidentType] | None, Query()] = None,
    category: IncidentCategory | None = None,
    severity: Annotated[list[SeverityLevel] | None, Query()] = None,
    reported_after: AwareDatetime | None = None,
    reported_before: AwareDatetime | None = None,
    exercise: Annotated[
        str, Query(pattern="^(true|false|any)$", description="drills: false (default, real only), true, any")
    ] = "false",
    cross_border: bool | None = None,
) -> IncidentCollection:
    ids = None
    if principal.role is Role.RESPONDER:
        from app.dispatch import service as dispatch_service

        ids = await dispatch_service.incident_ids_of_team(session=session, team_id=principal.team_id or 0)
    where = service.ListFilter(
        statuses=status,
        types=type,
        category=category,
        severities=[FROM_ROMAN[s] for s in severity or []],
        township=query.township,
        bbox=query.bbox,
        reported_after=reported_after,
        reported_before=reported_before,
        exercise=None if exercise == "any" else exercise == "true",
        cross_border=cross_border,
        ids=ids,
    )
    incidents, matched = await service.list_incidents(
        session=session, where=where, limit=query.limit, offset=query.offset
    )
    features = [
        IncidentFeature(id=i.id, geometry=point_geometry(i.location, coord_sys), properties=properties(i))
        for i in incidents
    ]
    result: IncidentCollection = collection(IncidentCollection, request, query, features, matched)
    return result


@router.get("/{incident_id}", response_model=IncidentOut, responses=ERRORS)
async def get_incident(
    incident_id: IdPath, session: SessionDep, principal: CurrentPrincipal, response: Response, coord_sys: OutCoordSys
) -> IncidentOut:
    incident = await service.get(session=session, incident_id=incident_id)
    await _ensure_readable(session, principal, incident)
    return to_out(incident, coord_sys, response)


@router.patch("/{incident_id}", response_model=IncidentOut, responses={**ERRORS, 428: {"description": "no version"}})
async def update_incident(
    incident_id: IdPath,
    data: IncidentUpdate,
    session: SessionDep,
    principal: Writer,
    response: Response,
    coord_sys: OutCoordSys,
    if_match: Annotated[str | None, Header()] = None,
) -> IncidentOut:
    """Edit an incident. Send the version you edited (If-Match or `version`): a stale one gets 409."""
    incident = await service.update_incident(
        session=session, principal=principal, incident_id=incident_id, data=data, if_match=parse_if_match(if_match)
    )
    return to_out(incident, coord_sys, response)


@router.post("/{incident_id}/transitions", response_model=IncidentOut, responses=ERRORS)
async def transition_incident(
    incident_id: IdPath,
    data: TransitionRequest,
    session: SessionDep,
    principal: Writer,
    response: Response,
    coord_sys: OutCoordSys,
    if_match: Annotated[str | None, Header()] = None,
) -> IncidentOut:
    """Move the incident along its lifecycle; an illegal move gets 409 listing the allowed ones."""
    expected = parse_if_match(if_match) if if_match is not None else data.version
    incident = await service.transition(
        session=session,
        principal=principal,
        incident_id=incident_id,
        to=data.to,
        note=data.note,
        expected_version=expected,
    )
    return to_out(incident, coord_sys, response)


@router.get("/{incident_id}/timeline", response_model=Timeline, responses=ERRORS)
async def incident_timeline(
    incident_id: IdPath,
    session: SessionDep,
    principal: CurrentPrincipal,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> Timeline:
    """Every change of the incident, who made it and when (from the append-only event log)."""
    incident = await service.get(session=session, incident_id=incident_id)
    await _ensure_readable(session, principal, incident)
    events = await event_service.timeline(
        session=session, subject_type="incident", subject_id=incident.id, after_seq=after_seq, limit=limit
    )
    return Timeline(
        incident_id=incident.id,
        code=incident.code,
        entries=[TimelineEntry(seq=e.seq, ts=e.ts, topic=e.topic, actor=e.actor, data=e.data) for e in events],
    )
