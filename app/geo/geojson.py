"""GeoJSON in and out (RFC 7946, [lon, lat], WGS-84) and the OGC API Features list shape."""

import math
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from geoalchemy2.elements import WKBElement
from geoalchemy2.shape import to_shape
from pydantic import BaseModel, ConfigDict, Field

from app.errors import BadRequest
from app.geo.coords import CoordSys, from_wgs84

P = TypeVar("P", bound=BaseModel)
G = TypeVar("G")

Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]


class GeoJSONResponse(JSONResponse):
    media_type = "application/geo+json"


class PointGeometry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Point"]
    coordinates: tuple[Longitude, Latitude]


class MultiPolygonGeometry(BaseModel):
    type: Literal["MultiPolygon"]
    coordinates: list[list[list[tuple[float, float]]]]


class Link(BaseModel):
    href: str
    rel: str
    type: str = "application/geo+json"


class Feature(BaseModel, Generic[G, P]):
    type: Literal["Feature"] = "Feature"
    id: str | int
    geometry: G
    properties: P


class FeatureCollection(BaseModel, Generic[G, P]):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature[G, P]]
    numberMatched: int
    numberReturned: int
    links: list[Link]


def lon_lat(value: WKBElement | Any, coord_sys: CoordSys = CoordSys.WGS84) -> tuple[float, float]:
    """A stored WGS-84 point as [lon, lat] in the system the client asked for."""
    shape = to_shape(value)
    lon, lat = from_wgs84(shape.x, shape.y, coord_sys)
    return (round(lon, 7), round(lat, 7))


def point_geometry(value: WKBElement | Any, coord_sys: CoordSys = CoordSys.WGS84) -> PointGeometry:
    return PointGeometry(type="Point", coordinates=lon_lat(value, coord_sys))


def multipolygon_geometry(value: WKBElement | Any, coord_sys: CoordSys = CoordSys.WGS84) -> MultiPolygonGeometry:
    shape = to_shape(value)
    polygons = list(shape.geoms) if shape.geom_type == "MultiPolygon" else [shape]

    def convert(x: float, y: float) -> tuple[float, float]:
        lon, lat = from_wgs84(x, y, coord_sys)
        return (round(lon, 7), round(lat, 7))

    return MultiPolygonGeometry(
        type="MultiPolygon",
        coordinates=[
            [[convert(x, y) for x, y in ring.coords] for ring in (p.exterior, *p.interiors)] for p in polygons
        ],
    )


async def output_coord_sys(
    coord_sys: Annotated[
        CoordSys, Query(description="answer in this coordinate system (wgs84 default; gcj02 for Amap/Tencent)")
    ] = CoordSys.WGS84,
) -> CoordSys:
    return coord_sys


OutCoordSys = Annotated[CoordSys, Depends(output_coord_sys)]


def point_wkt(lon: float, lat: float) -> str:
    return f"SRID=4326;POINT({lon!r} {lat!r})"


BBox = tuple[float, float, float, float]


def parse_bbox(raw: str | None) -> BBox | None:
    """`minLon,minLat,maxLon,maxLat` as in OGC API Features; rejected early when malformed."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise BadRequest("bbox must be minLon,minLat,maxLon,maxLat", code="invalid_bbox", details={"bbox": raw})
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BadRequest("bbox values must be numbers", code="invalid_bbox", details={"bbox": raw}) from None
    min_lon, min_lat, max_lon, max_lat = values
    if not all(math.isfinite(v) for v in values):
        raise BadRequest("bbox values must be finite", code="invalid_bbox", details={"bbox": raw})
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise BadRequest(
            "bbox must satisfy -180 <= minLon <= maxLon <= 180 and -90 <= minLat <= maxLat <= 90",
            code="invalid_bbox",
            details={"bbox": raw},
        )
    return (min_lon, min_lat, max_lon, max_lat)


class ListQuery(BaseModel):
    """Filters every feature list shares."""

    bbox: BBox | None = None
    township: str | None = None
    limit: int = 100
    offset: int = 0


async def list_query(
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (WGS-84)")] = None,
    township: Annotated[str | None, Query(pattern=r"^\d{9}$", description="9-digit township code")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ListQuery:
    return ListQuery(bbox=parse_bbox(bbox), township=township, limit=limit, offset=offset)


def page_links(request: Request, *, limit: int, offset: int, returned: int, matched: int) -> list[Link]:
    links = [Link(href=str(request.url), rel="self")]
    if offset + returned < matched:
        links.append(Link(href=str(request.url.include_query_params(offset=offset + limit, limit=limit)), rel="next"))
    if offset > 0:
        links.append(
            Link(href=str(request.url.include_query_params(offset=max(0, offset - limit), limit=limit)), rel="prev")
        )
    return links


def collection(
    model: type[FeatureCollection[Any, Any]],
    request: Request,
    query: ListQuery,
    features: list[Any],
    matched: int,
) -> Any:
    """A page of features in the OGC API Features shape."""
    return model(
        features=features,
        numberMatched=matched,
        numberReturned=len(features),
        links=page_links(request, limit=query.limit, offset=query.offset, returned=len(features), matched=matched),
    )
