from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import CurrentPrincipal, Writer
from app.db import SessionDep
from app.depots import service
from app.depots.models import Depot, DepotLevel, LedgerKind, StockLedgerEntry
from app.depots.schemas import (
    DepotCollection,
    DepotCreate,
    DepotFeature,
    DepotPatch,
    DepotProperties,
    LedgerEntryOut,
    LedgerPage,
    Movement,
    StockLine,
    TransferIn,
    TransferOut,
)
from app.errors import NotFound
from app.geo.coords import CoordSys
from app.geo.geojson import GeoJSONResponse, Link, ListQuery, OutCoordSys, collection, list_query, point_geometry
from app.params import BIGINT_MAX, IdPath
from app.writes import expected_version, if_match_header, set_etag

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
async def get_depot(
    depot_id: IdPath, response: Response, session: SessionDep, _: CurrentPrincipal, coord_sys: OutCoordSys
) -> DepotFeature:
    depot = await service.get_depot(session=session, depot_id=depot_id)
    if depot is None:
        raise NotFound(f"no depot has the id {depot_id}", code="depot_not_found")
    set_etag(response, depot.version)
    return await _feature(session, depot, coord_sys)


async def _feature(session: AsyncSession, depot: Depot, coord_sys: CoordSys) -> DepotFeature:
    stock = await service.stock_of(session=session, depot_ids=[depot.id])
    return to_feature(depot, stock.get(depot.id, []), coord_sys)


def _entry(e: StockLedgerEntry) -> LedgerEntryOut:
    return LedgerEntryOut(
        id=e.id,
        depot_id=e.depot_id,
        item=e.item_code,
        delta=e.delta,
        balance_after=e.balance_after,
        kind=e.kind,
        reason=e.reason,
        actor=e.actor,
        transfer_id=e.transfer_id,
        created_at=e.created_at,
    )


IfMatch = Annotated[int | None, Depends(if_match_header)]


@router.post("", status_code=201, response_model=DepotFeature, response_class=GeoJSONResponse)
async def create_depot(
    body: DepotCreate, response: Response, session: SessionDep, principal: Writer, coord_sys: OutCoordSys
) -> DepotFeature:
    """Register a depot (empty; stock enters by movements) in the township that holds its point."""
    depot = await service.create_depot(session=session, data=body, principal=principal)
    set_etag(response, depot.version)
    response.headers["Location"] = f"/api/v1/depots/{depot.id}"
    return await _feature(session, depot, coord_sys)


@router.patch("/{depot_id}", response_model=DepotFeature, response_class=GeoJSONResponse)
async def update_depot(
    depot_id: IdPath,
    body: DepotPatch,
    response: Response,
    session: SessionDep,
    principal: Writer,
    if_match: IfMatch,
    coord_sys: OutCoordSys,
) -> DepotFeature:
    """Edit a depot's own fields made against a known version (If-Match or `version`; stale: 409)."""
    depot = await service.update_depot(
        session=session,
        depot_id=depot_id,
        patch=body,
        expected_version=expected_version(if_match, body.version),
        principal=principal,
    )
    set_etag(response, depot.version)
    return await _feature(session, depot, coord_sys)


@router.post("/{depot_id}/movements", status_code=201, response_model=LedgerEntryOut)
async def record_movement(
    depot_id: IdPath, body: Annotated[Movement, Body()], session: SessionDep, principal: Writer
) -> LedgerEntryOut:
    """A receipt or issue of a positive `quantity`, or an adjustment by a signed `delta`, with its
    reason; the ledger entry it wrote (with the balance it produced). An issue never takes the level
    below zero: 409 `insufficient_stock` with what is available."""
    entry = await service.move_stock(
        session=session,
        depot_id=depot_id,
        item_code=body.item,
        delta=body.delta,
        kind=LedgerKind(body.kind),
        reason=body.reason,
        principal=principal,
    )
    return _entry(entry)


@router.post("/{depot_id}/transfers", status_code=201, response_model=TransferOut)
async def transfer(depot_id: IdPath, body: TransferIn, session: SessionDep, principal: Writer) -> TransferOut:
    """Move stock to another depot: two ledger entries sharing a transfer id, both or neither."""
    transfer_id, legs = await service.transfer_stock(
        session=session,
        from_depot_id=depot_id,
        to_depot_id=body.to_depot_id,
        item_code=body.item,
        quantity=body.quantity,
        reason=body.reason,
        principal=principal,
    )
    return TransferOut(transfer_id=transfer_id, entries=[_entry(e) for e in legs])


@router.get("/{depot_id}/ledger", response_model=LedgerPage)
async def ledger(
    depot_id: IdPath,
    request: Request,
    session: SessionDep,
    _: CurrentPrincipal,
    item: Annotated[str | None, Query(pattern=r"^\d{3}$", description="only this item")] = None,
    kind: LedgerKind | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX, description="entries older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LedgerPage:
    """A depot's ledger, newest first, paged by `before_id` (the `next` link carries it)."""
    entries, more = await service.ledger_page(
        session=session, depot_id=depot_id, item=item, kind=kind, before_id=before_id, limit=limit
    )
    links = [Link(href=str(request.url), rel="self", type="application/json")]
    if more:
        next_url = request.url.include_query_params(before_id=entries[-1].id, limit=limit)
        links.append(Link(href=str(next_url), rel="next", type="application/json"))
    return LedgerPage(entries=[_entry(e) for e in entries], numberReturned=len(entries), links=links)
