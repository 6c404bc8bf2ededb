from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.auth import CurrentPrincipal
from app.db import SessionDep
from app.errors import NotFound
from app.geo.coords import CoordSys
from app.geo.geojson import GeoJSONResponse, ListQuery, OutCoordSys, collection, list_query, point_geometry
from app.params import IdPath
from app.shelters import service
from app.shelters.models import Shelter, ShelterLevel, ShelterStatus
from app.shelters.schemas import ShelterCollection, ShelterFeature, ShelterProperties

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
    shelter_id: IdPath, session: SessionDep, _: CurrentPrincipal, coord_sys: OutCoordSys
) -> ShelterFeature:
    shelter = await service.get_shelter(session=session, shelter_id=shelter_id)
    if shelter is None:
        raise NotFound(f"no shelter has the id {shelter_id}", code="shelter_not_found")
    return to_feature(shelter, coord_sys)
