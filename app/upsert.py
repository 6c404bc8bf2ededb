"""Idempotent upserts by natural key: unchanged rows are left alone (no write, no version bump)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from geoalchemy2 import Geography
from sqlalchemy import ColumnElement, Table, func, literal_column, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


@dataclass
class UpsertResult:
    inserted: list[Any] = field(default_factory=list)
    updated: list[Any] = field(default_factory=list)
    unchanged: int = 0
    # The natural key of every reported row (reported value -> key).
    key_of: dict[Any, Any] = field(default_factory=dict)


async def upsert_by_key(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    *,
    key: str,
    insert_only: Sequence[str] = (),
    returning: str | None = None,
) -> UpsertResult:
    """Insert new rows, update rows whose seed-owned columns differ, and say which were which.

    `insert_only` columns are set on insert and never overwritten (operational state such as a
    team's status). `returning` names the column to report (defaults to the key).
    """
    result = UpsertResult()
    if not rows:
        return result
    table: Table = model.__table__  # type: ignore[assignment]
    stmt = pg_insert(table).values(list(rows))
    owned = [c for c in rows[0] if c != key and c not in insert_only]

    def differs(column: str) -> ColumnElement[bool]:
        current, incoming = table.c[column], stmt.excluded[column]
        if isinstance(current.type, Geography):
            # Geography has no reliable equality; compare the exact binary form.
            return func.ST_AsBinary(current).is_distinct_from(func.ST_AsBinary(incoming))
        return current.is_distinct_from(incoming)

    set_: dict[str, Any] = {c: stmt.excluded[c] for c in owned}
    if "updated_at" in table.c:
        set_["updated_at"] = func.now()
    if "version" in table.c:
        set_["version"] = table.c.version + 1
    report = table.c[returning or key]
    if owned:
        stmt_final = stmt.on_conflict_do_update(
            index_elements=[key], set_=set_, where=or_(*(differs(c) for c in owned))
        )
    else:
        stmt_final = stmt.on_conflict_do_nothing(index_elements=[key])
    returned = await session.execute(
        stmt_final.returning(report, table.c[key], literal_column("(xmax = 0)").label("inserted"))
    )
    for value, natural_key, inserted in returned:
        (result.inserted if inserted else result.updated).append(value)
        result.key_of[value] = natural_key
    result.unchanged = len(rows) - len(result.inserted) - len(result.updated)
    return result
