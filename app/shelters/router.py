from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.auth import CurrentPrincipal, Writer
from app.db import SessionDep
from app.errors import NotFound
from app.geo.coords import CoordSys
from app.geo.geojson import GeoJSONResponse, ListQuery, OutCoordSys, collection, list_query, point_geometry
from app.params import IdPath
from app.shelters import service
from app.shelters.models import Shelter, ShelterLevel, ShelterStatus
from app.shelters.schemas import (
    OccupancyChange,
    ShelterCollection,
    ShelterCreate,
    ShelterFeature,
    ShelterPatch,
    ShelterProperties,
)
from app.writes import expected_version, if_match_header, set_etag

router = APIRouter(prefix="/shelters", tags=["shelters"])


def to_feature(s: Shelter, coord_sys: CoordSys) -> ShelterFeature:
    return ShelterFeature(
        id=s.id,
        geometry=point_geometry(s.location, coord_sys),
        properties=ShelterProperties(
            code=s.code,
            name=s.name,
            level=s.level,
            site_type=s.site_type,
            capacity=s.capacity,
            occupancy=s.occupancy,
            free_places=max(0, s.capacity - s.occupancy),
            area_m2=s.area_m2,
            status=s.status,
            address=s.address,
            township=s.township_code,
            version=s.version,
        ),
    )


@router.get("", response_model=ShelterCollection, response_class=GeoJSONResponse)
async def list_shelters(
    request: Request,
    session: SessionDep,
    _: CurrentPrincipal,
    coord_sys: OutCoordSys,
    query: Annotated[ListQuery, Depends(list_query)],
    level: ShelterLevel | None = None,
    status: ShelterStatus | None = None,
) -> ShelterCollection:
    shelters, matched = await service.list_shelters(session=session, query=query, level=level, status=status)
    result: ShelterCollection = collection(
        ShelterCollection, request, query, [to_feature(s, coord_sys) for s in shelters], matched
    )
    return result


@router.get("/{shelter_id}", response_model=ShelterFeature, response_class=GeoJSONResponse)
async def get_shelter(
    shelter_id: IdPath, response: Response, session: SessionDep, _: CurrentPrincipal, coord_sys: OutCoordSys
) -> ShelterFeature:
    shelter = await service.get_shelter(session=session, shelter_id=shelter_id)
    if shelter is None:
        raise NotFound(f"no shelter has the id {shelter_id}", code="shelter_not_found")
    set_etag(response, shelter.version)
    return to_feature(shelter, coord_sys)


IfMatch = Annotated[int | None, Depends(if_match_header)]


@router.post("", status_code=201, response_model=ShelterFeature, response_class=GeoJSONResponse)
async def create_shelter(
    body: ShelterCreate, response: Response, session: SessionDep, principal: Writer, coord_sys: OutCoordSys
) -> ShelterFeature:
    """Register a shelter (on standby, empty) in the township that holds its point."""
    shelter = await service.create_shelter(session=session, data=body, principal=principal)
    set_etag(response, shelter.version)
    response.headers["Location"] = f"/api/v1/shelters/{shelter.id}"
    return to_feature(shelter, coord_sys)


@router.patch("/{shelter_id}", response_model=ShelterFeature, response_class=GeoJSONResponse)
async def update_shelter(
    shelter_id: IdPath,
    body: ShelterPatch,
    response: Response,
    session: SessionDep,
    principal: Writer,
    if_match: IfMatch,
    coord_sys: OutCoordSys,
) -> ShelterFeature:
    """Edit a shelter (including `status` and `occupancy`) made against a known version (If-Match or
    `version`; stale: 409 `version_conflict`). Occupancy above capacity: 422. Without an explicit
    status, a change of occupancy or capacity sets `full` when no place is left and `open` again
    when places free up (a shelter an operator declared full stays full until reopened)."""
    shelter = await service.update_shelter(
        session=session,
        shelter_id=shelter_id,
        patch=body,
        expected_version=expected_version(if_match, body.version),
        principal=principal,
    )
    set_etag(response, shelter.version)
    return to_feature(shelter, coord_sys)


@router.post("/{shelter_id}/occupancy", response_model=ShelterFeature, response_class=GeoJSONResponse)
async def change_occupancy(
    shelter_id: IdPath,
    body: OccupancyChange,
    response: Response,
    session: SessionDep,
    principal: Writer,
    coord_sys: OutCoordSys,
) -> ShelterFeature:
    """Check-in/check-out `{"delta": n}` or a head count `{"occupancy": n}`, race-free: concurrent
    check-ins never overfill a shelter (409 `shelter_full` with the free places). A check-in is taken
    by a standby or open shelter (standby opens); `full` is set when no place is left and lifted when
    places free up; a closed shelter takes no check-ins (409 `shelter_closed`)."""
    shelter = await service.change_occupancy(
        session=session, shelter_id=shelter_id, principal=principal, delta=body.delta, occupancy=body.occupancy
    )
    set_etag(response, shelter.version)
    return to_feature(shelter, coord_sys)
