"""The district side of federation, /api/v1/federation: the command center shares incidents and warnings,
asks for and offers resources, decides partners' requests, and watches delivery."""

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from geoalchemy2.shape import to_shape
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Commander, CurrentPrincipal
from app.config import Settings
from app.db import SessionDep
from app.errors import NotFound, ValidationFailed
from app.federation import aid, cap, jsonschemas, outbox, shared
from app.federation.envelope import CAP_XML
from app.federation.models import AidDirection, AidState, OutboxMessage, OutboxState, SharedIncident, SharedWarning
from app.federation.resources import team_resource
from app.federation.trust import endpoint_of, outbound_key
from app.geo.coords import CoordSys
from app.geo.input import PointIn
from app.params import IdPath
from app.partners import service as partner_service
from app.teams import service as team_service

router = APIRouter(prefix="/federation", tags=["federation (district)"])

PartnerId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")]
Status = Literal["Actual", "Exercise", "Test"]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _schema_checked(name: str, value: dict[str, Any], where: str) -> None:
    problem = jsonschemas.validate(name, value, prefix=where)
    if problem:
        raise ValidationFailed(
            problem.message, code="invalid_content", details={"pointer": problem.pointer, "problems": problem.all}
        )


def message_view(m: OutboxMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "partner": m.partner_id,
        "distribution_id": m.distribution_id,
        "kind": m.distribution_kind,
        "status": m.distribution_status,
        "content_types": list(m.content_types),
        "state": m.state.value,
        "attempts": m.attempts,
        "next_attempt_at": m.next_attempt_at if m.state is OutboxState.PENDING else None,
        "last_attempt_at": m.last_attempt_at,
        "last_error": m.last_error,
        "response_status": m.response_status,
        "delivered_at": m.delivered_at,
        "expires_at": m.expires_at,
        "created_at": m.created_at,
        "created_by": m.created_by,
        "subject": {"type": m.subject_type, "id": m.subject_id} if m.subject_type else None,
    }


# --- partners and the outbox ------------------------------------------------------------------------------


@router.get("/partners")
async def list_partners(request: Request, session: SessionDep, _: CurrentPrincipal) -> dict[str, Any]:
    """Partners, their agreements and whether they are configured for delivery, with their queue."""
    settings = _settings(request)
    rows = await session.execute(
        select(OutboxMessage.partner_id, func.count())
        .where(OutboxMessage.state == OutboxState.PENDING)
        .group_by(OutboxMessage.partner_id)
    )
    pending: dict[str, int] = {str(r[0]): int(r[1]) for r in rows}
    items = []
    for p in await partner_service.list_partners(session=session):
        config = settings.federation_partners.get(p.id)
        items.append(
            {
                "id": p.id,
                "name": p.name,
                "name_en": p.name_en,
                "roles": list(p.roles),
                "active": p.active,
                "endpoint": endpoint_of(settings, p),
                "can_send": outbound_key(settings, p.id) is not None and endpoint_of(settings, p) is not None,
                "can_receive": bool(config and config.inbound_keys),
                "pending": pending.get(p.id, 0),
            }
        )
    return {"sender_id": settings.federation_sender_id, "partners": items}


class IncidentShare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["incident"]
    partners: list[PartnerId] = Field(min_length=1, max_length=10)
    update: Literal["Report", "Update", "Cancel"] = "Report"
    status: Status = "Actual"
    incident_id: int | None = Field(default=None, ge=1, description="one of our incidents, read from its record")
    incident: dict[str, Any] | None = Field(default=None, description="or the EIDO-like object itself")
    expires_in_s: int | None = Field(default=None, ge=60, le=30 * 86400)


class WarningShare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["warning"]
    partners: list[PartnerId] = Field(min_length=1, max_length=10)
    alert: dict[str, Any] = Field(description="CAP 1.2 alert in its JSON form (cap-alert schema)")
    format: Literal["json", "xml"] = "json"
    expires_in_s: int | None = Field(default=None, ge=60, le=30 * 86400)


class ResourceOffer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["resource_offer"]
    partners: list[PartnerId] = Field(min_length=1, max_length=10)
    team_ids: list[int] = Field(min_length=1, max_length=50)
    note: str = Field(default="", max_length=4000)
    available_until: AwareDatetime | None = None
    status: Status = "Actual"
    expires_in_s: int | None = Field(default=None, ge=60, le=30 * 86400)


OutboxIn = Annotated[IncidentShare | WarningShare | ResourceOffer, Field(discriminator="kind")]


async def _incident_content(session: AsyncSession, settings: Settings, body: IncidentShare) -> dict[str, Any]:
    if (body.incident_id is None) == (body.incident is None):
        raise ValidationFailed("give either incident_id or incident", code="incident_required")
    if body.incident_id is not None:
        facts = await shared.incident_facts(session=session, incident_id=body.incident_id)
        obj = shared.eido(facts, sender=settings.federation_sender_id, agency="蓟州区应急指挥中心")
    else:
        assert body.incident is not None
        obj = body.incident
    _schema_checked("incident", obj, "/incident")
    if issue := shared.incident_problem(obj):
        raise ValidationFailed(issue[1], code="invalid_content", details={"pointer": "/incident" + issue[0]})
    return {"contentType": "incident", "contentObject": obj}


def _warning_content(body: WarningShare) -> dict[str, Any]:
    _schema_checked("cap-alert", body.alert, "/alert")
    try:
        cap.area_wkt(body.alert, "/alert")
    except cap.CapError as exc:
        raise ValidationFailed(str(exc), code="invalid_area", details={"pointer": exc.pointer}) from None
    if body.format == "xml":
        return {"contentType": "cap-alert+xml", "contentXML": cap.alert_to_xml(body.alert)}
    return {"contentType": "cap-alert", "contentObject": body.alert}


@router.post("/outbox", status_code=201)
async def post_outbox(request: Request, session: SessionDep, principal: Commander, body: OutboxIn) -> dict[str, Any]:
    """Share an incident, send a warning (CAP JSON or XML) or offer teams to chosen partners. One message per
    partner is queued in this transaction and delivered by the outbox worker until acknowledged."""
    settings = _settings(request)
    subject: tuple[str | None, str | None] = (None, None)
    status: str = "Actual"
    if isinstance(body, IncidentShare):
        content = await _incident_content(session, settings, body)
        kind, status = body.update, body.status
        subject = ("incident", str(body.incident_id)) if body.incident_id else ("incident", None)
    elif isinstance(body, WarningShare):
        content = _warning_content(body)
        kind, status = "Report", body.alert["status"] if body.alert.get("status") != "Draft" else "Test"
        subject = ("cap_alert", body.alert.get("identifier"))
    else:
        teams = []
        for team_id in sorted(set(body.team_ids)):
            team = await team_service.get_team(session=session, team_id=team_id)
            if team is None:
                raise NotFound(f"no team has the id {team_id}", code="team_not_found")
            teams.append(team)
        offer: dict[str, Any] = {"resources": [team_resource(settings.federation_sender_id, t) for t in teams]}
        if body.note:
            offer["note"] = body.note
        if body.available_until:
            offer["availableUntil"] = body.available_until.isoformat()
        kind, status = "Report", body.status
        content = {"contentType": "OfferUnsolicitedResource", "contentObject": offer}
    messages = []
    for partner_id in dict.fromkeys(body.partners):
        if isinstance(body, ResourceOffer):
            # Only what the agreement with this partner shares may be offered to it.
            partner = await outbox.usable_partner(session, settings, partner_id)
            await aid.shared_teams(session, partner, body.team_ids)
            offer_id = f"{settings.federation_sender_id}:offer:{uuid.uuid4().hex}"
            content = {**content, "contentObject": {"offerID": offer_id, **content["contentObject"]}}
        messages.append(
            await outbox.enqueue(
                session=session,
                settings=settings,
                partner_id=partner_id,
                kind=kind,
                status=status,
                contents=[content],
                actor=principal.actor,
                subject_type=subject[0],
                subject_id=subject[1],
                ttl_s=body.expires_in_s,
            )
        )
    return {"messages": [message_view(m) for m in messages]}


@router.get("/outbox")
async def get_outbox(
    session: SessionDep,
    _: CurrentPrincipal,
    partner: str | None = None,
    state: OutboxState | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Delivery state of outbound messages, newest first: pending (attempts, next attempt, last error),
    delivered, rejected by the partner, or expired."""
    rows, matched = await outbox.list_messages(
        session=session,
        partner=partner,
        state=state,
        subject_type=subject_type,
        subject_id=subject_id,
        limit=limit,
        offset=offset,
    )
    return {"items": [message_view(m) for m in rows], "numberMatched": matched, "numberReturned": len(rows)}


@router.get("/outbox/{outbox_id}")
async def get_outbox_message(outbox_id: IdPath, session: SessionDep, _: CurrentPrincipal) -> dict[str, Any]:
    message = await outbox.get_message(session=session, outbox_id=outbox_id)
    return {**message_view(message), "body": message.body, "response_body": message.response_body}


# --- mutual aid -------------------------------------------------------------------------------------------


class Need(BaseModel):
    model_config = ConfigDict(extra="forbid")
    capability: str | None = Field(default=None, pattern=r"^[a-z][a-z_]{1,31}$")
    teamKind: str | None = Field(default=None, pattern=r"^[a-z][a-z_]{1,31}$")
    quantity: int = Field(ge=1, le=100)
    description: str | None = Field(default=None, max_length=1000)


class AidRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partner: PartnerId
    resources: list[Need] = Field(min_length=1, max_length=50)
    location: PointIn | None = None
    coord_sys: CoordSys = CoordSys.WGS84
    incident_id: int | None = Field(default=None, ge=1)
    note: str = Field(default="", max_length=4000)
    needed_by: AwareDatetime | None = None
    exercise: bool = False


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accept", "decline"]
    team_ids: list[int] = Field(default_factory=list, max_length=50)
    reason: str = Field(default="", max_length=4000)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=4000)


@router.post("/aid-requests", status_code=201)
async def request_aid(
    request: Request, session: SessionDep, principal: Commander, body: AidRequestIn
) -> dict[str, Any]:
    """Ask a partner for resources (EDXL-RM RequestResource); the answer arrives as a state change."""
    settings = _settings(request)
    needs = [n.model_dump(exclude_none=True) for n in body.resources]
    for index, need in enumerate(needs):
        if "capability" not in need and "teamKind" not in need:
            raise ValidationFailed(
                "each resource names a capability or a teamKind", details={"pointer": f"/resources/{index}"}
            )
    incident = None
    if body.incident_id is not None:
        facts = await shared.incident_facts(session=session, incident_id=body.incident_id)
        incident = {
            "incidentID": f"{settings.federation_sender_id}:incident:{facts.id}",
            "typeCode": facts.type_code,
            "title": facts.title,
        }
    row = await aid.create_request(
        session=session,
        settings=settings,
        partner_id=body.partner,
        resources=needs,
        location=body.location.wgs84(body.coord_sys) if body.location else None,
        incident=incident,
        note=body.note,
        needed_by=body.needed_by,
        exercise=body.exercise,
        principal=principal,
    )
    return aid.view(row)


@router.get("/aid-requests")
async def list_aid_requests(
    session: SessionDep,
    _: CurrentPrincipal,
    direction: AidDirection | None = None,
    state: AidState | None = None,
    partner: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Mutual-aid requests: inbound (partners ask us; `requested` ones wait for a decision) and outbound."""
    rows, matched = await aid.list_requests(
        session=session, direction=direction, state=state, partner=partner, limit=limit, offset=offset
    )
    return {"items": [aid.view(r) for r in rows], "numberMatched": matched, "numberReturned": len(rows)}


@router.get("/aid-requests/{aid_id}")
async def get_aid_request(aid_id: IdPath, session: SessionDep, _: CurrentPrincipal) -> dict[str, Any]:
    return aid.view(await aid.get(session=session, aid_id=aid_id))


@router.post("/aid-requests/{aid_id}/decision")
async def decide_aid_request(
    aid_id: IdPath, request: Request, session: SessionDep, principal: Commander, body: DecisionIn
) -> dict[str, Any]:
    """Accept a partner's request with named shareable teams (checked available), or decline it."""
    row = await aid.decide(
        session=session,
        settings=_settings(request),
        aid_id=aid_id,
        accept=body.decision == "accept",
        team_ids=body.team_ids,
        reason=body.reason,
        principal=principal,
    )
    return aid.view(row)


@router.post("/aid-requests/{aid_id}/commit")
async def commit_aid_request(
    aid_id: IdPath, request: Request, session: SessionDep, principal: Commander
) -> dict[str, Any]:
    """Commit the accepted teams: they are booked (dispatched) here, or the whole commit is a 409."""
    return aid.view(await aid.commit(session=session, settings=_settings(request), aid_id=aid_id, principal=principal))


@router.post("/aid-requests/{aid_id}/release")
async def release_aid_request(
    aid_id: IdPath, request: Request, session: SessionDep, principal: Commander, body: ReasonIn | None = None
) -> dict[str, Any]:
    """End an accepted or committed assignment (ours given back, or theirs no longer needed)."""
    row = await aid.release(
        session=session,
        settings=_settings(request),
        aid_id=aid_id,
        reason=body.reason if body else "",
        principal=principal,
    )
    return aid.view(row)


@router.post("/aid-requests/{aid_id}/cancel")
async def cancel_aid_request(
    aid_id: IdPath, request: Request, session: SessionDep, principal: Commander, body: ReasonIn | None = None
) -> dict[str, Any]:
    """Withdraw a request we sent, before it is committed."""
    row = await aid.cancel(
        session=session,
        settings=_settings(request),
        aid_id=aid_id,
        reason=body.reason if body else "",
        principal=principal,
    )
    return aid.view(row)


# --- what partners shared ---------------------------------------------------------------------------------


def _incident_view(row: SharedIncident) -> dict[str, Any]:
    return {
        **shared.shared_incident_data(row),
        "exercise": row.exercise,
        "payload": row.payload,
        "occurred_at": row.occurred_at,
        "received_at": row.created_at,
        "updated_at": row.updated_at,
    }


@router.get("/incidents")
async def list_shared_incidents(
    session: SessionDep,
    _: CurrentPrincipal,
    partner: str | None = None,
    include_cancelled: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Incidents partners shared with us, latest first."""
    stmt = select(SharedIncident)
    if partner:
        stmt = stmt.where(SharedIncident.partner_id == partner)
    if not include_cancelled:
        stmt = stmt.where(SharedIncident.cancelled.is_(False))
    matched = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = list(await session.scalars(stmt.order_by(SharedIncident.updated_at.desc()).limit(limit).offset(offset)))
    return {"items": [_incident_view(r) for r in rows], "numberMatched": int(matched or 0), "numberReturned": len(rows)}


@router.get("/incidents/{shared_id}")
async def get_shared_incident(shared_id: IdPath, session: SessionDep, _: CurrentPrincipal) -> dict[str, Any]:
    row = await session.get(SharedIncident, shared_id)
    if row is None:
        raise NotFound(f"no shared incident has the id {shared_id}", code="shared_incident_not_found")
    return _incident_view(row)


def _warning_view(row: SharedWarning) -> dict[str, Any]:
    area = None
    if row.area is not None:
        shape = to_shape(row.area)
        area = {"type": "MultiPolygon", "coordinates": [[list(map(list, p.exterior.coords))] for p in shape.geoms]}
    return {
        "id": row.id,
        "partner": row.partner_id,
        "identifier": row.identifier,
        "sender": row.sender,
        "sent": row.sent,
        "status": row.status,
        "msgType": row.msg_type,
        "scope": row.scope,
        "alert": row.alert,
        "area": area,
        "received_at": row.received_at,
    }


@router.get("/warnings")
async def list_warnings(
    session: SessionDep, _: CurrentPrincipal, partner: str | None = None, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """Public warnings (CAP 1.2) partners sent us, newest first."""
    stmt = select(SharedWarning)
    if partner:
        stmt = stmt.where(SharedWarning.partner_id == partner)
    matched = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = list(await session.scalars(stmt.order_by(SharedWarning.id.desc()).limit(limit).offset(offset)))
    return {"items": [_warning_view(r) for r in rows], "numberMatched": int(matched or 0), "numberReturned": len(rows)}


@router.get(
    "/warnings/{warning_id}",
    responses={200: {"content": {CAP_XML: {}}, "description": "JSON, or CAP 1.2 XML with ?format=xml"}},
)
async def get_warning(
    warning_id: IdPath,
    session: SessionDep,
    _: CurrentPrincipal,
    format: Literal["json", "xml"] = "json",
) -> Any:
    row = await session.get(SharedWarning, warning_id)
    if row is None:
        raise NotFound(f"no warning has the id {warning_id}", code="warning_not_found")
    if format == "xml":
        return Response(cap.alert_to_xml(row.alert), media_type=CAP_XML)
    return _warning_view(row)
