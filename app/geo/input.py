"""Places coming in: GeoJSON geometry plus `coord_sys`, converted once to WGS-84 at the edge."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator
from shapely.geometry import Polygon as ShapelyPolygon

from app.geo.coords import CoordSys, to_wgs84
from app.geo.geojson import Latitude, Longitude, point_wkt

# JSON numbers only: NaN and Infinity are refused (allow_inf_nan=False in Longitude/Latitude), and so
# are strings and booleans (strict): `true` would otherwise become 1.0 and "117.4" slip through.
Position = tuple[Annotated[Longitude, Strict()], Annotated[Latitude, Strict()]]


class PointIn(BaseModel):
    """A GeoJSON Point, [lon, lat]."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Point"]
    coordinates: Position

    def wgs84(self, coord_sys: CoordSys) -> tuple[float, float]:
        lon, lat = self.coordinates
        return to_wgs84(lon, lat, coord_sys)

    def wkt(self, coord_sys: CoordSys) -> str:
        return point_wkt(*self.wgs84(coord_sys))


class PolygonIn(BaseModel):
    """A GeoJSON Polygon: closed linear rings of 4+ positions, valid (no self-intersection)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Polygon"]
    coordinates: Annotated[
        list[Annotated[list[Position], Field(min_length=4, max_length=100_000)]], Field(min_length=1, max_length=100)
    ]

    @field_validator("coordinates")
    @classmethod
    def _closed_and_valid(cls, rings: list[list[Position]]) -> list[list[Position]]:
        for index, ring in enumerate(rings):
            if ring[0] != ring[-1]:
                raise ValueError(f"ring {index} is not closed: its first and last positions differ")
        polygon = ShapelyPolygon(rings[0], rings[1:])
        if not polygon.is_valid:
            raise ValueError("the polygon is not valid (self-intersecting or degenerate)")
        return rings

    def wgs84_coordinates(self, coord_sys: CoordSys) -> list[list[tuple[float, float]]]:
        return [[to_wgs84(lon, lat, coord_sys) for lon, lat in ring] for ring in self.coordinates]

    def wkt(self, coord_sys: CoordSys) -> str:
        shell, *holes = self.wgs84_coordinates(coord_sys)
        return f"SRID=4326;{ShapelyPolygon(shell, holes).wkt}"
