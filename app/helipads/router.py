from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.auth import CurrentPrincipal
from app.db import SessionDep
from app.errors import NotFound
from app.geo.coords import CoordSys
from app.geo.geojson import GeoJSONResponse, ListQuery, OutCoordSys, collection, list_query, point_geometry
from app.helipads import service
from app.helipads.models import Helipad, HelipadKind
from app.helipads.schemas import HelipadCollection, HelipadFeature, HelipadProperties
from app.params import IdPath

router = APIRouter(prefix="/helipads", tags=["helipads"])


def to_feature(h: Helipad, coord_sys: CoordSys) -> HelipadFeature:
    return HelipadFeature(
        id=h.id,
        geometry=point_geometry(h.location, coord_sys),
        properties=HelipadProperties(
            code=h.code,
            name=h.name,
            name_en=h.name_en,
            kind=h.kind,
            status=h.status,
            township=h.township_code,
            version=h.version,
        ),
    )


@router.get("", response_model=HelipadCollection, response_class=GeoJSONResponse)
async def list_helipads(
    request: Request,
    session: SessionDep,
    _: CurrentPrincipal,
    coord_sys: OutCoordSys,
    query: Annotated[ListQuery, Depends(list_query)],
    kind: HelipadKind | None = None,
) -> HelipadCollection:
    helipads, matched = await service.list_helipads(session=session, query=query, kind=kind)
    result: HelipadCollection = collection(
        HelipadCollection, request, query, [to_feature(h, coord_sys) for h in helipads], matched
    )
    return result


@router.get("/{helipad_id}", response_model=HelipadFeature, response_class=GeoJSONResponse)
async def get_helipad(
    helipad_id: IdPath, session: SessionDep, _: CurrentPrincipal, coord_sys: OutCoordSys
) -> HelipadFeature:
    helipad = await service.get_helipad(session=session, helipad_id=helipad_id)
    if helipad is None:
        raise NotFound(f"no helipad has the id {helipad_id}", code="helipad_not_found")
    return to_feature(helipad, coord_sys)
