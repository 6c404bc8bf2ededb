"""The event log: every state change writes its event in the same transaction as the change."""

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.models import Event

SESSION_WROTE_EVENTS = "wrote_events"
_ROWS_PER_INSERT = 2000


def _row(
    topic: str,
    subject_type: str,
    subject_id: str | int,
    actor: str,
    data: dict[str, Any],
    township: str | None,
    exercise: bool,
) -> dict[str, Any]:
    return {
        "topic": topic,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "actor": actor,
        "data": data,
        "township_code": township,
        "exercise": exercise,
    }


async def record(
    *,
    session: AsyncSession,
    topic: str,
    subject_type: str,
    subject_id: str | int,
    actor: str,
    data: dict[str, Any],
    township: str | None = None,
    exercise: bool = False,
) -> int:
    """Append one event; returns its seq."""
    seq = await session.scalar(
        insert(Event)
        .values(_row(topic, subject_type, subject_id, actor, data, township, exercise))
        .returning(Event.seq)
    )
    session.info[SESSION_WROTE_EVENTS] = True
    return int(seq)  # type: ignore[arg-type]


async def record_many(*, session: AsyncSession, events: list[dict[str, Any]]) -> None:
    """Append several events (dicts with the keyword arguments of `record`) in one statement."""
    if not events:
        return
    rows = [
        _row(
            e["topic"],
            e["subject_type"],
            e["subject_id"],
            e["actor"],
            e.get("data", {}),
            e.get("township"),
            e.get("exercise", False),
        )
        for e in events
    ]
    # One multi-row INSERT per chunk (an executemany would be one statement per event on asyncpg);
    # chunks keep the bind parameters under PostgreSQL's 32767.
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        await session.execute(insert(Event).values(rows[start : start + _ROWS_PER_INSERT]))
    session.info[SESSION_WROTE_EVENTS] = True


async def timeline(
    *, session: AsyncSession, subject_type: str, subject_id: str | int, limit: int = 1000, after_seq: int = 0
) -> list[Event]:
    rows = await session.scalars(
        select(Event)
        .where(Event.subject_type == subject_type, Event.subject_id == str(subject_id), Event.seq > after_seq)
        .order_by(Event.seq)
        .limit(limit)
    )
    return list(rows)
