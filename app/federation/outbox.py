"""The outbox: messages to partners are written in the caller's transaction and delivered by a worker,
in id order per partner, retried with capped exponential backoff and jitter until acknowledged.

Claiming: the oldest pending message of a partner is locked by primary key with
`SELECT ... FOR UPDATE SKIP LOCKED` and held while it is sent, so two workers never send one message at
once and never overtake each other (a second worker finds the partner's head locked and moves on). The
partner's replay check (distributionID) makes a resend after a crash harmless: it answers as before.
"""

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import AppError, Conflict, NotFound
from app.events import service as event_service
from app.federation import signing
from app.federation.envelope import JSON, dumps, envelope, parse_time, utcnow
from app.federation.models import OutboxMessage, OutboxState
from app.federation.trust import endpoint_of, outbound_key, partner_secrets
from app.partners.models import Partner

log = structlog.get_logger(__name__)

MESSAGES_PATH = "/federation/v1/messages"
SESSION_WAKE = "federation_outbox_wake"
# Answers that will not change by sending the same bytes again: the message is refused for good.
PERMANENT = {400, 404, 405, 409, 410, 413, 415, 422}
# How many messages one pass sends to one partner before it lets the others have a turn.
BATCH = 50


class PartnerNotConfigured(AppError):
    status_code = 409
    code = "partner_not_configured"


async def usable_partner(session: AsyncSession, settings: Settings, partner_id: str) -> Partner:
    """A partner we can send to: known, active, with an outbound key and an endpoint."""
    partner = await session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"no partner has the id {partner_id}", code="partner_not_found", details={"partner": partner_id})
    if not partner.active:
        raise Conflict(f"the agreement with {partner_id} is not active", code="partner_inactive")
    missing = []
    if outbound_key(settings, partner_id) is None:
        missing.append("outbound key")
    if endpoint_of(settings, partner) is None:
        missing.append("endpoint")
    if missing:
        raise PartnerNotConfigured(
            f"{partner_id} has no {' and no '.join(missing)} configured (JIZHOU_FEDERATION_PARTNERS)",
            details={"partner": partner_id, "missing": missing},
        )
    return partner


async def enqueue(
    *,
    session: AsyncSession,
    settings: Settings,
    partner_id: str,
    kind: str,
    status: str,
    contents: list[dict[str, Any]],
    actor: str,
    subject_type: str | None = None,
    subject_id: str | int | None = None,
    references: list[str] | None = None,
    ttl_s: int | None = None,
) -> OutboxMessage:
    """Write one message for one partner in the caller's transaction (it leaves only if that commits)."""
    await usable_partner(session, settings, partner_id)
    ttl = timedelta(seconds=ttl_s if ttl_s is not None else settings.federation_default_ttl_s)
    env = envelope(
        sender=settings.federation_sender_id,
        kind=kind,
        status=status,
        contents=contents,
        ttl=ttl,
        recipients=[partner_id],
        references=references,
    )
    message = OutboxMessage(
        partner_id=partner_id,
        distribution_id=env["distributionID"],
        distribution_kind=kind,
        distribution_status=status,
        content_types=[c["contentType"] for c in contents],
        body=dumps(env).decode(),
        expires_at=parse_time(env["dateTimeExpires"]),
        created_by=actor,
        subject_type=subject_type,
        subject_id=str(subject_id) if subject_id is not None else None,
        next_attempt_at=parse_time(env["dateTimeSent"]),
    )
    session.add(message)
    await session.flush()
    await event_service.record(
        session=session,
        topic="federation.message_queued",
        subject_type="federation_message",
        subject_id=message.id,
        actor=actor,
        exercise=status != "Actual",
        data=message_event_data(message),
    )
    session.info[SESSION_WAKE] = True
    return message


def message_event_data(message: OutboxMessage, **extra: Any) -> dict[str, Any]:
    return {
        "outbox_id": message.id,
        "partner": message.partner_id,
        "distribution_id": message.distribution_id,
        "kind": message.distribution_kind,
        "content_types": list(message.content_types),
        "state": message.state.value if message.state else OutboxState.PENDING.value,
        **extra,
    }


async def list_messages(
    *,
    session: AsyncSession,
    partner: str | None,
    state: OutboxState | None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[OutboxMessage], int]:
    stmt = select(OutboxMessage)
    if partner:
        stmt = stmt.where(OutboxMessage.partner_id == partner)
    if state:
        stmt = stmt.where(OutboxMessage.state == state)
    if subject_type:
        stmt = stmt.where(OutboxMessage.subject_type == subject_type)
    if subject_id:
        stmt = stmt.where(OutboxMessage.subject_id == subject_id)
    matched = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = await session.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit).offset(offset))
    return list(rows), int(matched or 0)


async def get_message(*, session: AsyncSession, outbox_id: int) -> OutboxMessage:
    message = await session.get(OutboxMessage, outbox_id)
    if message is None:
        raise NotFound(f"no outbox message has the id {outbox_id}", code="outbox_message_not_found")
    return message


# --- delivery ----------------------------------------------------------------------------------------------


def backoff_s(attempts: int, settings: Settings, rand: Callable[[], float] = random.random) -> float:
    """Capped exponential backoff with jitter: between half and all of min(cap, base * 2^(attempts-1))."""
    ceiling = min(settings.federation_retry_max_s, settings.federation_retry_base_s * 2.0 ** max(0, attempts - 1))
    return float(ceiling * (0.5 + 0.5 * rand()))


@dataclass
class Outcome:
    outbox_id: int
    partner_id: str
    distribution_id: str
    state: OutboxState
    status: int | None
    error: str | None


@dataclass
class DeliveryReport:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def delivered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state is OutboxState.DELIVERED]


def _acknowledged(response: httpx.Response, distribution_id: str) -> tuple[bool, str | None]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return False, "the answer is not JSON"
    if not isinstance(body, dict) or body.get("distributionKind") != "Ack":
        return False, "the answer is not an Ack envelope"
    if distribution_id not in (body.get("distributionReference") or []):
        return False, "the Ack does not reference this message"
    return True, None


def _unsigned_answer(
    settings: Settings, partner_id: str, request_signature: str, response: httpx.Response
) -> str | None:
    """Why an answer that would settle a message cannot be trusted; None when it carries the partner's
    signature over our request (or the check is turned off)."""
    if not settings.federation_require_signed_answers:
        return None
    try:
        signing.verify_answer(
            status=response.status_code,
            request_signature=request_signature,
            body=response.content,
            headers={k.lower(): v for k, v in response.headers.items()},
            secret_for=partner_secrets(settings, partner_id),
            max_skew_s=settings.federation_clock_skew_s,
        )
    except signing.SignatureError as exc:
        return f"HTTP {response.status_code} answer refused, {exc.code}: {exc.message}"
    return None


def _error_text(response: httpx.Response) -> str:
    code = response.headers.get("fed-error-code")
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        if body.get("distributionKind") == "Error":
            problem = ((body.get("content") or [{}])[0]).get("contentObject") or {}
            code = problem.get("code", code)
            where = f" at {problem['pointer']}" if problem.get("pointer") else ""
            return f"HTTP {response.status_code} {code}: {problem.get('message', '')}{where}"
        if "code" in body:
            return f"HTTP {response.status_code} {body['code']}: {body.get('message', '')}"
    return f"HTTP {response.status_code}: {response.text[:300]}"


async def _send_head(
    session: AsyncSession, settings: Settings, client: httpx.AsyncClient, partner_id: str, now: datetime
) -> Outcome | None:
    """Lock, send and settle the oldest pending message of one partner; None when there is nothing to do."""
    head_id = await session.scalar(
        select(OutboxMessage.id)
        .where(OutboxMessage.partner_id == partner_id, OutboxMessage.state == OutboxState.PENDING)
        .order_by(OutboxMessage.id)
        .limit(1)
    )
    if head_id is None:
        return None
    message = await session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.id == head_id, OutboxMessage.state == OutboxState.PENDING)
        .with_for_update(skip_locked=True)
    )
    if message is None or message.next_attempt_at > now:
        # Held by another worker, or not due yet: the rest of this partner's queue waits behind it.
        return None
    if message.expires_at <= now:
        message.state = OutboxState.EXPIRED
        message.last_error = (message.last_error or "") + " | expired before the partner acknowledged it"
        await _settled_event(session, message, "federation.message_expired")
        return Outcome(message.id, partner_id, message.distribution_id, message.state, None, message.last_error)

    message.attempts += 1
    message.last_attempt_at = now
    status: int | None = None
    error: str | None = None
    body_text: str | None = None
    delivered = False
    permanent = False
    partner = await session.get(Partner, partner_id)
    key = outbound_key(settings, partner_id)
    url = endpoint_of(settings, partner) if partner is not None else None
    if partner is None or key is None or url is None or not partner.active:
        error = "the partner is not configured for delivery (endpoint, outbound key, active)"
    else:
        body = message.body.encode()
        target = httpx.URL(url + MESSAGES_PATH)
        headers = {"Content-Type": JSON, "Accept": JSON}
        headers |= signing.sign(
            method="POST",
            path=target.path,
            query=target.query.decode(),
            body=body,
            key_id=key[0],
            secret=key[1],
        )
        try:
            response = await client.post(target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        else:
            status = response.status_code
            body_text = response.text[:20000]
            settles = 200 <= status < 300 or status in PERMANENT
            forged = _unsigned_answer(settings, partner_id, headers[signing.H_SIG], response) if settles else None
            if forged is not None:
                error = forged  # neither delivered nor given up on an answer the partner did not sign: retried
            elif 200 <= status < 300:
                delivered, error = _acknowledged(response, message.distribution_id)
            else:
                error = _error_text(response)[:1000]
                permanent = status in PERMANENT
    message.response_status = status
    message.response_body = body_text
    if delivered:
        message.state = OutboxState.DELIVERED
        message.delivered_at = now
        message.last_error = None
        await _settled_event(session, message, "federation.message_delivered")
    elif permanent:
        message.state = OutboxState.REJECTED
        message.last_error = error
        await _settled_event(session, message, "federation.message_rejected")
    else:
        message.last_error = error
        message.next_attempt_at = now + timedelta(seconds=backoff_s(message.attempts, settings))
    return Outcome(message.id, partner_id, message.distribution_id, message.state, status, message.last_error)


async def _settled_event(session: AsyncSession, message: OutboxMessage, topic: str) -> None:
    await event_service.record(
        session=session,
        topic=topic,
        subject_type="federation_message",
        subject_id=message.id,
        actor="system:federation-outbox",
        exercise=message.distribution_status != "Actual",
        data=message_event_data(message, attempts=message.attempts, error=message.last_error),
    )


async def deliver_partner(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: httpx.AsyncClient,
    partner_id: str,
    now: Callable[[], datetime] = utcnow,
) -> list[Outcome]:
    """Send this partner's due messages in order until one is not acknowledged (it blocks the rest)."""
    outcomes: list[Outcome] = []
    for _ in range(BATCH):
        async with sessionmaker() as session, session.begin():
            outcome = await _send_head(session, settings, client, partner_id, now())
        if outcome is None:
            break
        outcomes.append(outcome)
        if outcome.state is OutboxState.PENDING:
            break
    return outcomes


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: httpx.AsyncClient,
    now: Callable[[], datetime] = utcnow,
) -> DeliveryReport:
    """One pass over every partner with pending messages (partners in parallel, each in order)."""
    async with sessionmaker() as session:
        partners = list(
            await session.scalars(
                select(OutboxMessage.partner_id).where(OutboxMessage.state == OutboxState.PENDING).distinct()
            )
        )
    results = await asyncio.gather(*(deliver_partner(sessionmaker, settings, client, p, now) for p in partners))
    return DeliveryReport([o for outcomes in results for o in outcomes])


async def next_due(sessionmaker: async_sessionmaker[AsyncSession]) -> datetime | None:
    async with sessionmaker() as session:
        return await session.scalar(
            select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.state == OutboxState.PENDING)
        )


class OutboxWorker:
    """The delivery loop of one process (started in the app's lifespan). Any number may run at once."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.client = client or httpx.AsyncClient(
            timeout=settings.federation_http_timeout_s, follow_redirects=False, trust_env=False
        )
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def after_commit(self, session: AsyncSession) -> None:
        if session.info.pop(SESSION_WAKE, False):
            self.wake()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="federation-outbox")

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=self.settings.federation_http_timeout_s + 2)
            except TimeoutError:
                self._task.cancel()
        await self.client.aclose()

    async def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self.settings.federation_worker_poll_s
            try:
                await deliver_due(self.sessionmaker, self.settings, self.client)
                due = await next_due(self.sessionmaker)
                if due is not None:
                    # A floor keeps a head held by another worker from turning this into a busy loop.
                    wait = max(0.05, min(wait, (due - utcnow()).total_seconds()))
            except Exception:
                # The database or the network failed this pass; the next pass tries again.
                log.exception("federation_outbox_pass_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
