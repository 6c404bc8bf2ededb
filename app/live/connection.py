"""One open `/api/v1/live` socket: resume (replay from the table), then live events, heartbeats, expiry.

Four tasks share the socket: the stream (replay, then the subscriber's queue), the reader (pong, subscribe),
the heartbeat and the token's expiry. The first of them, or the hub, to decide how the socket ends wins;
the others are cancelled and the socket is closed with that code.
"""

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import structlog
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.auth import Principal
from app.errors import is_database_unavailable
from app.live.delivery import Share, Subscriber, batch_frames
from app.live.hub import LiveHub
from app.live.schemas import (
    MAX_CLIENT_MESSAGE_BYTES,
    PING,
    ClientMessage,
    CloseCode,
    FeedEvent,
    Pong,
    close_reason,
    reset_message,
    subscribed_message,
)
from app.live.scope import ScopeViolation, Subscription, subscription_for

log = structlog.get_logger(__name__)

CLOSE_WAIT_S = 10.0  # a slow consumer's close frame waits behind what its socket still buffers
MAX_UNQUEUED_PASSES = 5  # replay passes before subscribing, while far behind


def validation_summary(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "message"
    return f"{where}: {first.get('msg', 'invalid')}"


class LiveSocket:
    def __init__(
        self,
        websocket: WebSocket,
        hub: LiveHub,
        principal: Principal,
        subscription: Subscription,
        *,
        since: int | None,
        expires_at: float | None,
        batch: bool = False,
    ) -> None:
        self.ws = websocket
        self.hub = hub
        self.principal = principal
        self.since = since
        self.expires_at = expires_at
        settings = hub.settings
        self.subscriber = Subscriber(
            principal, subscription, queue_size=settings.live_queue_size, on_overflow=self._overflowed, batch=batch
        )
        # The client has every event it may see up to here: what to resume from.
        self.position = since or 0
        self.sent = 0
        self._outcome: asyncio.Future[tuple[int, str] | None] = asyncio.get_running_loop().create_future()
        self._pong = asyncio.Event()

    def close(self, code: int, reason: str) -> None:
        """End the socket with this code (the first decision wins). Called by the tasks and the hub."""
        if not self._outcome.done():
            self._outcome.set_result((code, reason))

    def _gone(self) -> None:
        if not self._outcome.done():
            self._outcome.set_result(None)

    def _overflowed(self) -> None:
        # The reason (with the resume point) is written when closing, after the stream has stopped.
        self.close(CloseCode.SLOW_CONSUMER, "")

    async def run(self) -> None:
        self.hub.open_socket(self.close)
        tasks = [
            asyncio.create_task(self._guard(self._stream())),
            asyncio.create_task(self._guard(self._read())),
            asyncio.create_task(self._guard(self._heartbeat())),
            asyncio.create_task(self._guard(self._expire())),
        ]
        try:
            outcome = await self._outcome
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.hub.detach(self.subscriber)
        try:
            if outcome is not None:
                code, reason = outcome
                if code == CloseCode.SLOW_CONSUMER:
                    reason = close_reason("slow_consumer", f"resume with since={self.position}")
                with contextlib.suppress(TimeoutError, OSError, RuntimeError, WebSocketDisconnect):
                    await asyncio.wait_for(self.ws.close(code, reason), CLOSE_WAIT_S)
        finally:
            self.hub.close_socket(self.close)
        log.info(
            "live_closed",
            role=self.principal.role.value,
            subject=self.principal.subject,
            code=outcome[0] if outcome else "client",
            sent=self.sent,
            position=self.position,
        )

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except (WebSocketDisconnect, OSError):
            self._gone()
        except Exception as exc:
            if is_database_unavailable(exc):
                log.warning("live_database_unavailable", error=type(exc).__name__)
                self.close(
                    CloseCode.DATABASE_UNAVAILABLE, close_reason("database_unavailable", "retry shortly with since")
                )
            else:
                log.exception("live_socket_failed")
                self.close(CloseCode.INTERNAL_ERROR, close_reason("internal_error"))

    async def _send(self, text: str) -> None:
        await self.ws.send_text(text)

    # -- the stream --------------------------------------------------------------------------------------

    async def _stream(self) -> None:
        hub = self.hub
        cursor = await self._check_resume(self.since) if self.since is not None else None
        if cursor is not None:
            # Far behind: catch up from the table before taking a queue, which a long replay would overflow.
            for _ in range(MAX_UNQUEUED_PASSES):
                target = hub.watermark
                if target - cursor <= hub.settings.live_queue_size // 2:
                    break
                cursor = await self._replay(cursor, target)
            self.subscriber.skip_through = cursor
            start = hub.attach(self.subscriber)
            if start > cursor:
                await self._replay(cursor, start)
        else:
            start = hub.attach(self.subscriber)
        self.position = max(self.position, start)
        subscriber = self.subscriber
        while True:
            shares = await subscriber.take()
            if subscriber.batch:
                await self._send_batches(shares)
                continue
            for share in shares:
                for event in share.events:
                    if share.late and event.seq in subscriber.replayed_late:
                        continue  # the replay found it committed in the table and sent it already, in its place
                    await self._send(event.late_text() if share.late else event.text)
                    self.sent += 1
                    if not share.late:
                        self.position = event.seq

    async def _send_batches(self, shares: list[Share]) -> None:
        """Everything that was waiting, as few frames as fit: one ASGI send (one socket write) for the lot."""
        if len(shares) == 1 and not shares[0].late:
            frames = shares[0].frames()  # the same strings for every socket with this filter
        else:
            late_dropped = self.subscriber.replayed_late
            frames = batch_frames(
                (event, share.late)
                for share in shares
                for event in share.events
                if not (share.late and event.seq in late_dropped)
            )
        for frame in frames:
            await self._send(frame.text)
            self.sent += frame.events
            if frame.last_seq is not None:
                self.position = frame.last_seq

    async def _replay(self, after: int, upto: int) -> int:
        """Send what the client may see of after < seq <= upto, from the table; returns upto."""
        hub, subscriber, batch = self.hub, self.subscriber, self.hub.settings.live_replay_batch
        while after < upto:
            page = await hub.replay_page(after, upto, batch)
            wanted: list[FeedEvent] = []
            for event in page:
                if subscriber.wants(event):
                    if hub.was_given_up(event.seq):
                        subscriber.replayed_late.add(event.seq)
                    wanted.append(event)
            if subscriber.batch:
                await self._send_batches([Share(wanted, late=False)])
            else:
                for event in wanted:
                    await self._send(event.text)
                    self.sent += 1
                    self.position = event.seq
            if len(page) < batch:
                break
            after = page[-1].seq
        self.position = max(self.position, upto)
        return upto

    async def _check_resume(self, since: int) -> int | None:
        """The cursor to replay from; None to go live from now. Sends `reset` when since cannot be honoured."""
        hub = self.hub
        if since < hub.pruned_through:
            await self._send(
                reset_message(
                    reason="since_pruned",
                    oldest_seq=await hub.oldest_seq(),
                    pruned_through=hub.pruned_through,
                    message="events after since were deleted by retention: reload state over REST; "
                    "every retained event after since follows",
                )
            )
            return since
        if since > hub.max_seen and since > await hub.issued_seq():
            await self._send(
                reset_message(
                    reason="since_ahead",
                    oldest_seq=await hub.oldest_seq(),
                    pruned_through=hub.pruned_through,
                    message="since is past every seq this database has issued (was it restored?): "
                    "reload state over REST; live events follow",
                )
            )
            return None
        return since

    # -- the client's side -------------------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self._gone()
                return
            text = message.get("text")
            if text is None:
                self.close(CloseCode.BAD_REQUEST, close_reason("bad_request", "binary frames are not in the protocol"))
                return
            if len(text) > MAX_CLIENT_MESSAGE_BYTES:
                self.close(CloseCode.BAD_REQUEST, close_reason("bad_request", "message too large"))
                return
            try:
                parsed = ClientMessage.validate_json(text)
            except ValidationError as exc:
                self.close(CloseCode.BAD_REQUEST, close_reason("bad_request", validation_summary(exc)))
                return
            if isinstance(parsed, Pong):
                self._pong.set()
                continue
            try:
                subscription = subscription_for(self.principal, parsed.topics, parsed.townships)
            except ScopeViolation as exc:
                self.close(CloseCode.FORBIDDEN, close_reason("forbidden", str(exc)))
                return
            self.subscriber.subscription = subscription
            await self._send(subscribed_message(subscription.topics, subscription.townships))

    async def _heartbeat(self) -> None:
        settings = self.hub.settings
        while True:
            await asyncio.sleep(settings.live_ping_interval_s)
            self._pong.clear()
            try:
                # The deadline covers the ping's own sending: a socket too backed up to take it is as good as dead.
                async with asyncio.timeout(settings.live_pong_timeout_s):
                    await self._send(PING)
                    await self._pong.wait()
            except TimeoutError:
                self.close(
                    CloseCode.HEARTBEAT_TIMEOUT,
                    close_reason("heartbeat_timeout", f"no pong within {settings.live_pong_timeout_s:g} s"),
                )
                return

    async def _expire(self) -> None:
        if self.expires_at is None:
            return
        await asyncio.sleep(max(0.0, self.expires_at - time.time()))
        self.close(CloseCode.UNAUTHORIZED, close_reason("token_expired", "reconnect with a fresh token and since"))
