"""The event log: every state change writes its event in the same transaction as the change."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, cast, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.models import Event

SESSION_WROTE_EVENTS = "wrote_events"
_ROWS_PER_INSERT = 2000

# Retention leaves one `event.pruned` marker per batch it deletes: {"through_seq": highest seq deleted, ...}.
RETENTION_SUBJECT = ("event", "retention")
# One pruner at a time across every process (pg_try_advisory_xact_lock key).
_PRUNE_LOCK = 7_261_420_130_551


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


def mark_written(*, session: AsyncSession) -> None:
    """For a statement that wrote events itself (an INSERT INTO event inside a larger one): the live feed is
    woken after the commit, as it is for `record`."""
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


async def page_after(*, session: AsyncSession, after_seq: int, upto_seq: int, limit: int) -> list[Event]:
    """Events with after_seq < seq <= upto_seq, in seq order (the live feed's replay)."""
    rows = await session.scalars(
        select(Event).where(Event.seq > after_seq, Event.seq <= upto_seq).order_by(Event.seq).limit(limit)
    )
    return list(rows)


async def oldest_seq(*, session: AsyncSession) -> int | None:
    return await session.scalar(select(func.min(Event.seq)))


async def newest_seq(*, session: AsyncSession) -> int:
    """The highest committed seq."""
    return int(await session.scalar(select(func.coalesce(func.max(Event.seq), 0))) or 0)


async def issued_seq(*, session: AsyncSession) -> int:
    """The highest seq the sequence has handed out, committed or not (0 before the first)."""
    row = (await session.execute(text("SELECT last_value, is_called FROM event_seq_seq"))).one()
    return int(row.last_value) if row.is_called else 0


async def pruned_through(*, session: AsyncSession) -> int:
    """The highest seq retention has deleted (0 if none): a replay from below it has lost events."""
    value = await session.scalar(
        select(func.max(cast(Event.data["through_seq"].astext, BigInteger))).where(
            Event.subject_type == RETENTION_SUBJECT[0], Event.subject_id == RETENTION_SUBJECT[1]
        )
    )
    return int(value or 0)


async def prune(*, session: AsyncSession, older_than: datetime, batch: int = 10_000) -> int | None:
    """Delete up to `batch` events older than `older_than`, oldest seqs first, and record an `event.pruned`
    marker (the audit trail says what retention removed, and the feed knows how far replay is lost).

    Returns how many were deleted, or None when another process is pruning right now. The event table's
    trigger refuses UPDATE only: trimming by retention is the one change it allows.
    """
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(_PRUNE_LOCK))):
        return None
    oldest = select(Event.seq).where(Event.ts < older_than).order_by(Event.seq).limit(batch)
    deleted = list(
        await session.scalars(
            delete(Event)
            .where(Event.seq.in_(oldest.scalar_subquery()))
            .returning(Event.seq)
            .execution_options(synchronize_session=False)
        )
    )
    if deleted:
        await record(
            session=session,
            topic="event.pruned",
            subject_type=RETENTION_SUBJECT[0],
            subject_id=RETENTION_SUBJECT[1],
            actor="system:retention",
            data={"through_seq": max(deleted), "deleted": len(deleted), "older_than": older_than.isoformat()},
        )
    return len(deleted)
