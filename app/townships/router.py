from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.auth import CurrentPrincipal
from app.db import SessionDep
from app.errors import NotFound
from app.geo.coords import CoordSys
from app.geo.geojson import (
    Feature,
    GeoJSONResponse,
    ListQuery,
    MultiPolygonGeometry,
    OutCoordSys,
    collection,
    list_query,
    multipolygon_geometry,
)
from app.geo.geojson import lon_lat as to_lon_lat
from app.townships import service
from app.townships.models import Township
from app.townships.schemas import TownshipCollection, TownshipProperties

router = APIRouter(prefix="/townships", tags=["townships"])

TownshipFeature = Feature[MultiPolygonGeometry, TownshipProperties]


def to_feature(t: Township, coord_sys: CoordSys) -> TownshipFeature:
    return TownshipFeature(
        id=t.code,
        geometry=multipolygon_geometry(t.boundary, coord_sys),
        properties=TownshipProperties(
            code=t.code, name=t.name, kind=t.kind, township=t.code, seat=to_lon_lat(t.seat, coord_sys)
        ),
    )


@router.get("", response_model=TownshipCollection, response_class=GeoJSONResponse)
async def list_townships(
    request: Request,
    session: SessionDep,
    _: CurrentPrincipal,
    coord_sys: OutCoordSys,
    query: Annotated[ListQuery, Depends(list_query)],
) -> TownshipCollection:
    townships, matched = await service.list_townships(session=session, query=query)
    result: TownshipCollection = collection(
        TownshipCollection, request, query, [to_feature(t, coord_sys) for t in townships], matched
    )
    return result


@router.get("/{code}", response_model=TownshipFeature, response_class=GeoJSONResponse)
async def get_township(code: str, session: SessionDep, _: CurrentPrincipal, coord_sys: OutCoordSys) -> TownshipFeature:
    township = await service.get_township(session=session, code=code)
    if township is None:
        raise NotFound(f"no township has the code {code}", code="township_not_found")
    return to_feature(township, coord_sys)
