"""`/api/v1/live`: authenticate, read the query, then hand the socket to LiveSocket (docs/asyncapi.yaml).

The socket is accepted before anything is checked, so that a refusal reaches the client as a close code
with a reason (browsers cannot read the HTTP status of a refused handshake). Tokens never reach the logs.
"""

import asyncio
import re

import jwt
import structlog
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from app.auth import Principal, decode_token
from app.config import Settings
from app.errors import Unauthorized
from app.live.connection import LiveSocket, validation_summary
from app.live.hub import LiveHub
from app.live.schemas import CloseCode, Subscribe, close_reason
from app.live.scope import ScopeViolation, Subscription, subscription_for
from app.users.models import Role

log = structlog.get_logger(__name__)

router = APIRouter(tags=["live"])

BEARER_SUBPROTOCOL = "bearer"
READY_WAIT_S = 10.0
_SEQ = re.compile(r"^[0-9]{1,18}$")


def bearer_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to answer with). Order: Authorization header; `Sec-WebSocket-Protocol: bearer,
    <token>` (browsers cannot set headers); `?access_token=`. A client offering `bearer` gets it echoed."""
    offered: list[str] = list(websocket.scope.get("subprotocols") or [])
    subprotocol = BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in offered else None
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), subprotocol
    if subprotocol is not None:
        position = offered.index(BEARER_SUBPROTOCOL)
        if position + 1 < len(offered):
            return offered[position + 1], subprotocol
    return websocket.query_params.get("access_token") or None, subprotocol


def token_expiry(token: str) -> float | None:
    """The `exp` of a token decode_token has just verified."""
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    return float(exp) if isinstance(exp, int | float) else None


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


class BadQuery(Exception):
    pass


_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def parse_batch(websocket: WebSocket) -> bool:
    """`batch=true`: events arrive as `batch` messages, every event that became deliverable at once in one frame."""
    raw = websocket.query_params.get("batch")
    if raw is None:
        return False
    if raw.lower() not in _FLAGS:
        raise BadQuery("batch must be true or false")
    return _FLAGS[raw.lower()]


def parse_query(websocket: WebSocket, principal: Principal) -> tuple[int | None, Subscription]:
    """`since`, and the initial filter (`topics`, `townships`: comma-separated, as in a subscribe message)."""
    raw_since = websocket.query_params.get("since")
    if raw_since is not None and not _SEQ.match(raw_since):
        raise BadQuery("since must be a non-negative integer (the last seq received)")
    topics = _split(websocket.query_params.get("topics"))
    townships = _split(websocket.query_params.get("townships"))
    try:
        wanted = Subscribe(type="subscribe", topics=topics or ["*"], townships=townships or None)
    except ValidationError as exc:
        raise BadQuery(validation_summary(exc)) from None
    return (int(raw_since) if raw_since is not None else None), subscription_for(
        principal, wanted.topics, wanted.townships
    )


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    """The live event feed (see docs/asyncapi.yaml)."""
    settings: Settings = websocket.app.state.settings
    hub: LiveHub | None = websocket.app.state.live_hub
    token, subprotocol = bearer_token(websocket)
    await websocket.accept(subprotocol=subprotocol)
    # Where a socket without since starts, taken at once: what commits while it is checked and while it waits
    # for a feed that is still settling (a process that has just started) must still reach it.
    accepted_at = hub.position_now() if hub is not None else None

    async def refuse(code: CloseCode, name: str, detail: str) -> None:
        log.info("live_refused", code=int(code), reason=name)
        await websocket.close(code, close_reason(name, detail))

    if hub is None:
        # JIZHOU_LIVE_ENABLED=false: nothing is lost, the events are in the table for a resume elsewhere.
        await refuse(
            CloseCode.DATABASE_UNAVAILABLE, "live_disabled", "the feed is off on this process; retry with since"
        )
        return
    if token is None:
        await refuse(CloseCode.UNAUTHORIZED, "unauthorized", "a bearer token is required")
        return
    try:
        principal = decode_token(token, settings)
    except Unauthorized as exc:
        await refuse(CloseCode.UNAUTHORIZED, exc.code, exc.message)
        return
    if principal.role is Role.PARTNER:
        await refuse(CloseCode.FORBIDDEN, "partner_not_allowed", "partner tokens are for the federation endpoints")
        return
    try:
        since, subscription = parse_query(websocket, principal)
        batch = parse_batch(websocket)
    except BadQuery as exc:
        await refuse(CloseCode.BAD_REQUEST, "bad_request", str(exc))
        return
    except ScopeViolation as exc:
        await refuse(CloseCode.FORBIDDEN, "forbidden", str(exc))
        return
    if since is None:
        # Otherwise it would start from the watermark it finds once attached, after whatever committed in
        # between (bench section 4 saw the first incident after a start reach none of the screens connected).
        # What committed since `accepted_at` is replayed, as for any resume.
        since = accepted_at if accepted_at is not None else await hub.newest_committed_seq()
    try:
        await asyncio.wait_for(hub.ready.wait(), READY_WAIT_S)
    except TimeoutError:
        await refuse(CloseCode.DATABASE_UNAVAILABLE, "live_unavailable", "the feed is not ready; retry with since")
        return
    log.info(
        "live_opened",
        role=principal.role.value,
        subject=principal.subject,
        township=principal.township,
        team=principal.team_id,
        since=since,
        batch=batch,
    )
    await LiveSocket(
        websocket, hub, principal, subscription, since=since, expires_at=token_expiry(token), batch=batch
    ).run()
