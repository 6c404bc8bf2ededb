from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel

from app.auth import CurrentPrincipal, Principal, Writer, require_roles
from app.db import SessionDep
from app.errors import Forbidden, NotFound
from app.geo.coords import CoordSys
from app.geo.geojson import (
    Feature,
    FeatureCollection,
    GeoJSONResponse,
    Link,
    ListQuery,
    OutCoordSys,
    PointGeometry,
    collection,
    list_query,
    lon_lat,
    point_geometry,
)
from app.params import IdPath
from app.teams import service
from app.teams.models import Capability, Team, TeamKind, TeamStatus
from app.teams.schemas import (
    BatchPositionResult,
    BatchResult,
    PositionBatch,
    PositionIn,
    PositionResult,
    TeamCollection,
    TeamCreate,
    TeamFeature,
    TeamPatch,
    TeamProperties,
)
from app.users.models import Role
from app.writes import expected_version, if_match_header, set_etag

router = APIRouter(prefix="/teams", tags=["teams"])
# A gateway posts many teams' fixes at /api/v1/positions (same handler as /teams/positions).
gateway_router = APIRouter(tags=["teams"])


def to_feature(team: Team, coord_sys: CoordSys) -> TeamFeature:
    # The feature's point is where the team is believed to be: its live position if any, else its base.
    where = team.position if team.position is not None else team.base
    return TeamFeature(
        id=team.id,
        geometry=point_geometry(where, coord_sys),
        properties=TeamProperties(
            code=team.code,
            name=team.name,
            name_en=team.name_en,
            kind=team.kind,
            capabilities=team.capabilities,
            headcount=team.headcount,
            status=team.status,
            township=team.township_code,
            base=lon_lat(team.base, coord_sys),
            position=lon_lat(team.position, coord_sys) if team.position is not None else None,
            position_at=team.position_at,
            shareable=team.shareable,
            version=team.version,
        ),
    )


@router.get("", response_model=TeamCollection, response_class=GeoJSONResponse)
async def list_teams(
    request: Request,
    session: SessionDep,
    _: CurrentPrincipal,
    coord_sys: OutCoordSys,
    query: Annotated[ListQuery, Depends(list_query)],
    kind: TeamKind | None = None,
    status: TeamStatus | None = None,
    capability: Annotated[Capability | None, Query()] = None,
) -> TeamCollection:
    teams, matched = await service.list_teams(
        session=session, query=query, kind=kind, status=status, capability=capability.value if capability else None
    )
    result: TeamCollection = collection(
        TeamCollection, request, query, [to_feature(t, coord_sys) for t in teams], matched
    )
    return result


@router.get("/{team_id}", response_model=TeamFeature, response_class=GeoJSONResponse)
async def get_team(
    team_id: IdPath, response: Response, session: SessionDep, _: CurrentPrincipal, coord_sys: OutCoordSys
) -> TeamFeature:
    team = await service.get_team(session=session, team_id=team_id)
    if team is None:
        raise NotFound(f"no team has the id {team_id}", code="team_not_found")
    set_etag(response, team.version)
    return to_feature(team, coord_sys)


# Who may report positions: command, township centers (their own township's teams) and responders
# (their own team only); the per-team rule is app.writes.ensure_can_report_team.
Reporter = Annotated[Principal, require_roles(Role.COMMAND, Role.TOWNSHIP, Role.RESPONDER)]
IfMatch = Annotated[int | None, Depends(if_match_header)]


@router.post("", status_code=201, response_model=TeamFeature, response_class=GeoJSONResponse)
async def create_team(
    body: TeamCreate, response: Response, session: SessionDep, principal: Writer, coord_sys: OutCoordSys
) -> TeamFeature:
    """Register a team at its base. The township is the one holding the base (a township center
    may create teams of its own township only); the code must be new (409 `duplicate_code`)."""
    team = await service.create_team(session=session, data=body, principal=principal)
    set_etag(response, team.version)
    response.headers["Location"] = f"/api/v1/teams/{team.id}"
    return to_feature(team, coord_sys)


@router.patch("/{team_id}", response_model=TeamFeature, response_class=GeoJSONResponse)
async def update_team(
    team_id: IdPath,
    body: TeamPatch,
    response: Response,
    session: SessionDep,
    principal: Writer,
    if_match: IfMatch,
    coord_sys: OutCoordSys,
) -> TeamFeature:
    """Edit a team made against a known version (If-Match or `version`): a stale one gets 409
    `version_conflict` with the current version. Status changes go through dispatch."""
    team = await service.update_team(
        session=session,
        team_id=team_id,
        patch=body,
        expected_version=expected_version(if_match, body.version),
        principal=principal,
    )
    set_etag(response, team.version)
    return to_feature(team, coord_sys)


@gateway_router.post("/positions", response_model=BatchResult)
@router.post("/positions", response_model=BatchResult)
async def report_positions(body: PositionBatch, session: SessionDep, principal: Reporter) -> BatchResult:
    """Up to 500 fixes in one transaction. Per team the newest fix is applied when it is newer than
    the stored position; an unknown team or one out of the caller's scope refuses the whole batch."""
    fixes = []
    for p in body.positions:
        lon, lat = p.location.wgs84(p.coord_sys)
        fixes.append(service.Fix(team_id=p.team_id, lon=lon, lat=lat, recorded_at=service.fix_time(p.recorded_at)))
    outcome = await service.report_positions(session=session, fixes=fixes, principal=principal)
    results = [
        BatchPositionResult(team_id=f.team_id, applied=applied, reason=reason)
        for f, (applied, reason) in zip(fixes, outcome, strict=True)
    ]
    return BatchResult(received=len(results), applied=sum(r.applied for r in results), results=results)


@router.post("/{team_id}/position", response_model=PositionResult, response_class=GeoJSONResponse)
async def report_position(
    team_id: IdPath,
    body: PositionIn,
    response: Response,
    session: SessionDep,
    principal: Reporter,
    coord_sys: OutCoordSys,
) -> PositionResult:
    """A team's live position. Last writer by the time of the fix: an older fix than the stored one
    is answered 200 with `applied: false` and changes nothing."""
    team, applied = await service.report_position(
        session=session,
        team_id=team_id,
        location=body.location,
        coord_sys=body.coord_sys,
        recorded_at=body.recorded_at,
        principal=principal,
    )
    set_etag(response, team.version)
    return PositionResult(**to_feature(team, coord_sys).model_dump(), applied=applied)


class TrackPointProperties(BaseModel):
    team: int
    recorded_at: datetime
    received_at: datetime


TrackCollection = FeatureCollection[PointGeometry, TrackPointProperties]


@router.get("/{team_id}/track", response_model=TrackCollection, response_class=GeoJSONResponse)
async def team_track(
    request: Request,
    team_id: IdPath,
    session: SessionDep,
    principal: CurrentPrincipal,
    coord_sys: OutCoordSys,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> TrackCollection:
    """Where the team has been: its fixes in recorded order (a responder sees its own team's only)."""
    if principal.role is Role.RESPONDER and principal.team_id != team_id:
        raise Forbidden("a responder reads only its own team's track", code="out_of_scope")
    if await service.get_team(session=session, team_id=team_id) is None:
        raise NotFound(f"no team has the id {team_id}", code="team_not_found")
    points = await service.track(session=session, team_id=team_id, since=since, until=until, limit=limit)
    features = [
        Feature[PointGeometry, TrackPointProperties](
            id=p.id,
            geometry=point_geometry(p.position, coord_sys),
            properties=TrackPointProperties(team=team_id, recorded_at=p.recorded_at, received_at=p.received_at),
        )
        for p in points
    ]
    return TrackCollection(
        features=features,
        numberMatched=len(features),
        numberReturned=len(features),
        links=[Link(href=str(request.url), rel="self")],
    )
