from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from app.geo.coords import CoordSys
from app.geo.geojson import Feature, FeatureCollection, PointGeometry
from app.geo.input import PointIn
from app.helipads.models import HelipadKind, HelipadStatus
from app.writes import CleanText, Code, PatchModel, TownshipCode


class HelipadProperties(BaseModel):
    code: str
    name: str
    name_en: str
    kind: HelipadKind
    status: HelipadStatus
    township: str | None
    version: int


HelipadFeature = Feature[PointGeometry, HelipadProperties]
HelipadCollection = FeatureCollection[PointGeometry, HelipadProperties]


# ------------------------------------------------------------------------------------------- input

HelipadName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=160), CleanText]
HelipadNameEn = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), CleanText]


class HelipadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name: HelipadName
    name_en: HelipadNameEn = ""
    kind: HelipadKind
    status: HelipadStatus = HelipadStatus.USABLE
    location: PointIn
    coord_sys: CoordSys = CoordSys.WGS84
    township: TownshipCode | None = None


class HelipadPatch(PatchModel):
    name: HelipadName | None = None
    name_en: HelipadNameEn | None = None
    kind: HelipadKind | None = None
    # unusable: weather, damage or an obstacle; dispatch then looks for another pad.
    status: HelipadStatus | None = None
    location: PointIn | None = None
    coord_sys: CoordSys = CoordSys.WGS84
