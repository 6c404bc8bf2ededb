"""Inbound messages, exactly once: validated, then stored with their effects and their answer in one
transaction (the request's), so an acknowledged message is a stored one, and a replay of a distributionID
gets the very bytes of the first answer and changes nothing."""

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import AppError
from app.events import service as event_service
from app.federation import aid, cap, jsonschemas, shared
from app.federation.envelope import EnvelopeError, ack, dumps, parse_time, utcnow
from app.federation.models import InboundMessage
from app.federation.trust import PartnerCaller

# Test and System messages are checked, stored and acknowledged, but change nothing operational.
NO_EFFECTS = {"Test", "System"}

Effect = Callable[[AsyncSession, str, dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]]


def _canonical_sha256(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _parse(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(
            f"the body is not valid JSON: {exc}", code="invalid_json", status_code=400, pointer=""
        ) from None
    if not isinstance(value, dict):
        raise EnvelopeError("the message must be a JSON object (an envelope)", pointer="")
    return value


def _check(envelope: dict[str, Any], caller: PartnerCaller) -> list[dict[str, Any]]:
    """Schema of the envelope and of every content item; returns the content objects to act on."""
    problem = jsonschemas.validate("envelope", envelope)
    if problem:
        raise EnvelopeError(problem.message, pointer=problem.pointer, details=problem.all)
    if envelope["senderID"] != caller.partner_id:
        raise EnvelopeError(
            f"senderID {envelope['senderID']!r} is not the signing partner {caller.partner_id!r}",
            code="sender_mismatch",
            status_code=403,
            pointer="/senderID",
        )
    objects: list[dict[str, Any]] = []
    for index, item in enumerate(envelope["content"]):
        content_type = item["contentType"]
        if content_type == "cap-alert+xml":
            where = f"/content/{index}/contentXML"
            try:
                obj: dict[str, Any] = cap.alert_from_xml(item["contentXML"])
            except cap.CapError as exc:
                raise EnvelopeError(str(exc), code="invalid_cap_xml", pointer=where) from None
            name = "cap-alert"
        else:
            where = f"/content/{index}/contentObject"
            obj, name = item["contentObject"], content_type
        problem = jsonschemas.validate(name, obj, prefix=where)
        if problem:
            raise EnvelopeError(problem.message, pointer=problem.pointer, details=problem.all)
        if name == "incident" and (issue := shared.incident_problem(obj)):
            raise EnvelopeError(issue[1], pointer=where + issue[0])
        if name == "cap-alert":
            try:
                obj = {**obj, "_area_wkt": shared.warning_area(obj, where)}
            except (cap.CapError, ValueError) as exc:
                raise EnvelopeError(str(exc), code="invalid_area", pointer=getattr(exc, "pointer", where)) from None
        objects.append(obj)
    return objects


async def _effect(
    session: AsyncSession, caller: PartnerCaller, envelope: dict[str, Any], content_type: str, obj: dict[str, Any]
) -> dict[str, Any]:
    partner = caller.partner_id
    kind = envelope["distributionKind"]
    exercise = envelope["distributionStatus"] != "Actual"
    match content_type:
        case "incident":
            return await shared.receive_incident(
                session=session, partner_id=partner, obj=obj, kind=kind, exercise=exercise
            )
        case "cap-alert" | "cap-alert+xml":
            area = obj.pop("_area_wkt", None)
            return await shared.receive_warning(
                session=session, partner_id=partner, alert=obj, exercise=exercise, area_wkt=area
            )
        case "RequestResource":
            return await aid.receive_request(session=session, partner_id=partner, obj=obj, exercise=exercise)
        case "ResponseToRequestResource":
            return await aid.receive_response(session=session, partner_id=partner, obj=obj)
        case "CommitResource":
            return await aid.receive_commit(session=session, partner_id=partner, obj=obj)
        case "ReleaseResource":
            return await aid.receive_release(session=session, partner_id=partner, obj=obj)
        case "CancelRequestResource":
            return await aid.receive_cancel(session=session, partner_id=partner, obj=obj)
        case "OfferUnsolicitedResource":
            return await aid.receive_offer(session=session, partner_id=partner, obj=obj, exercise=exercise)
        case _:  # ack, error: kept in the inbox and on the feed, nothing else to do
            await event_service.record(
                session=session,
                topic=f"federation.partner_{content_type}",
                subject_type="partner",
                subject_id=partner,
                actor=caller.actor,
                exercise=exercise,
                data={"partner": partner, "references": envelope.get("distributionReference", []), "content": obj},
            )
            return {"contentType": content_type, "result": "recorded"}


async def _stored_answer(
    session: AsyncSession, sender: str, distribution_id: str, digest: str
) -> tuple[int, bytes] | None:
    row = await session.scalar(
        select(InboundMessage).where(
            InboundMessage.sender_id == sender, InboundMessage.distribution_id == distribution_id
        )
    )
    if row is None:
        return None
    if row.body_sha256 != digest:
        raise EnvelopeError(
            f"distributionID {distribution_id} was already used for a different message",
            code="distribution_id_reused",
            status_code=409,
            pointer="/distributionID",
        )
    assert row.response_status is not None and row.response_body is not None
    return row.response_status, row.response_body.encode()


async def receive(
    *, session: AsyncSession, settings: Settings, caller: PartnerCaller, body: bytes
) -> tuple[int, bytes, bool]:
    """Handle one signed inbound message; returns (status, body, replayed)."""
    envelope = _parse(body)
    objects = _check(envelope, caller)
    sender, distribution_id = envelope["senderID"], envelope["distributionID"]
    digest = _canonical_sha256(envelope)

    stored = await _stored_answer(session, sender, distribution_id, digest)
    if stored is not None:
        return stored[0], stored[1], True

    now = utcnow()
    expires = parse_time(envelope["dateTimeExpires"])
    if expires <= now:
        raise EnvelopeError(
            f"the message expired at {envelope['dateTimeExpires']}",
            code="message_expired",
            status_code=400,
            pointer="/dateTimeExpires",
        )
    sent = parse_time(envelope["dateTimeSent"])
    if sent - now > timedelta(seconds=settings.federation_clock_skew_s):
        raise EnvelopeError(
            "dateTimeSent is in the future", code="sent_in_future", status_code=400, pointer="/dateTimeSent"
        )

    # Claim the distributionID first: a concurrent duplicate waits here for us, then replays our answer.
    inbound_id = await session.scalar(
        pg_insert(InboundMessage)
        .values(
            sender_id=sender,
            distribution_id=distribution_id,
            distribution_kind=envelope["distributionKind"],
            distribution_status=envelope["distributionStatus"],
            content_types=[c["contentType"] for c in envelope["content"]],
            sent_at=sent,
            expires_at=expires,
            key_id=caller.key_id or "",
            body_sha256=digest,
            envelope=envelope,
        )
        .on_conflict_do_nothing(constraint="uq_federation_inbound_sender_distribution")
        .returning(InboundMessage.id)
    )
    if inbound_id is None:
        stored = await _stored_answer(session, sender, distribution_id, digest)
        assert stored is not None
        return stored[0], stored[1], True

    results: list[dict[str, Any]] = []
    status = envelope["distributionStatus"]
    for index, (item, obj) in enumerate(zip(envelope["content"], objects, strict=True)):
        if status in NO_EFFECTS:
            results.append({"contentType": item["contentType"], "result": f"no_effect_{status.lower()}"})
            continue
        try:
            results.append(await _effect(session, caller, envelope, item["contentType"], obj))
        except EnvelopeError:
            raise
        except AppError as exc:
            # The whole message is refused (the request's transaction rolls back: nothing stored).
            raise EnvelopeError(
                exc.message,
                code=exc.code,
                status_code=exc.status_code,
                pointer=f"/content/{index}",
                details=exc.details,
            ) from None
    await event_service.record(
        session=session,
        topic="federation.message_received",
        subject_type="federation_inbound",
        subject_id=inbound_id,
        actor=caller.actor,
        exercise=status != "Actual",
        data={
            "inbound_id": inbound_id,
            "partner": sender,
            "distribution_id": distribution_id,
            "kind": envelope["distributionKind"],
            "content_types": [c["contentType"] for c in envelope["content"]],
        },
    )
    answer = dumps(
        ack(
            sender=settings.federation_sender_id,
            recipient=sender,
            reference=distribution_id,
            status=status,
            results=results,
        )
    )
    row = await session.get(InboundMessage, inbound_id)
    assert row is not None
    row.response_status = 200
    row.response_body = answer.decode()
    await session.flush()
    return 200, answer, False
