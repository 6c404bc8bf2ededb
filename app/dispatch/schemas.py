from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.geo.coords import CoordSys
from app.geo.geojson import Feature, FeatureCollection, PointGeometry
from app.geo.input import PointIn
from app.params import BIGINT_MAX
from app.teams.models import TeamKind, TeamStatus

TeamId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]


class TeamOption(BaseModel):
    id: int
    code: str
    name: str
    kind: TeamKind
    capabilities: list[str]
    headcount: int
    township: str | None
    need: str
    distance_m: int
    eta_s: int
    position_source: Literal["live", "base"]
    position_age_s: int | None
    location: PointGeometry


class ShelterOption(BaseModel):
    id: int
    code: str
    name: str
    level: str
    township: str | None
    distance_m: int
    capacity: int
    occupancy: int
    free_places: int
    location: PointGeometry


class StockOption(BaseModel):
    item: str
    name: str
    unit: str
    quantity: int


class DepotOption(BaseModel):
    id: int
    code: str
    name: str
    level: str
    township: str | None
    distance_m: int
    stock: list[StockOption]
    location: PointGeometry


class HelipadOption(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    distance_m: int
    location: PointGeometry


class Shortfall(BaseModel):
    need: str
    wanted: int
    found: int
    reasons: list[
        Literal[
            "none_available",
            "positions_stale",
            "beyond_range",
            "no_shelter_space",
            "not_enough_shelter_space",
            "no_depot_holds_items",
            "no_helipad",
        ]
    ]
    details: dict[str, Any] = {}


class Recommendation(BaseModel):
    incident_id: int | None
    type: str | None
    location: PointGeometry
    teams: list[TeamOption]
    shelters: list[ShelterOption]
    depots: list[DepotOption]
    helipad: HelipadOption | None
    aviation_eta_s: int | None
    shortfalls: list[Shortfall]
    eta_model: dict[str, Any]


class DispatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    team_ids: Annotated[list[TeamId], Field(min_length=1, max_length=50)]
    note: Annotated[str, Field(max_length=2000)] = ""


class DispatchOut(BaseModel):
    id: int
    incident_id: int
    team_id: int
    team_name: str
    team_status: TeamStatus
    dispatched_by: str
    note: str
    distance_m: int | None
    eta_s: int | None
    dispatched_at: datetime
    en_route_at: datetime | None
    on_scene_at: datetime | None
    returning_at: datetime | None
    released_at: datetime | None
    released_by: str | None
    turnout_s: int | None
    travel_s: int | None
    on_scene_s: int | None


class DispatchResult(BaseModel):
    incident_id: int
    incident_status: str
    incident_version: int
    dispatches: list[DispatchOut]


class TeamStatusRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    to: TeamStatus
    note: Annotated[str, Field(max_length=2000)] = ""
    # The phone may send where it is with the status change.
    location: PointIn | None = None
    coord_sys: CoordSys = CoordSys.WGS84


class NearestProperties(BaseModel):
    name: str
    code: str
    township: str | None
    distance_m: int
    eta_s: int | None = None
    position_source: str | None = None
    kind: str | None = None
    status: str | None = None
    capabilities: list[str] | None = None
    free_places: int | None = None
    stock: list[StockOption] | None = None


NearestCollection = FeatureCollection[PointGeometry, NearestProperties]
NearestFeature = Feature[PointGeometry, NearestProperties]


class SupplyAllocation(BaseModel):
    """Send items from a depot to the incident (or to a shelter serving it): a ledger issue."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    depot_id: TeamId
    item: Annotated[str, Field(pattern=r"^\d{3}$")]
    quantity: Annotated[int, Field(ge=1, le=100_000_000)]
    shelter_id: TeamId | None = None
    note: Annotated[str, Field(max_length=2000)] = ""


class SupplyAllocationOut(BaseModel):
    incident_id: int
    depot_id: int
    item: str
    quantity: int
    shelter_id: int | None
    ledger_entry_id: int
    balance_after: int
