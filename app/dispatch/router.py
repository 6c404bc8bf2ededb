from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.auth import CurrentPrincipal, Principal, Writer, require_roles
from app.db import ReadSessionDep, SessionDep
from app.dispatch import service
from app.dispatch.schemas import (
    DispatchOut,
    DispatchRequest,
    DispatchResult,
    NearestCollection,
    NearestFeature,
    NearestProperties,
    Recommendation,
    StockOption,
    SupplyAllocation,
    SupplyAllocationOut,
    TeamStatusRequest,
)
from app.errors import BadRequest
from app.geo.coords import CoordSys, to_wgs84
from app.geo.geojson import GeoJSONResponse, Latitude, Link, Longitude, OutCoordSys, point_geometry
from app.incidents import service as incident_service
from app.params import IdPath
from app.teams import service as team_service
from app.teams.models import Capability
from app.teams.router import to_feature as team_feature
from app.teams.schemas import TeamFeature
from app.users.models import Role

router = APIRouter(tags=["dispatch"])

# Who may move a team through its lifecycle: command, the township of the team, the team's own responders.
StatusReporter = Annotated[Principal, require_roles(Role.COMMAND, Role.TOWNSHIP, Role.RESPONDER)]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or bad token"},
    403: {"description": "role or township scope"},
    404: {"description": "not found"},
    409: {"description": "team not available, incident closed"},
    422: {"description": "invalid input"},
}


@router.get("/incidents/{incident_id}/recommendation", response_model=Recommendation, responses=ERRORS)
async def recommendation(
    incident_id: IdPath, request: Request, session: ReadSessionDep, principal: CurrentPrincipal, coord_sys: OutCoordSys
) -> Recommendation:
    """What to send: teams ranked by ETA, shelters with room, depots holding the supplies, the helipad."""
    if principal.role is Role.RESPONDER:
        raise BadRequest(
            "responders read their assignments, not recommendations", code="role_not_allowed", status_code=403
        )
    site = await incident_service.site(session=session, incident_id=incident_id)
    return await service.recommend(
        session=session,
        settings=request.app.state.settings,
        incident_id=site.id,
        lon=site.lon,
        lat=site.lat,
        incident_type=site.type,
        people_affected=site.people_affected,
        township=site.township_code,
        coord_sys=coord_sys,
    )


@router.post("/incidents/{incident_id}/dispatches", status_code=201, response_model=DispatchResult, responses=ERRORS)
async def dispatch_teams(
    incident_id: IdPath, data: DispatchRequest, request: Request, session: SessionDep, principal: Writer
) -> DispatchResult:
    """Book the teams: each only if still available at commit. 409 names a team that is not."""
    incident, dispatches = await service.assign(
        session=session,
        settings=request.app.state.settings,
        principal=principal,
        incident_id=incident_id,
        team_ids=data.team_ids,
        note=data.note,
    )
    return DispatchResult(
        incident_id=incident.id,
        incident_status=incident.status.value,
        incident_version=incident.version,
        dispatches=dispatches,
    )


@router.get("/incidents/{incident_id}/dispatches", response_model=list[DispatchOut], responses=ERRORS)
async def list_dispatches(incident_id: IdPath, session: SessionDep, principal: CurrentPrincipal) -> list[DispatchOut]:
    incident = await incident_service.get(session=session, incident_id=incident_id)
    if principal.role is Role.RESPONDER and not await service.team_is_assigned(
        session=session, incident_id=incident.id, team_id=principal.team_id
    ):
        raise BadRequest("a responder reads only its own assignments", code="out_of_scope", status_code=403)
    return await service.list_dispatches(session=session, incident_id=incident_id)


@router.post("/incidents/{incident_id}/dispatches/{dispatch_id}/release", response_model=DispatchOut, responses=ERRORS)
async def release_dispatch(
    incident_id: IdPath,
    dispatch_id: IdPath,
    session: SessionDep,
    principal: Writer,
    note: Annotated[str, Query(max_length=2000)] = "",
) -> DispatchOut:
    """Stand the team down: free at once if not yet on scene, else returning."""
    return await service.release(
        session=session, principal=principal, incident_id=incident_id, dispatch_id=dispatch_id, note=note
    )


@router.post("/teams/{team_id}/status", response_model=TeamFeature, response_class=GeoJSONResponse, responses=ERRORS)
async def change_team_status(
    team_id: IdPath,
    data: TeamStatusRequest,
    session: SessionDep,
    principal: StatusReporter,
    response: Response,
    coord_sys: OutCoordSys,
) -> TeamFeature:
    """From the responder's phone: en_route, on_scene, returning, available, out_of_service."""
    team = await service.change_team_status(
        session=session, principal=principal, team_id=team_id, to=data.to, note=data.note
    )
    if data.location is not None:
        team, _ = await team_service.report_position(
            session=session,
            team_id=team.id,
            location=data.location,
            coord_sys=data.coord_sys,
            recorded_at=None,
            principal=principal,
        )
    response.headers["ETag"] = f'"{team.version}"'
    return team_feature(team, coord_sys)


@router.get("/teams/{team_id}/assignments", response_model=list[DispatchOut], responses=ERRORS)
async def team_assignments(
    team_id: IdPath,
    session: SessionDep,
    principal: CurrentPrincipal,
    active: Annotated[bool, Query(description="only dispatches not yet released")] = True,
) -> list[DispatchOut]:
    """A team's dispatches (a responder sees only its own team's)."""
    if principal.role is Role.RESPONDER and principal.team_id != team_id:
        raise BadRequest("a responder reads only its own team's assignments", code="out_of_scope", status_code=403)
    return await service.team_assignments(session=session, team_id=team_id, active_only=active)


@router.get("/nearest", response_model=NearestCollection, response_class=GeoJSONResponse, responses=ERRORS)
async def nearest(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    kind: Annotated[str, Query(pattern="^(team|shelter|depot|helipad)$")],
    lon: Longitude,
    lat: Latitude,
    coord_sys: Annotated[CoordSys, Query(description="system of lon/lat and of the answer")] = CoordSys.WGS84,
    capability: Capability | None = None,
    item: Annotated[str | None, Query(pattern=r"^\d{3}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 5,
    available: Annotated[bool, Query(description="teams: only available ones")] = True,
) -> NearestCollection:
    """The nearest things of one kind to any point, nearest first, with geodesic distance (and ETA for teams)."""
    settings = request.app.state.settings
    x, y = to_wgs84(lon, lat, coord_sys)
    features: list[NearestFeature] = []
    if kind == "team":
        eta = service.EtaModel(settings)
        candidates = await team_service.nearest_teams(
            session=session,
            lon=x,
            lat=y,
            capabilities=[capability.value] if capability else None,
            k=limit,
            fresh_s=settings.dispatch_position_fresh_s,
            only_available=available,
        )
        for c in candidates:
            features.append(
                NearestFeature(
                    id=c.id,
                    geometry=service.point_in(c.lon, c.lat, coord_sys),
                    properties=NearestProperties(
                        name=c.name,
                        code=c.code,
                        township=c.township_code,
                        distance_m=round(c.distance_m),
                        eta_s=eta.eta_s(kind=c.kind.value, distance_m=c.distance_m, township=None),
                        position_source=c.position_source,
                        kind=c.kind.value,
                        status=c.status.value,
                        capabilities=c.capabilities,
                    ),
                )
            )
    elif kind == "shelter":
        for shelter, distance in await service.nearest_shelters(session=session, lon=x, lat=y, k=limit):
            features.append(
                NearestFeature(
                    id=shelter.id,
                    geometry=point_geometry(shelter.location, coord_sys),
                    properties=NearestProperties(
                        name=shelter.name,
                        code=shelter.code,
                        township=shelter.township_code,
                        distance_m=round(distance),
                        kind=shelter.level.value,
                        status=shelter.status.value,
                        free_places=shelter.capacity - shelter.occupancy,
                    ),
                )
            )
    elif kind == "depot":
        depots = await service.nearest_depots(session=session, lon=x, lat=y, items=[item] if item else None, k=limit)
        stock = await service.depot_stock(session=session, depot_ids=[d.id for d, _ in depots])
        for depot, distance in depots:
            lines = [StockOption(**s.model_dump()) for s in stock.get(depot.id, []) if item is None or s.item == item]
            features.append(
                NearestFeature(
                    id=depot.id,
                    geometry=point_geometry(depot.location, coord_sys),
                    properties=NearestProperties(
                        name=depot.name,
                        code=depot.code,
                        township=depot.township_code,
                        distance_m=round(distance),
                        kind=depot.level.value,
                        stock=lines,
                    ),
                )
            )
    else:
        for pad, distance in await service.nearest_pads(session=session, lon=x, lat=y, k=limit):
            features.append(
                NearestFeature(
                    id=pad.id,
                    geometry=point_geometry(pad.location, coord_sys),
                    properties=NearestProperties(
                        name=pad.name,
                        code=pad.code,
                        township=pad.township_code,
                        distance_m=round(distance),
                        kind=pad.kind.value,
                        status=pad.status.value,
                    ),
                )
            )
    return NearestCollection(
        features=features,
        numberMatched=len(features),
        numberReturned=len(features),
        links=[Link(href=str(request.url), rel="self")],
    )


@router.post("/incidents/{incident_id}/supplies", status_code=201, response_model=SupplyAllocationOut, responses=ERRORS)
async def allocate_supplies(
    incident_id: IdPath, data: SupplyAllocation, session: SessionDep, principal: Writer
) -> SupplyAllocationOut:
    """Send items from a depot to the incident (or a shelter serving it); 409 when the depot holds too few."""
    incident, entry = await service.allocate_supplies(
        session=session,
        principal=principal,
        incident_id=incident_id,
        depot_id=data.depot_id,
        item=data.item,
        quantity=data.quantity,
        shelter_id=data.shelter_id,
        note=data.note,
    )
    return SupplyAllocationOut(
        incident_id=incident.id,
        depot_id=data.depot_id,
        item=data.item,
        quantity=data.quantity,
        shelter_id=data.shelter_id,
        ledger_entry_id=entry.id,
        balance_after=entry.balance_after,
    )
