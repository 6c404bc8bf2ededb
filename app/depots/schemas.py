import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.depots.models import DepotLevel, LedgerKind
from app.geo.coords import CoordSys
from app.geo.geojson import Feature, FeatureCollection, Link, PointGeometry
from app.geo.input import PointIn
from app.params import BIGINT_MAX
from app.writes import CleanText, Code, PatchModel, TownshipCode


class StockLine(BaseModel):
    item: str
    name: str
    unit: str
    quantity: int


class DepotProperties(BaseModel):
    code: str
    name: str
    name_en: str
    level: DepotLevel
    township: str | None
    stock: list[StockLine]
    version: int


DepotFeature = Feature[PointGeometry, DepotProperties]
DepotCollection = FeatureCollection[PointGeometry, DepotProperties]


# ------------------------------------------------------------------------------------------- input

DepotName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=160), CleanText]
DepotNameEn = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), CleanText]
ItemCode = Annotated[str, StringConstraints(pattern=r"^\d{3}$")]
# One movement moves at most a billion units: far above any real delivery, far below the bigint level.
MAX_QUANTITY = 1_000_000_000
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), CleanText]
DepotId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]


class DepotCreate(BaseModel):
    """A new depot, empty: stock enters only by ledger movements."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: DepotName
    name_en: DepotNameEn = ""
    level: DepotLevel
    location: PointIn
    coord_sys: CoordSys = CoordSys.WGS84
    township: TownshipCode | None = None


class DepotPatch(PatchModel):
    """The depot's own fields; its stock changes only by movements."""

    name: DepotName | None = None
    name_en: DepotNameEn | None = None
    level: DepotLevel | None = None
    location: PointIn | None = None
    coord_sys: CoordSys = CoordSys.WGS84


class _Movement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: ItemCode
    reason: Reason


class Receipt(_Movement):
    kind: Literal["receipt"]
    quantity: Quantity

    @property
    def delta(self) -> int:
        return self.quantity


class Issue(_Movement):
    kind: Literal["issue"]
    quantity: Quantity

    @property
    def delta(self) -> int:
        return -self.quantity


class Adjustment(_Movement):
    """A correction after a count: a signed `delta` (never 0)."""

    kind: Literal["adjustment"]
    delta: Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment must change the quantity: delta must not be 0")
        return value


Movement = Annotated[Receipt | Issue | Adjustment, Field(discriminator="kind")]


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_depot_id: DepotId
    item: ItemCode
    quantity: Quantity
    reason: Reason


class LedgerEntryOut(BaseModel):
    id: int
    depot_id: int
    item: str
    delta: int
    balance_after: int
    kind: LedgerKind
    reason: str
    actor: str
    transfer_id: uuid.UUID | None
    created_at: datetime


class TransferOut(BaseModel):
    transfer_id: uuid.UUID
    # The issue from the source and the receipt at the destination.
    entries: list[LedgerEntryOut]


class LedgerPage(BaseModel):
    entries: list[LedgerEntryOut]
    numberReturned: int
    links: list[Link]
