from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.geo.coords import CoordSys
from app.geo.geojson import Feature, FeatureCollection, PointGeometry
from app.geo.input import PointIn
from app.shelters.models import ShelterLevel, ShelterStatus
from app.writes import CleanText, Code, PatchModel, TownshipCode


class ShelterProperties(BaseModel):
    code: str
    name: str
    level: ShelterLevel
    site_type: str
    capacity: int
    occupancy: int
    free_places: int
    area_m2: int | None
    status: ShelterStatus
    address: str
    township: str | None
    version: int


ShelterFeature = Feature[PointGeometry, ShelterProperties]
ShelterCollection = FeatureCollection[PointGeometry, ShelterProperties]


# ------------------------------------------------------------------------------------------- input

# People; the fixed shelter of the district holds 20,000, so a million is a generous ceiling that
# still keeps every sum far from the integer column's limit.
MAX_PEOPLE = 1_000_000
ShelterName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=160), CleanText]
SiteType = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), CleanText]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), CleanText]
People = Annotated[int, Field(ge=0, le=MAX_PEOPLE)]
AreaM2 = Annotated[int, Field(ge=0, le=100_000_000)]


class ShelterCreate(BaseModel):
    """A new shelter starts on standby and empty; open it with a PATCH of `status`."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: ShelterName
    level: ShelterLevel
    site_type: SiteType = ""
    capacity: People
    area_m2: AreaM2 | None = None
    address: Address = ""
    location: PointIn
    coord_sys: CoordSys = CoordSys.WGS84
    township: TownshipCode | None = None


class ShelterPatch(PatchModel):
    NULLABLE: ClassVar[frozenset[str]] = frozenset({"area_m2"})

    name: ShelterName | None = None
    level: ShelterLevel | None = None
    site_type: SiteType | None = None
    capacity: People | None = None
    area_m2: AreaM2 | None = None
    address: Address | None = None
    location: PointIn | None = None
    coord_sys: CoordSys = CoordSys.WGS84
    status: ShelterStatus | None = None
    occupancy: People | None = None


class OccupancyChange(BaseModel):
    """Check-in/check-out (`delta`: + arrivals, − departures) or a head count (`occupancy`)."""

    model_config = ConfigDict(extra="forbid")

    delta: Annotated[int, Field(ge=-MAX_PEOPLE, le=MAX_PEOPLE)] | None = None
    occupancy: People | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "OccupancyChange":
        if (self.delta is None) == (self.occupancy is None):
            raise ValueError('send exactly one of "delta" (check-in/check-out) or "occupancy" (a head count)')
        if self.delta == 0:
            raise ValueError("delta must not be 0")
        return self
