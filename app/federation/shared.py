"""Incidents and public warnings shared between districts: building ours (EIDO-like, CAP) and keeping theirs."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.events import service as event_service
from app.federation import cap
from app.federation.envelope import iso, parse_time
from app.federation.models import SharedIncident, SharedWarning
from app.geo.geojson import point_wkt
from app.incidents.models import Incident

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
FROM_ROMAN = {v: k for k, v in ROMAN.items()}
CATEGORY_DIGIT = {"natural_disaster": "1", "accident": "2", "public_health": "3", "social_security": "4"}


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What we share of one of our incidents; built from the incident row or given by the caller."""

    id: int | str
    code: str
    category: str
    type: str
    type_code: str
    severity: int | None
    status: str
    title: str
    description: str
    address: str
    lon: float
    lat: float
    reported_at: datetime
    updated_at: datetime
    dead: int = 0
    injured: int = 0
    missing: int = 0
    trapped: int = 0
    people_affected: int = 0
    cross_border: bool = False
    version: int = 1


def eido(facts: IncidentFacts, *, sender: str, agency: str) -> dict[str, Any]:
    """An incident as the EIDO-like object of the incident schema."""
    return {
        "incidentID": f"{sender}:incident:{facts.id}",
        "code": facts.code,
        "revision": facts.version,
        "typeCode": facts.type_code,
        "typeName": facts.type,
        "category": facts.category,
        "severity": ROMAN.get(facts.severity) if facts.severity else None,
        "status": facts.status,
        "location": {"type": "Point", "coordinates": [round(facts.lon, 7), round(facts.lat, 7)]},
        "address": facts.address,
        "dateTime": iso(facts.reported_at),
        "lastUpdate": iso(facts.updated_at),
        "title": facts.title,
        "description": facts.description,
        "casualties": {
            "dead": facts.dead,
            "injured": facts.injured,
            "missing": facts.missing,
            "trapped": facts.trapped,
        },
        "peopleAffected": facts.people_affected,
        "crossBorder": facts.cross_border,
        "agency": {"name": agency},
    }


async def incident_facts(*, session: AsyncSession, incident_id: int) -> IncidentFacts:
    """One of our incidents, read minimally from its row (the incidents domain owns it; we only read)."""
    row = await session.scalar(select(Incident).where(Incident.id == incident_id))
    if row is None:
        raise NotFound(f"no incident has the id {incident_id}", code="incident_not_found")
    where = to_shape(row.location)
    return IncidentFacts(
        id=row.id,
        code=row.code,
        category=row.category.value,
        type=row.type,
        type_code=row.type_code,
        severity=row.severity,
        status=row.status.value,
        title=row.title,
        description=row.description,
        address=row.address,
        lon=where.x,
        lat=where.y,
        reported_at=row.reported_at,
        updated_at=row.updated_at,
        dead=row.dead,
        injured=row.injured,
        missing=row.missing,
        trapped=row.trapped,
        people_affected=row.people_affected,
        cross_border=row.cross_border,
        version=row.version,
    )


def incident_problem(obj: dict[str, Any]) -> tuple[str, str] | None:
    """What the schema cannot say: the GB/T 35561 code's first digit is its category."""
    if obj["typeCode"][0] != CATEGORY_DIGIT[obj["category"]]:
        return "/typeCode", f"type code {obj['typeCode']} is not in the category {obj['category']}"
    return None


def shared_incident_data(row: SharedIncident) -> dict[str, Any]:
    lon, lat = to_shape(row.location).x, to_shape(row.location).y
    payload = row.payload
    return {
        "shared_incident_id": row.id,
        "partner": row.partner_id,
        "incident_id": row.incident_id,
        "type_code": row.type_code,
        "type_name": payload.get("typeName"),
        "category": row.category,
        "severity": ROMAN.get(row.severity) if row.severity else None,
        "status": row.status,
        "cancelled": row.cancelled,
        "title": payload.get("title", ""),
        "location": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
        "casualties": payload.get("casualties", {}),
        "revision": row.revision,
    }


async def receive_incident(
    *, session: AsyncSession, partner_id: str, obj: dict[str, Any], kind: str, exercise: bool
) -> dict[str, Any]:
    """Keep a partner's incident (Report/Update upsert, Cancel marks it) and announce it to the command center."""
    lon, lat = obj["location"]["coordinates"][:2]
    severity = obj.get("severity")
    values = {
        "partner_id": partner_id,
        "incident_id": obj["incidentID"],
        "type_code": obj["typeCode"],
        "category": obj["category"],
        "severity": FROM_ROMAN[severity] if severity else None,
        "status": obj["status"],
        "cancelled": kind == "Cancel",
        "location": point_wkt(float(lon), float(lat)),
        "occurred_at": parse_time(obj["dateTime"]),
        "description": obj.get("description", ""),
        "exercise": exercise,
        "payload": obj,
        "revision": obj.get("revision", 1),
    }
    existing = await session.scalar(
        select(SharedIncident)
        .where(SharedIncident.partner_id == partner_id, SharedIncident.incident_id == obj["incidentID"])
        .with_for_update()
    )
    if existing is not None and "revision" in obj and existing.revision > obj["revision"]:
        # An older revision arriving late never overwrites a newer one.
        return {"contentType": "incident", "incidentID": obj["incidentID"], "result": "stale_revision_ignored"}
    stmt = pg_insert(SharedIncident).values(**values)
    row_id = await session.scalar(
        stmt.on_conflict_do_update(
            constraint="uq_federation_incident_partner_incident",
            set_={k: stmt.excluded[k] for k in values if k not in ("partner_id", "incident_id")},
        ).returning(SharedIncident.id)
    )
    row = await session.get(SharedIncident, row_id, populate_existing=True)
    assert row is not None
    topic = (
        "federation.incident_cancelled"
        if kind == "Cancel"
        else "federation.incident_updated"
        if existing is not None
        else "federation.incident_shared"
    )
    await event_service.record(
        session=session,
        topic=topic,
        subject_type="federation_incident",
        subject_id=row.id,
        actor=f"partner:{partner_id}",
        township=None,
        exercise=exercise,
        data=shared_incident_data(row),
    )
    return {"contentType": "incident", "incidentID": obj["incidentID"], "result": topic.split(".", 1)[1]}


async def receive_warning(
    *, session: AsyncSession, partner_id: str, alert: dict[str, Any], exercise: bool, area_wkt: str | None
) -> dict[str, Any]:
    """Keep a partner's CAP alert; a repeated identifier is acknowledged and changes nothing."""
    row_id = await session.scalar(
        pg_insert(SharedWarning)
        .values(
            partner_id=partner_id,
            identifier=alert["identifier"],
            sender=alert["sender"],
            sent=parse_time(alert["sent"]),
            status=alert["status"],
            msg_type=alert["msgType"],
            scope=alert["scope"],
            alert=alert,
            area=area_wkt,
        )
        .on_conflict_do_nothing(constraint="uq_federation_warning_partner_identifier")
        .returning(SharedWarning.id)
    )
    if row_id is None:
        return {"contentType": "cap-alert", "identifier": alert["identifier"], "result": "duplicate_identifier"}
    info = alert["info"][0]
    await event_service.record(
        session=session,
        topic="federation.warning_received",
        subject_type="federation_warning",
        subject_id=row_id,
        actor=f"partner:{partner_id}",
        township=None,
        exercise=exercise or alert["status"] != "Actual",
        data={
            "warning_id": row_id,
            "partner": partner_id,
            "identifier": alert["identifier"],
            "msgType": alert["msgType"],
            "event": info["event"],
            "urgency": info["urgency"],
            "severity": info["severity"],
            "certainty": info["certainty"],
            "headline": info.get("headline", ""),
            "areas": [a["areaDesc"] for i in alert["info"] for a in i["area"]],
        },
    )
    return {"contentType": "cap-alert", "identifier": alert["identifier"], "result": "warning_received"}


def warning_area(alert: dict[str, Any], prefix: str) -> str | None:
    """The alert's polygons as EWKT; raises cap.CapError with a pointer when one is not a valid polygon."""
    return cap.area_wkt(alert, prefix)
