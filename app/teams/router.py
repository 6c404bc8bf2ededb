from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth import CurrentPrincipal
from app.db import SessionDep
from app.errors import NotFound
from app.geo.coords import CoordSys
from app.geo.geojson import GeoJSONResponse, ListQuery, OutCoordSys, collection, list_query, lon_lat, point_geometry
from app.params import IdPath
from app.teams import service
from app.teams.models import Capability, Team, TeamKind, TeamStatus
from app.teams.schemas import TeamCollection, TeamFeature, TeamProperties

router = APIRouter(prefix="/teams", tags=["teams"])


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
async def get_team(team_id: IdPath, session: SessionDep, _: CurrentPrincipal, coord_sys: OutCoordSys) -> TeamFeature:
    team = await service.get_team(session=session, team_id=team_id)
    if team is None:
        raise NotFound(f"no team has the id {team_id}", code="team_not_found")
    return to_feature(team, coord_sys)
