"""EDXL-DE 2.0 style envelopes: building them, our Ack and Error answers, and the times in them."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.errors import AppError

JSON = "application/json"
CAP_XML = "application/cap+xml"
ERROR_CODE_HEADER = "Fed-Error-Code"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second (what the schemas' date-time accepts everywhere)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """An RFC 3339 date-time (already checked by the schema) as an aware datetime."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:  # the schema's format check refuses these; never guess a zone
        raise ValueError("a date-time needs an offset")
    return moment


def new_distribution_id(sender: str) -> str:
    return f"{sender}:{uuid.uuid4().hex}"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def envelope(
    *,
    sender: str,
    kind: str,
    status: str,
    contents: list[dict[str, Any]],
    ttl: timedelta,
    recipients: list[str] | None = None,
    references: list[str] | None = None,
    now: datetime | None = None,
    distribution_id: str | None = None,
) -> dict[str, Any]:
    sent = now or utcnow()
    out: dict[str, Any] = {
        "distributionID": distribution_id or new_distribution_id(sender),
        "senderID": sender,
        "dateTimeSent": iso(sent),
        "dateTimeExpires": iso(sent + ttl),
        "distributionStatus": status,
        "distributionKind": kind,
    }
    if recipients:
        out["recipientID"] = recipients
    if references:
        out["distributionReference"] = references
    out["content"] = contents
    return out


def ack(*, sender: str, recipient: str, reference: str, status: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    return envelope(
        sender=sender,
        kind="Ack",
        status=status,
        ttl=timedelta(days=1),
        recipients=[recipient],
        references=[reference],
        contents=[{"contentType": "ack", "contentObject": {"status": "accepted", "results": results}}],
    )


def error(
    *,
    sender: str,
    code: str,
    message: str,
    pointer: str | None,
    details: Any,
    recipient: str | None,
    reference: str | None,
    status: str,
) -> dict[str, Any]:
    problem: dict[str, Any] = {"code": code, "message": message}
    if pointer is not None:
        problem["pointer"] = pointer
    if details is not None:
        problem["details"] = details
    return envelope(
        sender=sender,
        kind="Error",
        status=status,
        ttl=timedelta(days=1),
        recipients=[recipient] if recipient else None,
        references=[reference] if reference else None,
        contents=[{"contentType": "error", "contentObject": problem}],
    )


class EnvelopeError(AppError):
    """A message we refuse: answered with an Error envelope naming the field (JSON pointer), nothing stored."""

    status_code = 422
    code = "invalid_message"

    def __init__(self, message: str, *, pointer: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.pointer = pointer
