from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth import CurrentPrincipal
from app.db import SessionDep
from app.depots import service
from app.depots.models import Depot, DepotLevel
from app.depots.schemas import DepotCollection, DepotFeature, DepotProperties, StockLine
from app.errors import NotFound
from app.geo.coords import CoordSys
from app.geo.geojson import GeoJSONResponse, ListQuery, OutCoordSys, collection, list_query, point_geometry
from app.params import IdPath

router = APIRouter(prefix="/depots", tags=["depots"])


def to_feature(d: Depot, stock: list[StockLine], coord_sys: CoordSys) -> DepotFeature:
    return DepotFeature(
        id=d.id,
        geometry=point_geometry(d.location, coord_sys),
        properties=DepotProperties(
            code=d.code,
            name=d.name,
            name_en=d.name_en,
            level=d.level,
            township=d.township_code,
            stock=stock,
            version=d.version,
        ),
    )


@router.get("", response_model=DepotCollection, response_class=GeoJSONResponse)
async def list_depots(
    request: Request,
    session: SessionDep,
    _: CurrentPrincipal,
    coord_sys: OutCoordSys,
    query: Annotated[ListQuery, Depends(list_query)],
    level: DepotLevel | None = None,
    item: Annotated[str | None, Query(pattern=r"^\d{3}$", description="only depots holding this item")] = None,
) -> DepotCollection:
    depots, matched = await service.list_depots(session=session, query=query, level=level, item=item)
    stock = await service.stock_of(session=session, depot_ids=[d.id for d in depots])
    features = [to_feature(d, stock.get(d.id, []), coord_sys) for d in depots]
    result: DepotCollection = collection(DepotCollection, request, query, features, matched)
    return result


@router.get("/{depot_id}", response_model=DepotFeature, response_class=GeoJSONResponse)
async def get_depot(depot_id: IdPath, session: SessionDep, _: CurrentPrincipal, coord_sys: OutCoordSys) -> DepotFeature:
    depot = await service.get_depot(session=session, depot_id=depot_id)
    if depot is None:
        raise NotFound(f"no depot has the id {depot_id}", code="depot_not_found")
    stock = await service.stock_of(session=session, depot_ids=[depot.id])
    return to_feature(depot, stock.get(depot.id, []), coord_sys)
