"""Loading the Jizhou seeds (`python -m app seed`) and a user's own data (`python -m app import`).

Both go through the domains' services, by natural key, in one transaction: a second run with the
same files changes nothing; a changed file updates exactly the rows it names. Every inserted or
updated row gets its event, so the audit trail shows what a seed or import did.
"""

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from shapely.geometry import MultiPolygon, shape
from sqlalchemy.ext.asyncio import AsyncSession

from app.depots import service as depot_service
from app.depots.models import DepotLevel, ItemCategory, LedgerKind
from app.events import service as event_service
from app.geo.geojson import Latitude, Longitude, point_wkt
from app.helipads import service as helipad_service
from app.helipads.models import HelipadKind
from app.partners import service as partner_service
from app.shelters import service as shelter_service
from app.shelters.models import ShelterLevel
from app.teams import service as team_service
from app.teams.models import Capability, TeamKind
from app.townships import service as township_service
from app.townships.models import TownshipKind
from app.upsert import UpsertResult

SEEDS_DIR = Path(__file__).resolve().parents[1] / "seeds"
SEED_ACTOR = "system:seed"
IMPORT_ACTOR = "system:import"


class SeedError(Exception):
    """A seed or import file is wrong; nothing of it has been written."""


class ResourceKind(StrEnum):
    TEAMS = "teams"
    SHELTERS = "shelters"
    DEPOTS = "depots"
    HELIPADS = "helipads"


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=160)
    lon: Longitude
    lat: Latitude
    township: str | None = Field(default=None, pattern=r"^\d{9}$")


class TeamRecord(_Record):
    name_en: str = ""
    kind: TeamKind
    capabilities: list[Capability] = Field(min_length=1)
    headcount: int = Field(ge=0, le=100_000)
    shareable: bool = False
    phone: str = ""

    @field_validator("capabilities", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return [v for v in value.split(";") if v] if isinstance(value, str) else value


class ShelterRecord(_Record):
    level: ShelterLevel
    capacity: int = Field(ge=0, le=1_000_000)
    area_m2: int | None = Field(default=None, ge=0)
    site_type: str = ""
    address: str = ""


class StockRecord(BaseModel):
    item: str = Field(pattern=r"^\d{3}$")
    quantity: int = Field(ge=0)


class DepotRecord(_Record):
    name_en: str = ""
    level: DepotLevel
    stock: list[StockRecord] = []

    @field_validator("stock", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        # CSV form: "101:6000;102:30000"
        if isinstance(value, str):
            return [{"item": i, "quantity": q} for i, q in (p.split(":", 1) for p in value.split(";") if p)]
        return value


class HelipadRecord(_Record):
    name_en: str = ""
    kind: HelipadKind


RECORD_TYPES: dict[ResourceKind, type[_Record]] = {
    ResourceKind.TEAMS: TeamRecord,
    ResourceKind.SHELTERS: ShelterRecord,
    ResourceKind.DEPOTS: DepotRecord,
    ResourceKind.HELIPADS: HelipadRecord,
}


@dataclass
class LoadReport:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, kind: str, result: UpsertResult) -> None:
        self.counts[kind] = {
            "inserted": len(result.inserted),
            "updated": len(result.updated),
            "unchanged": result.unchanged,
        }

    @property
    def changed(self) -> int:
        return sum(c["inserted"] + c["updated"] for c in self.counts.values())


def _read_features(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("type") != "FeatureCollection":
        raise SeedError(f"{path}: not a GeoJSON FeatureCollection")
    return list(data["features"])


def read_records(path: Path, kind: ResourceKind) -> list[_Record]:
    """GeoJSON Point features (properties hold the fields) or CSV with lon and lat columns."""
    raw: list[dict[str, Any]]
    if path.suffix.lower() in (".geojson", ".json"):
        raw = []
        for feature in _read_features(path):
            geometry = feature.get("geometry") or {}
            if geometry.get("type") != "Point":
                raise SeedError(f"{path}: every feature must be a Point, got {geometry.get('type')}")
            lon, lat = geometry["coordinates"][:2]
            raw.append({**feature.get("properties", {}), "lon": lon, "lat": lat})
    elif path.suffix.lower() == ".csv":
        raw = [dict(row) for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))]
    else:
        raise SeedError(f"{path}: use .geojson or .csv")
    record_type = RECORD_TYPES[kind]
    records: list[_Record] = []
    errors: list[str] = []
    for index, item in enumerate(raw):
        try:
            records.append(record_type.model_validate(item))
        except ValidationError as exc:
            errors.append(f"record {index} ({item.get('code', '?')}): {exc.errors(include_url=False)}")
    codes = [r.code for r in records]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        errors.append(f"duplicate codes: {duplicates}")
    if errors:
        raise SeedError(f"{path}: " + "; ".join(errors[:20]))
    return records


async def _resolve_townships(session: AsyncSession, records: Iterable[_Record], source: str) -> dict[str, str]:
    """The township of every record's point; a point outside the district or a township that
    disagrees with the file is an error."""
    townships: dict[str, str] = {}
    errors = []
    for r in records:
        derived = await township_service.township_for_point(session=session, lon=r.lon, lat=r.lat)
        if derived is None:
            errors.append(f"{r.code} at ({r.lon}, {r.lat}) is outside the district")
        elif r.township and r.township != derived:
            errors.append(f"{r.code} says township {r.township} but its point lies in {derived}")
        else:
            townships[r.code] = derived
    if errors:
        raise SeedError(f"{source}: " + "; ".join(errors[:20]))
    return townships


def _resource_rows(kind: ResourceKind, records: list[_Record], townships: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        row: dict[str, Any] = {"code": r.code, "name": r.name, "township_code": townships[r.code]}
        where = point_wkt(r.lon, r.lat)
        if isinstance(r, TeamRecord):
            row |= {
                "name_en": r.name_en,
                "kind": r.kind,
                "capabilities": [c.value for c in r.capabilities],
                "headcount": r.headcount,
                "base": where,
                "shareable": r.shareable,
                "phone": r.phone,
            }
        elif isinstance(r, ShelterRecord):
            row |= {
                "level": r.level,
                "site_type": r.site_type,
                "capacity": r.capacity,
                "area_m2": r.area_m2,
                "address": r.address,
                "location": where,
            }
        elif isinstance(r, DepotRecord):
            row |= {"name_en": r.name_en, "level": r.level, "location": where}
        elif isinstance(r, HelipadRecord):
            row |= {"name_en": r.name_en, "kind": r.kind, "location": where}
        rows.append(row)
    return rows


UPSERTS: dict[ResourceKind, Callable[..., Any]] = {
    ResourceKind.TEAMS: team_service.upsert_teams,
    ResourceKind.SHELTERS: shelter_service.upsert_shelters,
    ResourceKind.DEPOTS: depot_service.upsert_depots,
    ResourceKind.HELIPADS: helipad_service.upsert_helipads,
}
SUBJECT = {
    ResourceKind.TEAMS: "team",
    ResourceKind.SHELTERS: "shelter",
    ResourceKind.DEPOTS: "depot",
    ResourceKind.HELIPADS: "helipad",
}


async def _events_for(
    session: AsyncSession,
    subject: str,
    result: UpsertResult,
    actor: str,
    townships: dict[Any, str | None] | None = None,
) -> None:
    townships = townships or {}
    await event_service.record_many(
        session=session,
        events=[
            {
                "topic": f"{subject}.{verb}",
                "subject_type": subject,
                "subject_id": key,
                "actor": actor,
                "township": townships.get(key),
                "data": {"source": actor},
            }
            for verb, keys in (("created", result.inserted), ("updated", result.updated))
            for key in keys
        ],
    )


async def load_resources(
    session: AsyncSession, kind: ResourceKind, records: list[_Record], *, actor: str, source: str
) -> dict[str, UpsertResult]:
    townships = await _resolve_townships(session, records, source)
    result: UpsertResult = await UPSERTS[kind](session=session, rows=_resource_rows(kind, records, townships))
    await _events_for(
        session, SUBJECT[kind], result, actor, {row_id: townships[code] for row_id, code in result.key_of.items()}
    )
    results = {kind.value: result}
    if kind is ResourceKind.DEPOTS:
        results["stock"] = await _apply_stock(session, [r for r in records if isinstance(r, DepotRecord)], actor)
    return results


async def _apply_stock(session: AsyncSession, records: list[DepotRecord], actor: str) -> UpsertResult:
    """Bring each (depot, item) to the file's quantity by a ledger entry for the difference
    between the file and what this source already put in, so movements made since (issues,
    receipts) are kept, and an unchanged file writes nothing."""
    ids = await depot_service.depot_ids_by_code(session=session, codes=[r.code for r in records])
    already = await depot_service.ledger_totals(session=session, actor=actor)
    result = UpsertResult()
    for record in records:
        for line in record.stock:
            key = (ids[record.code], line.item)
            delta = line.quantity - already.get(key, 0)
            if delta == 0:
                result.unchanged += 1
                continue
            await depot_service.record_movement(
                session=session,
                depot_id=key[0],
                item_code=line.item,
                delta=delta,
                kind=LedgerKind.RECEIPT if delta > 0 else LedgerKind.ADJUSTMENT,
                reason=f"stock from {actor.split(':')[-1]} file",
                actor=actor,
            )
            (result.inserted if key not in already else result.updated).append(f"{record.code}/{line.item}")
    return result


def _multipolygon_wkt(geometry: dict[str, Any]) -> str:
    geom = shape(geometry)
    if geom.geom_type == "Polygon":
        geom = MultiPolygon([geom])
    if geom.geom_type != "MultiPolygon" or not geom.is_valid:
        raise SeedError(f"a boundary must be a valid Polygon or MultiPolygon, got {geom.geom_type}")
    return f"SRID=4326;{geom.wkt}"


def _read_items(path: Path) -> list[dict[str, Any]]:
    rows = []
    for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))):
        per = (row.get("persons_per_unit") or "").strip()
        rows.append(
            {
                "code": row["code"],
                "name": row["name"],
                "name_en": row.get("name_en", ""),
                "unit": row["unit"],
                "category": ItemCategory(row["category"]),
                "persons_per_unit": Decimal(per) if per else None,
            }
        )
    return rows


async def seed(session: AsyncSession, seeds_dir: Path = SEEDS_DIR) -> LoadReport:
    """Load every seed file. The caller commits."""
    report = LoadReport()
    report.add("items", await depot_service.upsert_items(session=session, rows=_read_items(seeds_dir / "items.csv")))

    township_rows = []
    for f in _read_features(seeds_dir / "townships.geojson"):
        p = f["properties"]
        township_rows.append(
            {
                "code": p["code"],
                "name": p["name"],
                "kind": TownshipKind(p["kind"]),
                "seat": point_wkt(*p["seat"]),
                "boundary": _multipolygon_wkt(f["geometry"]),
            }
        )
    result = await township_service.upsert_townships(session=session, rows=township_rows)
    await _events_for(session, "township", result, SEED_ACTOR, {c: c for c in result.inserted + result.updated})
    report.add("townships", result)

    partner_rows = []
    for f in _read_features(seeds_dir / "partners.geojson"):
        p = f["properties"]
        partner_rows.append(
            {
                "id": p["id"],
                "adcode": p["adcode"],
                "name": p["name"],
                "name_en": p["name_en"],
                "parent": p.get("parent", ""),
                "roles": list(p["roles"]),
                "boundary": _multipolygon_wkt(f["geometry"]),
            }
        )
    result = await partner_service.upsert_partners(session=session, rows=partner_rows)
    await _events_for(session, "partner", result, SEED_ACTOR)
    report.add("partners", result)

    for kind in ResourceKind:
        path = seeds_dir / f"{kind.value}.geojson"
        for name, res in (
            await load_resources(session, kind, read_records(path, kind), actor=SEED_ACTOR, source=path.name)
        ).items():
            report.add(name, res)
    return report


async def import_file(session: AsyncSession, kind: ResourceKind, path: Path) -> LoadReport:
    """A deployment's own positions and resources, loaded the same way as the seeds."""
    report = LoadReport()
    for name, res in (
        await load_resources(session, kind, read_records(path, kind), actor=IMPORT_ACTOR, source=path.name)
    ).items():
        report.add(name, res)
    return report
