from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.auth import CurrentPrincipal, Writer
from app.db import SessionDep
from app.errors import NotFound
from app.geo.coords import CoordSys
from app.geo.geojson import GeoJSONResponse, ListQuery, OutCoordSys, collection, list_query, point_geometry
from app.helipads import service
from app.helipads.models import Helipad, HelipadKind
from app.helipads.schemas import HelipadCollection, HelipadCreate, HelipadFeature, HelipadPatch, HelipadProperties
from app.params import IdPath
from app.writes import expected_version, if_match_header, set_etag

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
    helipad_id: IdPath, response: Response, session: SessionDep, _: CurrentPrincipal, coord_sys: OutCoordSys
) -> HelipadFeature:
    helipad = await service.get_helipad(session=session, helipad_id=helipad_id)
    if helipad is None:
        raise NotFound(f"no helipad has the id {helipad_id}", code="helipad_not_found")
    set_etag(response, helipad.version)
    return to_feature(helipad, coord_sys)


IfMatch = Annotated[int | None, Depends(if_match_header)]


@router.post("", status_code=201, response_model=HelipadFeature, response_class=GeoJSONResponse)
async def create_helipad(
    body: HelipadCreate, response: Response, session: SessionDep, principal: Writer, coord_sys: OutCoordSys
) -> HelipadFeature:
    """Register a helipad in the township that holds its point."""
    helipad = await service.create_helipad(session=session, data=body, principal=principal)
    set_etag(response, helipad.version)
    response.headers["Location"] = f"/api/v1/helipads/{helipad.id}"
    return to_feature(helipad, coord_sys)


@router.patch("/{helipad_id}", response_model=HelipadFeature, response_class=GeoJSONResponse)
async def update_helipad(
    helipad_id: IdPath,
    body: HelipadPatch,
    response: Response,
    session: SessionDep,
    principal: Writer,
    if_match: IfMatch,
    coord_sys: OutCoordSys,
) -> HelipadFeature:
    """Edit a helipad (e.g. `status` usable/unusable) made against a known version (If-Match or
    `version`; stale: 409 `version_conflict`)."""
    helipad = await service.update_helipad(
        session=session,
        helipad_id=helipad_id,
        patch=body,
        expected_version=expected_version(if_match, body.version),
        principal=principal,
    )
    set_etag(response, helipad.version)
    return to_feature(helipad, coord_sys)
