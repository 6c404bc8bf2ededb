from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.geo.coords import CoordSys
from app.geo.geojson import Feature, FeatureCollection, PointGeometry
from app.geo.input import PointIn
from app.incidents.models import IncidentCategory, IncidentStatus
from app.incidents.types import IncidentType

SeverityLevel = Literal["I", "II", "III", "IV"]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: IncidentType
    location: PointIn
    coord_sys: CoordSys = CoordSys.WGS84
    severity: SeverityLevel | None = None
    title: Text200
    description: Annotated[str, Field(max_length=10_000)] = ""
    address: Annotated[str, Field(max_length=300)] = ""
    dead: Count = 0
    injured: Count = 0
    missing: Count = 0
    trapped: Count = 0
    people_affected: Count = 0
    exercise: bool = False
    # Must be true to report a point outside the district (an incident across the border).
    cross_border: bool = False
    reported_at: AwareDatetime | None = None


class IncidentUpdate(BaseModel):
    """Fields a PATCH may change; `version` (or the If-Match header) guards against lost updates."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: Annotated[int, Field(ge=1, le=2_000_000_000)] | None = None
    type: IncidentType | None = None
    location: PointIn | None = None
    coord_sys: CoordSys = CoordSys.WGS84
    severity: SeverityLevel | None = None
    title: Text200 | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    address: Annotated[str, Field(max_length=300)] | None = None
    dead: Count | None = None
    injured: Count | None = None
    missing: Count | None = None
    trapped: Count | None = None
    people_affected: Count | None = None
    cross_border: bool | None = None


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    to: IncidentStatus
    note: Annotated[str, Field(max_length=2000)] = ""
    version: Annotated[int, Field(ge=1, le=2_000_000_000)] | None = None


class Casualties(BaseModel):
    dead: int
    injured: int
    missing: int
    trapped: int


class IncidentProperties(BaseModel):
    code: str
    name: str
    title: str
    category: IncidentCategory
    type: IncidentType
    type_code: str
    type_name: str
    severity: SeverityLevel | None
    severity_name: str | None
    status: IncidentStatus
    township: str | None
    cross_border: bool
    address: str
    description: str
    casualties: Casualties
    people_affected: int
    exercise: bool
    reported_by: str
    reported_at: datetime
    closed_at: datetime | None
    updated_at: datetime
    version: int


class IncidentOut(IncidentProperties):
    """A single incident: flat, with its point as GeoJSON (`location`)."""

    id: int
    location: PointGeometry


IncidentFeature = Feature[PointGeometry, IncidentProperties]
IncidentCollection = FeatureCollection[PointGeometry, IncidentProperties]


class TimelineEntry(BaseModel):
    seq: int
    ts: datetime
    topic: str
    actor: str
    data: dict[str, Any]


class Timeline(BaseModel):
    incident_id: int
    code: str
    entries: list[TimelineEntry]
