"""What travels on `/api/v1/live`: close codes, the event as sent, and the client's messages.

docs/asyncapi.yaml describes the same protocol for clients; tests/live/test_protocol_doc.py keeps the two in step.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter


class CloseCode(IntEnum):
    """Why the server closed the socket. The reason text starts with the lower_snake name.

    Under uvicorn, the server itself closes every socket with 1012 (service restart) when told to stop, before
    the application's shutdown (and its 1001) runs; clients treat both alike: reconnect with since.
    """

    SERVER_SHUTDOWN = 1001  # going away: reconnect (to another process) with since
    DATABASE_UNAVAILABLE = 1013  # try again later, with since
    INTERNAL_ERROR = 1011
    BAD_REQUEST = 4400  # a malformed query parameter or client message
    UNAUTHORIZED = 4401  # no token, an invalid one, or it expired while connected
    FORBIDDEN = 4403  # partner token, or a subscription outside the token's scope
    SLOW_CONSUMER = 4408  # the client did not keep up: resume with since
    HEARTBEAT_TIMEOUT = 4410  # no pong to a ping in time


MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 123 bytes


def close_reason(name: str, detail: str = "") -> str:
    text = f"{name}: {detail}" if detail else name
    encoded = text.encode()
    if len(encoded) <= MAX_REASON_BYTES:
        return text
    return encoded[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One row of the event table as the feed carries it, with its message serialized once for every socket."""

    seq: int
    topic: str
    ts: datetime
    township: str | None
    subject_type: str
    subject_id: str
    actor: str
    exercise: bool
    data: dict[str, Any]
    text: str
    size: int  # bytes of `text` in UTF-8: what a batch frame is measured in

    @classmethod
    def build(
        cls,
        *,
        seq: int,
        topic: str,
        ts: datetime,
        township: str | None,
        subject_type: str,
        subject_id: str,
        actor: str,
        exercise: bool,
        data: dict[str, Any],
    ) -> "FeedEvent":
        message = {
            "type": "event",
            "seq": seq,
            "topic": topic,
            "ts": ts,
            "township": township,
            "subject": {"type": subject_type, "id": subject_id},
            "exercise": exercise,
            "actor": actor,
            "data": data,
        }
        encoded = orjson.dumps(message)
        return cls(
            seq=seq,
            topic=topic,
            ts=ts,
            township=township,
            subject_type=subject_type,
            subject_id=subject_id,
            actor=actor,
            exercise=exercise,
            data=data,
            text=encoded.decode(),
            size=len(encoded),
        )

    def late_text(self) -> str:
        """The message for an event that committed after the feed had given its seq up (see watermark.py)."""
        return self.text[:-1] + ',"late":true}'


# A batch frame (for clients that connect with `?batch=true`) stays under this many bytes unless one event alone is
# larger: common websocket clients refuse messages over 1 MiB by default.
BATCH_MAX_BYTES = 256 * 1024
_BATCH_HEAD = '{"type":"batch","events":['
_BATCH_TAIL = "]}"
BATCH_OVERHEAD_BYTES = len(_BATCH_HEAD) + len(_BATCH_TAIL)


def batch_message(texts: list[str]) -> str:
    """`{"type": "batch", "events": [...]}` around event messages serialized already: joined, never re-encoded."""
    return _BATCH_HEAD + ",".join(texts) + _BATCH_TAIL


PING = orjson.dumps({"type": "ping"}).decode()


def reset_message(*, reason: str, oldest_seq: int | None, pruned_through: int, message: str) -> str:
    return orjson.dumps(
        {
            "type": "reset",
            "reason": reason,
            "oldest_seq": oldest_seq,
            "pruned_through": pruned_through,
            "message": message,
        }
    ).decode()


def subscribed_message(topics: tuple[str, ...], townships: frozenset[str] | None) -> str:
    return orjson.dumps(
        {"type": "subscribed", "topics": list(topics), "townships": sorted(townships) if townships else None}
    ).decode()


TopicPattern = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.*]{1,64}$")]
TownshipCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")]


class Subscribe(BaseModel):
    """Replace the socket's filter: topics with `*` wildcards, and townships (district-wide events always pass)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["subscribe"]
    topics: list[TopicPattern] = Field(default=["*"], min_length=1, max_length=50)
    townships: list[TownshipCode] | None = Field(default=None, min_length=1, max_length=64)


class Pong(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["pong"]


ClientMessage = TypeAdapter[Subscribe | Pong](Annotated[Subscribe | Pong, Field(discriminator="type")])
MAX_CLIENT_MESSAGE_BYTES = 16_384
