"""Mutual aid after EDXL-RM, on both sides.

Requester                                  Provider
  RequestResource  ───────────────────────▶  requested (waits for the command center's decision)
                   ◀─────────────  ResponseToRequestResource Accept (named teams) | Decline
  accepted | declined
                   ◀─────────────  CommitResource (teams booked on the provider: dispatched)
  committed                                  committed
  ReleaseResource  ───────────────────────▶  released (teams available again)      (either side may release)
  CancelRequestResource ──────────────────▶  cancelled (before commit; after it, as a release)

Every state change is one conditional UPDATE (`WHERE state IN (...)`), so two operators deciding at once get
one success and one 409; teams are booked and freed only through teams.service (book_teams/set_status).
"""

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.config import Settings
from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.events import service as event_service
from app.federation import agreement, outbox
from app.federation.envelope import iso
from app.federation.models import AidDirection, AidRequest, AidState
from app.federation.resources import team_resource
from app.geo.geojson import point_wkt
from app.partners.models import Partner
from app.teams import service as team_service
from app.teams.models import Team, TeamStatus

SUBJECT = "federation_aid"
# A committed team may have moved on along the dispatch statuses before it is released.
RELEASABLE_FROM = (TeamStatus.DISPATCHED, TeamStatus.EN_ROUTE, TeamStatus.ON_SCENE, TeamStatus.RETURNING)


class AidNotFound(AppError):
    status_code = 404
    code = "aid_request_not_found"


class IllegalAidTransition(AppError):
    status_code = 409
    code = "illegal_aid_transition"


def view(row: AidRequest) -> dict[str, Any]:
    location = None
    if row.location is not None:
        shape = to_shape(row.location)
        location = {"type": "Point", "coordinates": [round(shape.x, 7), round(shape.y, 7)]}
    return {
        "id": row.id,
        "direction": row.direction.value,
        "partner": row.partner_id,
        "request_id": row.request_id,
        "state": row.state.value,
        "exercise": row.exercise,
        "resources": row.resources,
        "incident": row.incident,
        "location": location,
        "note": row.note,
        "team_ids": list(row.team_ids or []),
        "offered": row.offered,
        "reason": row.reason,
        "decided_by": row.decided_by,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


async def _event(session: AsyncSession, topic: str, row: AidRequest, actor: str, **extra: Any) -> int:
    data = {
        "aid_request_id": row.id,
        "direction": row.direction.value,
        "partner": row.partner_id,
        "request_id": row.request_id,
        "state": row.state.value,
        "team_ids": list(row.team_ids or []),
        **extra,
    }
    return await event_service.record(
        session=session,
        topic=topic,
        subject_type=SUBJECT,
        subject_id=row.id,
        actor=actor,
        township=None,
        exercise=row.exercise,
        data=data,
    )


async def get(*, session: AsyncSession, aid_id: int) -> AidRequest:
    row = await session.get(AidRequest, aid_id, populate_existing=True)
    if row is None:
        raise AidNotFound(f"no mutual-aid request has the id {aid_id}", details={"id": aid_id})
    return row


async def list_requests(
    *,
    session: AsyncSession,
    direction: AidDirection | None,
    state: AidState | None,
    partner: str | None,
    limit: int,
    offset: int,
) -> tuple[list[AidRequest], int]:
    stmt = select(AidRequest)
    if direction:
        stmt = stmt.where(AidRequest.direction == direction)
    if state:
        stmt = stmt.where(AidRequest.state == state)
    if partner:
        stmt = stmt.where(AidRequest.partner_id == partner)
    matched = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = await session.scalars(stmt.order_by(AidRequest.id.desc()).limit(limit).offset(offset))
    return list(rows), int(matched or 0)


async def _find(session: AsyncSession, direction: AidDirection, partner_id: str, request_id: str) -> AidRequest | None:
    return await session.scalar(
        select(AidRequest).where(
            AidRequest.direction == direction, AidRequest.partner_id == partner_id, AidRequest.request_id == request_id
        )
    )


async def _transition(
    session: AsyncSession, row: AidRequest, from_states: tuple[AidState, ...], to: AidState, **values: Any
) -> AidRequest:
    """Move the request only if it is still in one of from_states when the row is written."""
    moved = await session.scalar(
        update(AidRequest)
        .where(AidRequest.id == row.id, AidRequest.state.in_(from_states))
        .values(state=to, version=AidRequest.version + 1, updated_at=func.now(), **values)
        .returning(AidRequest)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if moved is None:
        current = await session.scalar(select(AidRequest.state).where(AidRequest.id == row.id))
        raise IllegalAidTransition(
            f"mutual-aid request {row.id} is {current.value if current else 'gone'}; it can become {to.value} only "
            f"from {', '.join(s.value for s in from_states)}",
            details={
                "id": row.id,
                "state": current.value if current else None,
                "to": to.value,
                "allowed_from": [s.value for s in from_states],
            },
        )
    return moved


def _status(row: AidRequest) -> str:
    return "Exercise" if row.exercise else "Actual"


async def _send(
    session: AsyncSession,
    settings: Settings,
    row: AidRequest,
    kind: str,
    content_type: str,
    obj: dict[str, Any],
    actor: str,
) -> None:
    await outbox.enqueue(
        session=session,
        settings=settings,
        partner_id=row.partner_id,
        kind=kind,
        status=_status(row),
        contents=[{"contentType": content_type, "contentObject": obj}],
        actor=actor,
        subject_type=SUBJECT,
        subject_id=row.id,
    )


# --- provider side: a partner asks us -----------------------------------------------------------------------


async def receive_request(
    *, session: AsyncSession, partner_id: str, obj: dict[str, Any], exercise: bool
) -> dict[str, Any]:
    if await _find(session, AidDirection.INBOUND, partner_id, obj["requestID"]) is not None:
        raise Conflict(
            f"request {obj['requestID']} of {partner_id} is already known; send updates as new messages",
            code="aid_request_exists",
        )
    location = obj.get("location")
    row = AidRequest(
        direction=AidDirection.INBOUND,
        partner_id=partner_id,
        request_id=obj["requestID"],
        state=AidState.REQUESTED,
        exercise=exercise,
        resources=obj["resources"],
        incident=obj.get("incident"),
        location=point_wkt(*location["coordinates"][:2]) if location else None,
        note=obj.get("note", ""),
        team_ids=[],
        offered=[],
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)  # the stored geography (and defaults), not the WKT we gave
    await _event(
        session,
        "federation.aid_requested",
        row,
        f"partner:{partner_id}",
        resources=row.resources,
        incident=row.incident,
        location=location,
        needed_by=obj.get("neededBy"),
    )
    return {"contentType": "RequestResource", "requestID": row.request_id, "state": row.state.value}


async def shared_teams(session: AsyncSession, partner: Partner, team_ids: list[int]) -> list[Team]:
    teams: list[Team] = []
    refused: list[dict[str, Any]] = []
    for team_id in sorted(set(team_ids)):
        team = await team_service.get_team(session=session, team_id=team_id)
        if team is None:
            raise NotFound(f"no team has the id {team_id}", code="team_not_found", details={"team_id": team_id})
        if not agreement.team_shared(
            list(partner.roles), shareable=team.shareable, kind=team.kind.value, capabilities=team.capabilities
        ):
            refused.append({"team_id": team_id, "kind": team.kind.value, "shareable": team.shareable})
        teams.append(team)
    if refused:
        raise Conflict(
            f"the agreement with {partner.id} does not share team {refused[0]['team_id']}",
            code="team_not_shared",
            details={"teams": refused, "partner_roles": list(partner.roles)},
        )
    return teams


async def decide(
    *,
    session: AsyncSession,
    settings: Settings,
    aid_id: int,
    accept: bool,
    team_ids: list[int],
    reason: str,
    principal: Principal,
) -> AidRequest:
    row = await get(session=session, aid_id=aid_id)
    if row.direction is not AidDirection.INBOUND:
        raise Conflict("only requests partners sent us are decided here", code="not_a_received_request")
    resources: list[dict[str, Any]] = []
    if accept:
        if not team_ids:
            raise ValidationFailed("an acceptance names the teams that will go", code="team_ids_required")
        partner = await session.get(Partner, row.partner_id)
        assert partner is not None  # foreign key
        teams = await shared_teams(session, partner, team_ids)
        busy = [{"team_id": t.id, "status": t.status.value} for t in teams if t.status is not TeamStatus.AVAILABLE]
        if busy:
            raise team_service.TeamNotAvailable(
                f"team {busy[0]['team_id']} is not available (it is {busy[0]['status']})", details={"teams": busy}
            )
        resources = [team_resource(settings.federation_sender_id, t) for t in teams]
    row = await _transition(
        session,
        row,
        (AidState.REQUESTED,),
        AidState.ACCEPTED if accept else AidState.DECLINED,
        team_ids=sorted(set(team_ids)) if accept else [],
        offered=resources,
        reason=reason,
        decided_by=principal.actor,
    )
    await _event(session, "federation.aid_decided", row, principal.actor, decision=row.state.value, reason=reason)
    response: dict[str, Any] = {"requestID": row.request_id, "responseType": "Accept" if accept else "Decline"}
    if reason:
        response["reason"] = reason
    if accept:
        response["resources"] = resources
    await _send(session, settings, row, "Response", "ResponseToRequestResource", response, principal.actor)
    return row


async def commit(*, session: AsyncSession, settings: Settings, aid_id: int, principal: Principal) -> AidRequest:
    row = await get(session=session, aid_id=aid_id)
    if row.direction is not AidDirection.INBOUND:
        raise Conflict("only the providing side commits its teams", code="not_a_received_request")
    row = await _transition(session, row, (AidState.ACCEPTED,), AidState.COMMITTED)
    # The booking decides: if a team was taken meanwhile, the whole commit rolls back with a 409.
    teams = await team_service.book_teams(
        session=session,
        team_ids=list(row.team_ids),
        actor=principal.actor,
        reason={"federation_aid_id": row.id, "partner": row.partner_id, "request_id": row.request_id},
    )
    seq = await _event(session, "federation.aid_committed", row, principal.actor)
    # Remembered so a release frees only teams that are still ours (see _free_teams).
    row = (
        await session.scalar(
            update(AidRequest)
            .where(AidRequest.id == row.id)
            .values(committed_seq=seq)
            .returning(AidRequest)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        or row
    )
    resources = [team_resource(settings.federation_sender_id, t) for t in teams]
    await _send(
        session,
        settings,
        row,
        "Update",
        "CommitResource",
        {"requestID": row.request_id, "resources": resources},
        principal.actor,
    )
    return row


async def _free_teams(session: AsyncSession, row: AidRequest, actor: str) -> dict[str, list[int]]:
    """Give our committed teams back, except any that changed hands since (freed or re-booked locally)."""
    freed: list[int] = []
    kept: list[int] = []
    for team_id in row.team_ids:
        later = await event_service.timeline(
            session=session, subject_type="team", subject_id=team_id, after_seq=row.committed_seq or 0
        )
        if any(e.data.get("status") == TeamStatus.AVAILABLE.value for e in later):
            kept.append(team_id)  # it was freed after our commit, so whatever it does now is not ours
            continue
        try:
            await team_service.set_status(
                session=session,
                team_id=team_id,
                to_status=TeamStatus.AVAILABLE,
                actor=actor,
                allowed_from=RELEASABLE_FROM,
                reason={"federation_aid_id": row.id, "partner": row.partner_id, "released": True},
            )
        except AppError:  # out of service, or gone: leave it to the operators
            kept.append(team_id)
        else:
            freed.append(team_id)
    return {"freed_team_ids": freed, "not_freed_team_ids": kept}


async def receive_release(*, session: AsyncSession, partner_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    """ReleaseResource from a partner: it ends an assignment, whichever side it was on."""
    row = await _find(session, AidDirection.INBOUND, partner_id, obj["requestID"])
    actor = f"partner:{partner_id}"
    if row is not None:  # the requester no longer needs our teams
        prior = row.state
        row = await _transition(session, row, (AidState.ACCEPTED, AidState.COMMITTED), AidState.RELEASED)
        teams = await _free_teams(session, row, actor) if prior is AidState.COMMITTED else {}
        await _event(session, "federation.aid_released", row, actor, reason=obj.get("reason", ""), **teams)
        return {"contentType": "ReleaseResource", "requestID": row.request_id, "state": row.state.value, **teams}
    row = await _find(session, AidDirection.OUTBOUND, partner_id, obj["requestID"])
    if row is None:
        raise AidNotFound(f"no mutual-aid request {obj['requestID']} with {partner_id}")
    # The provider takes its resources back.
    row = await _transition(session, row, (AidState.ACCEPTED, AidState.COMMITTED), AidState.RELEASED)
    await _event(session, "federation.aid_released", row, actor, reason=obj.get("reason", ""))
    return {"contentType": "ReleaseResource", "requestID": row.request_id, "state": row.state.value}


async def receive_cancel(*, session: AsyncSession, partner_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    row = await _find(session, AidDirection.INBOUND, partner_id, obj["requestID"])
    if row is None:
        raise AidNotFound(f"{partner_id} has no mutual-aid request {obj['requestID']} with us")
    actor = f"partner:{partner_id}"
    prior = row.state
    row = await _transition(
        session, row, (AidState.REQUESTED, AidState.ACCEPTED, AidState.COMMITTED), AidState.CANCELLED
    )
    teams = await _free_teams(session, row, actor) if prior is AidState.COMMITTED else {}
    await _event(session, "federation.aid_cancelled", row, actor, reason=obj.get("reason", ""), **teams)
    return {"contentType": "CancelRequestResource", "requestID": row.request_id, "state": row.state.value, **teams}


# --- requester side: we ask a partner ----------------------------------------------------------------------


async def create_request(
    *,
    session: AsyncSession,
    settings: Settings,
    partner_id: str,
    resources: list[dict[str, Any]],
    location: tuple[float, float] | None,
    incident: dict[str, Any] | None,
    note: str,
    needed_by: datetime | None,
    exercise: bool,
    principal: Principal,
) -> AidRequest:
    await outbox.usable_partner(session, settings, partner_id)
    row = AidRequest(
        direction=AidDirection.OUTBOUND,
        partner_id=partner_id,
        request_id=f"{settings.federation_sender_id}:aid:{uuid.uuid4().hex}",
        state=AidState.REQUESTED,
        exercise=exercise,
        resources=resources,
        incident=incident,
        location=point_wkt(*location) if location else None,
        note=note,
        team_ids=[],
        offered=[],
        decided_by=principal.actor,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)  # the stored geography (and defaults), not the WKT we gave
    message: dict[str, Any] = {"requestID": row.request_id, "resources": resources}
    if location:
        message["location"] = {"type": "Point", "coordinates": [round(location[0], 7), round(location[1], 7)]}
    if incident:
        message["incident"] = incident
    if needed_by:
        message["neededBy"] = iso(needed_by)
    if note:
        message["note"] = note
    await _event(session, "federation.aid_request_sent", row, principal.actor, resources=resources)
    await _send(session, settings, row, "Request", "RequestResource", message, principal.actor)
    return row


async def receive_response(*, session: AsyncSession, partner_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    row = await _find(session, AidDirection.OUTBOUND, partner_id, obj["requestID"])
    if row is None:
        raise AidNotFound(f"we sent {partner_id} no mutual-aid request {obj['requestID']}")
    accepted = obj["responseType"] == "Accept"
    row = await _transition(
        session,
        row,
        (AidState.REQUESTED,),
        AidState.ACCEPTED if accepted else AidState.DECLINED,
        offered=obj.get("resources", []),
        reason=obj.get("reason", ""),
    )
    await _event(
        session,
        "federation.aid_response_received",
        row,
        f"partner:{partner_id}",
        decision=row.state.value,
        offered=row.offered,
    )
    return {"contentType": "ResponseToRequestResource", "requestID": row.request_id, "state": row.state.value}


async def receive_commit(*, session: AsyncSession, partner_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    row = await _find(session, AidDirection.OUTBOUND, partner_id, obj["requestID"])
    if row is None:
        raise AidNotFound(f"we sent {partner_id} no mutual-aid request {obj['requestID']}")
    row = await _transition(session, row, (AidState.ACCEPTED,), AidState.COMMITTED, offered=obj["resources"])
    await _event(session, "federation.aid_committed", row, f"partner:{partner_id}", offered=row.offered)
    return {"contentType": "CommitResource", "requestID": row.request_id, "state": row.state.value}


async def release(
    *, session: AsyncSession, settings: Settings, aid_id: int, reason: str, principal: Principal
) -> AidRequest:
    """End a committed assignment from our side: as requester (we no longer need them) or as provider
    (we take our teams back, which frees them here)."""
    row = await get(session=session, aid_id=aid_id)
    prior = row.state
    row = await _transition(session, row, (AidState.ACCEPTED, AidState.COMMITTED), AidState.RELEASED, reason=reason)
    teams: dict[str, list[int]] = {}
    if row.direction is AidDirection.INBOUND and prior is AidState.COMMITTED:
        teams = await _free_teams(session, row, principal.actor)
    await _event(session, "federation.aid_released", row, principal.actor, reason=reason, **teams)
    message = {"requestID": row.request_id, **({"reason": reason} if reason else {})}
    await _send(session, settings, row, "Update", "ReleaseResource", message, principal.actor)
    return row


async def cancel(
    *, session: AsyncSession, settings: Settings, aid_id: int, reason: str, principal: Principal
) -> AidRequest:
    """The requester withdraws a request it sent (once committed, it releases instead)."""
    row = await get(session=session, aid_id=aid_id)
    if row.direction is not AidDirection.OUTBOUND:
        raise Conflict("a request a partner sent us is declined, not cancelled", code="not_a_sent_request")
    row = await _transition(session, row, (AidState.REQUESTED, AidState.ACCEPTED), AidState.CANCELLED, reason=reason)
    await _event(session, "federation.aid_cancelled", row, principal.actor, reason=reason)
    message = {"requestID": row.request_id, **({"reason": reason} if reason else {})}
    await _send(session, settings, row, "Cancel", "CancelRequestResource", message, principal.actor)
    return row


async def receive_offer(
    *, session: AsyncSession, partner_id: str, obj: dict[str, Any], exercise: bool
) -> dict[str, Any]:
    """An unsolicited offer is shown to the command center; asking for it is a RequestResource of our own."""
    await event_service.record(
        session=session,
        topic="federation.aid_offered",
        subject_type="partner",
        subject_id=partner_id,
        actor=f"partner:{partner_id}",
        township=None,
        exercise=exercise,
        data={
            "partner": partner_id,
            "offer_id": obj["offerID"],
            "resources": obj["resources"],
            "note": obj.get("note", ""),
        },
    )
    return {"contentType": "OfferUnsolicitedResource", "offerID": obj["offerID"], "result": "shown"}
