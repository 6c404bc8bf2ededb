"""Supply depots and their stock. Stock levels change only through ledger entries."""

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.depots.models import Depot, DepotLevel, DepotStock, Item, LedgerKind, StockLedgerEntry
from app.depots.schemas import StockLine
from app.errors import AppError, BadRequest
from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, geodesic_distance, in_bbox, knn, point_value
from app.upsert import UpsertResult, upsert_by_key


async def list_depots(
    *, session: AsyncSession, query: ListQuery, level: DepotLevel | None = None, item: str | None = None
) -> tuple[list[Depot], int]:
    stmt = select(Depot).order_by(Depot.id)
    if query.township:
        stmt = stmt.where(Depot.township_code == query.township)
    if query.bbox:
        stmt = stmt.where(in_bbox(Depot.location, query.bbox))
    if level:
        stmt = stmt.where(Depot.level == level)
    if item:
        holds_item = select(DepotStock.depot_id).where(DepotStock.item_code == item, DepotStock.quantity > 0)
        stmt = stmt.where(Depot.id.in_(holds_item))
    return await fetch_page(session, stmt, limit=query.limit, offset=query.offset)


async def get_depot(*, session: AsyncSession, depot_id: int) -> Depot | None:
    return await session.get(Depot, depot_id)


async def stock_of(*, session: AsyncSession, depot_ids: list[int]) -> dict[int, list[StockLine]]:
    """Stock lines of several depots in one query, items in code order."""
    if not depot_ids:
        return {}
    rows = await session.execute(
        select(DepotStock.depot_id, DepotStock.item_code, Item.name, Item.unit, DepotStock.quantity)
        .join(Item, Item.code == DepotStock.item_code)
        .where(DepotStock.depot_id.in_(depot_ids))
        .order_by(DepotStock.depot_id, DepotStock.item_code)
    )
    stock: dict[int, list[StockLine]] = defaultdict(list)
    for depot_id, code, name, unit, quantity in rows:
        stock[depot_id].append(StockLine(item=code, name=name, unit=unit, quantity=quantity))
    return stock


class InsufficientStock(AppError):
    status_code = 409
    code = "insufficient_stock"


class UnknownItem(AppError):
    status_code = 422
    code = "unknown_item"


async def record_movement(
    *,
    session: AsyncSession,
    depot_id: int,
    item_code: str,
    delta: int,
    kind: LedgerKind,
    reason: str,
    actor: str,
    transfer_id: uuid.UUID | None = None,
) -> int:
    """Apply one stock movement and append its ledger entry; returns the new level.

    The level changes by a single conditional statement (row-locked), so concurrent issues from one
    depot can never take it below zero, and the ledger entry records the balance it produced.
    """
    if delta == 0:
        raise BadRequest("a stock movement must change the quantity", code="zero_movement")
    if await session.scalar(select(Item.code).where(Item.code == item_code)) is None:
        raise UnknownItem(f"no item has the code {item_code}", details={"item": item_code})
    if delta > 0:
        stmt = pg_insert(DepotStock).values(depot_id=depot_id, item_code=item_code, quantity=delta)
        balance = await session.scalar(
            stmt.on_conflict_do_update(
                index_elements=[DepotStock.depot_id, DepotStock.item_code],
                set_={"quantity": DepotStock.quantity + stmt.excluded.quantity, "updated_at": func.now()},
            ).returning(DepotStock.quantity)
        )
    else:
        balance = await session.scalar(
            update(DepotStock)
            .where(DepotStock.depot_id == depot_id, DepotStock.item_code == item_code, DepotStock.quantity + delta >= 0)
            .values(quantity=DepotStock.quantity + delta, updated_at=func.now())
            .returning(DepotStock.quantity)
        )
        if balance is None:
            available = await session.scalar(
                select(DepotStock.quantity).where(DepotStock.depot_id == depot_id, DepotStock.item_code == item_code)
            )
            raise InsufficientStock(
                f"depot {depot_id} holds {available or 0} of item {item_code}; {-delta} were asked for",
                details={"depot_id": depot_id, "item": item_code, "available": available or 0, "requested": -delta},
            )
    session.add(
        StockLedgerEntry(
            depot_id=depot_id,
            item_code=item_code,
            delta=delta,
            balance_after=balance,
            kind=kind,
            reason=reason,
            actor=actor,
            transfer_id=transfer_id,
        )
    )
    await session.flush()
    return int(balance)  # type: ignore[arg-type]


async def ledger_totals(*, session: AsyncSession, actor: str | None = None) -> dict[tuple[int, str], int]:
    """Sum of ledger movements per (depot, item), optionally of one actor only."""
    stmt = select(StockLedgerEntry.depot_id, StockLedgerEntry.item_code, func.sum(StockLedgerEntry.delta)).group_by(
        StockLedgerEntry.depot_id, StockLedgerEntry.item_code
    )
    if actor is not None:
        stmt = stmt.where(StockLedgerEntry.actor == actor)
    return {(d, i): int(total) for d, i, total in await session.execute(stmt)}


async def upsert_depots(*, session: AsyncSession, rows: list[dict[str, Any]]) -> UpsertResult:
    """Seed or import by code. rows: code, name, name_en, level, location, township_code."""
    return await upsert_by_key(session, Depot, rows, key="code", insert_only=(), returning="id")


async def upsert_items(*, session: AsyncSession, rows: list[dict[str, Any]]) -> UpsertResult:
    """The item catalogue. rows: code, name, name_en, unit, category, persons_per_unit."""
    return await upsert_by_key(session, Item, rows, key="code")


async def depot_ids_by_code(*, session: AsyncSession, codes: list[str]) -> dict[str, int]:
    rows = await session.execute(select(Depot.code, Depot.id).where(Depot.code.in_(codes)))
    return dict(rows.all())


async def nearest_holding(
    *, session: AsyncSession, lon: float, lat: float, items: list[str] | None, k: int
) -> list[tuple[Depot, float]]:
    """Depots holding any of the items (or any depot when items is None), nearest first."""
    point = point_value(lon, lat)
    stmt = select(Depot, geodesic_distance(Depot.location, point)).order_by(knn(Depot.location, point)).limit(k)
    if items:
        holding = select(DepotStock.depot_id).where(DepotStock.item_code.in_(items), DepotStock.quantity > 0)
        stmt = stmt.where(Depot.id.in_(holding))
    rows = await session.execute(stmt)
    return sorted(((d, float(dist)) for d, dist in rows), key=lambda pair: pair[1])
