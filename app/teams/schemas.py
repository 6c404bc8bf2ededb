from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from app.geo.coords import CoordSys
from app.geo.geojson import Feature, FeatureCollection, PointGeometry
from app.geo.input import PointIn
from app.params import BIGINT_MAX
from app.teams.models import Capability, TeamKind, TeamStatus
from app.writes import CleanText, Code, PatchModel, Phone, TownshipCode


class TeamProperties(BaseModel):
    code: str
    name: str
    name_en: str
    kind: TeamKind
    capabilities: list[str]
    headcount: int
    status: TeamStatus
    township: str | None
    base: tuple[float, float]
    position: tuple[float, float] | None
    position_at: datetime | None
    shareable: bool
    version: int


TeamFeature = Feature[PointGeometry, TeamProperties]
TeamCollection = FeatureCollection[PointGeometry, TeamProperties]


# ------------------------------------------------------------------------------------------- input

TeamName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120), CleanText]
TeamNameEn = Annotated[str, StringConstraints(strip_whitespace=True, max_length=160), CleanText]
Headcount = Annotated[int, Field(ge=0, le=100_000)]
Capabilities = Annotated[list[Capability], Field(min_length=1, max_length=len(Capability))]
TeamId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]

# A live position may arrive a little early (clock skew of the device) or late (buffered while out of
# coverage), but not from the future or from another day: those are broken clocks, refused with a 422.
MAX_CLOCK_AHEAD = timedelta(minutes=1)
MAX_POSITION_AGE = timedelta(hours=24)


def _distinct(capabilities: list[Capability]) -> list[Capability]:
    if len(set(capabilities)) != len(capabilities):
        raise ValueError("capabilities must not repeat")
    return capabilities


def _check_recent(recorded_at: datetime | None) -> datetime | None:
    if recorded_at is None:
        return None
    now = datetime.now(UTC)
    if recorded_at > now + MAX_CLOCK_AHEAD:
        raise ValueError(f"recorded_at is in the future (more than {MAX_CLOCK_AHEAD.seconds} s ahead of the server)")
    if recorded_at < now - MAX_POSITION_AGE:
        raise ValueError(f"recorded_at is older than {MAX_POSITION_AGE.total_seconds() / 3600:g} h")
    return recorded_at


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name: TeamName
    name_en: TeamNameEn = ""
    kind: TeamKind
    capabilities: Capabilities
    headcount: Headcount
    base: PointIn
    coord_sys: CoordSys = CoordSys.WGS84
    # Optional: where the client believes the base is; it must agree with the point.
    township: TownshipCode | None = None
    shareable: bool = False
    phone: Phone = ""

    @field_validator("capabilities")
    @classmethod
    def _distinct_capabilities(cls, value: list[Capability]) -> list[Capability]:
        return _distinct(value)


class TeamPatch(PatchModel):
    """The editable fields of a team. Its status moves only through dispatch; its code is its key."""

    name: TeamName | None = None
    name_en: TeamNameEn | None = None
    kind: TeamKind | None = None
    capabilities: Capabilities | None = None
    headcount: Headcount | None = None
    base: PointIn | None = None
    coord_sys: CoordSys = CoordSys.WGS84
    shareable: bool | None = None
    phone: Phone | None = None

    @field_validator("capabilities")
    @classmethod
    def _distinct_capabilities(cls, value: list[Capability] | None) -> list[Capability] | None:
        return None if value is None else _distinct(value)


class PositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location: PointIn
    coord_sys: CoordSys = CoordSys.WGS84
    # When the fix was taken (with its UTC offset); the time of arrival when left out.
    recorded_at: AwareDatetime | None = None

    @field_validator("recorded_at")
    @classmethod
    def _recent(cls, value: datetime | None) -> datetime | None:
        return _check_recent(value)


class BatchPosition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: TeamId
    location: PointIn
    coord_sys: CoordSys = CoordSys.WGS84
    recorded_at: AwareDatetime

    @field_validator("recorded_at")
    @classmethod
    def _recent(cls, value: datetime) -> datetime:
        return _check_recent(value) or value


MAX_BATCH = 500


class PositionBatch(BaseModel):
    """Up to 500 fixes, as `{"positions": [...]}` or as the bare array."""

    model_config = ConfigDict(extra="forbid")

    positions: Annotated[list[BatchPosition], Field(min_length=1, max_length=MAX_BATCH)]

    @model_validator(mode="before")
    @classmethod
    def _bare_array(cls, value: Any) -> Any:
        return {"positions": value} if isinstance(value, list) else value


class PositionResult(TeamFeature):
    """The team as it now stands, and whether this fix became its live position (false when the
    stored one is newer: positions are last-writer-by-time, not by arrival)."""

    applied: bool


class BatchPositionResult(BaseModel):
    team_id: int
    applied: bool
    # Why a fix was not applied: a newer one is stored, or a newer one for the team is in the batch.
    reason: Literal["older_than_stored", "superseded_in_batch"] | None = None


class BatchResult(BaseModel):
    received: int
    applied: int
    results: list[BatchPositionResult]
