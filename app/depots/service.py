"""Supply depots and their stock. Stock levels change only through ledger entries."""

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db import sql_limit
from app.depots.models import Depot, DepotLevel, DepotStock, Item, LedgerKind, StockLedgerEntry
from app.depots.schemas import DepotCreate, DepotPatch, StockLine
from app.errors import AppError, BadRequest
from app.events import service as event_service
from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, geodesic_distance, in_bbox, knn, point_value
from app.upsert import UpsertResult, upsert_by_key
from app.writes import (
    create_resource,
    edit_resource,
    ensure_can_write,
    place_new,
    snapshot_point,
)


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


class DepotNotFound(AppError):
    status_code = 404
    code = "depot_not_found"

    def __init__(self, depot_id: int) -> None:
        super().__init__(f"no depot has the id {depot_id}", details={"depot_id": depot_id})


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
    """Apply one stock movement and append its ledger entry; returns the new level."""
    entry = await apply_movement(
        session=session,
        depot_id=depot_id,
        item_code=item_code,
        delta=delta,
        kind=kind,
        reason=reason,
        actor=actor,
        transfer_id=transfer_id,
    )
    return entry.balance_after


async def apply_movement(
    *,
    session: AsyncSession,
    depot_id: int,
    item_code: str,
    delta: int,
    kind: LedgerKind,
    reason: str,
    actor: str,
    transfer_id: uuid.UUID | None = None,
) -> StockLedgerEntry:
    """Apply one stock movement, append its ledger entry and its `depot.stock_changed` event.

    The level changes by a single conditional statement (row-locked), so concurrent issues from one
    depot can never take it below zero, and the ledger entry records the balance it produced: the
    level is always the sum of the ledger.
    """
    if delta == 0:
        raise BadRequest("a stock movement must change the quantity", code="zero_movement")
    depot = (await session.execute(select(Depot.code, Depot.township_code).where(Depot.id == depot_id))).first()
    if depot is None:
        raise DepotNotFound(depot_id)
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
    entry: StockLedgerEntry = await session.scalar(  # type: ignore[assignment]
        insert(StockLedgerEntry)
        .values(
            depot_id=depot_id,
            item_code=item_code,
            delta=delta,
            balance_after=balance,
            kind=kind,
            reason=reason,
            actor=actor,
            transfer_id=transfer_id,
        )
        .returning(StockLedgerEntry)
    )
    await event_service.record(
        session=session,
        topic="depot.stock_changed",
        subject_type="depot",
        subject_id=depot_id,
        actor=actor,
        township=depot.township_code,
        data={
            "depot_id": depot_id,
            "depot_code": depot.code,
            "item": item_code,
            "delta": delta,
            "balance": entry.balance_after,
            "kind": LedgerKind(kind).value,
            "ledger_id": entry.id,
            "transfer_id": str(transfer_id) if transfer_id else None,
            "reason": reason,
        },
    )
    return entry


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


def nearest_holding_json(limit: int) -> str:
    """For one-round-trip composites (the recommendation, app/dispatch/nearby.py): a correlated subquery over a
    row `here(point geography, items varchar[])`, giving the `limit` nearest depots holding any of the items,
    with those items' stock, as a JSON array nearest first. This domain's SQL stays here. The limit is in the
    text, as in shelters.service.nearest_with_space_json: a generic plan of a bound LIMIT would scan the table."""
    return _NEAREST_HOLDING_JSON.format(limit=sql_limit(limit))


_NEAREST_HOLDING_JSON = """
    (SELECT coalesce(json_agg(d ORDER BY d.distance_m, d.id), '[]')
     FROM (SELECT d.id, d.code, d.name, d.level, d.township_code AS township,
                  ST_Distance(d.location, here.point) AS distance_m,
                  ST_X(CAST(d.location AS geometry)) AS lon, ST_Y(CAST(d.location AS geometry)) AS lat,
                  (SELECT json_agg(json_build_object('item', st.item_code, 'name', i.name, 'unit', i.unit,
                                                     'quantity', st.quantity) ORDER BY st.item_code)
                   FROM depot_stock AS st JOIN item AS i ON i.code = st.item_code
                   WHERE st.depot_id = d.id AND st.item_code = ANY(here.items) AND st.quantity > 0) AS stock
           FROM depot AS d
           WHERE d.id IN (SELECT depot_id FROM depot_stock WHERE item_code = ANY(here.items) AND quantity > 0)
           ORDER BY d.location <-> here.point
           LIMIT {limit}) AS d)
"""


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


# ---------------------------------------------------------------------------------------- writes


class UnknownDepot(AppError):
    """A depot named in the body (not the path) that does not exist."""

    status_code = 422
    code = "unknown_depot"


class SameDepot(AppError):
    status_code = 422
    code = "same_depot"


def depot_snapshot(depot: Depot) -> dict[str, Any]:
    return {
        "code": depot.code,
        "name": depot.name,
        "name_en": depot.name_en,
        "level": DepotLevel(depot.level).value,
        "township": depot.township_code,
        "location": snapshot_point(depot.location),
    }


async def create_depot(*, session: AsyncSession, data: DepotCreate, principal: Principal) -> Depot:
    """A new, empty depot in the township holding its point (scope-checked)."""
    place = await place_new(
        session=session, principal=principal, point=data.location, coord_sys=data.coord_sys, township=data.township
    )
    depot: Depot = await create_resource(
        session,
        Depot,
        subject="depot",
        values={
            "code": data.code,
            "name": data.name,
            "name_en": data.name_en,
            "level": data.level,
            "location": place.wkt,
            "township_code": place.township,
        },
        principal=principal,
        event_data=lambda d: {"depot_id": d.id, "version": d.version, **depot_snapshot(d)},
    )
    return depot


async def _writable_depot(*, session: AsyncSession, depot_id: int, principal: Principal) -> Depot:
    depot = await session.get(Depot, depot_id, populate_existing=True)
    if depot is None:
        raise DepotNotFound(depot_id)
    ensure_can_write(principal, depot.township_code)
    return depot


async def update_depot(
    *, session: AsyncSession, depot_id: int, patch: DepotPatch, expected_version: int, principal: Principal
) -> Depot:
    """Edit a depot's own fields made against `expected_version` (else 409)."""
    updated: Depot = await edit_resource(
        session,
        Depot,
        subject="depot",
        subject_id=depot_id,
        fields=patch.given(),
        coord_sys=patch.coord_sys,
        expected=expected_version,
        principal=principal,
        load=lambda: _writable_depot(session=session, depot_id=depot_id, principal=principal),
        point_field="location",
        snapshot=depot_snapshot,
        event_data=lambda d: {"depot_id": d.id, "code": d.code, "version": d.version},
    )
    return updated


async def move_stock(
    *,
    session: AsyncSession,
    depot_id: int,
    item_code: str,
    delta: int,
    kind: LedgerKind,
    reason: str,
    principal: Principal,
) -> StockLedgerEntry:
    """A receipt, issue or adjustment at one depot, by a caller allowed to write its township."""
    depot = await session.get(Depot, depot_id)
    if depot is None:
        raise DepotNotFound(depot_id)
    ensure_can_write(principal, depot.township_code)
    return await apply_movement(
        session=session,
        depot_id=depot_id,
        item_code=item_code,
        delta=delta,
        kind=kind,
        reason=reason,
        actor=principal.actor,
    )


async def transfer_stock(
    *,
    session: AsyncSession,
    from_depot_id: int,
    to_depot_id: int,
    item_code: str,
    quantity: int,
    reason: str,
    principal: Principal,
) -> tuple[uuid.UUID, list[StockLedgerEntry]]:
    """Move stock between two depots: an issue and a receipt sharing a transfer id, both or neither.

    Both stock rows are locked first, in depot-id order, so two transfers in opposite directions
    wait for each other instead of deadlocking. If the source lacks the stock, InsufficientStock
    rolls the whole request back (the session commits only after the route returns).
    """
    if from_depot_id == to_depot_id:
        raise SameDepot("a transfer needs two different depots", details={"depot_id": from_depot_id})
    found = await session.execute(
        select(Depot.id, Depot.township_code).where(Depot.id.in_([from_depot_id, to_depot_id]))
    )
    townships: dict[int, str | None] = dict(found.all())
    if from_depot_id not in townships:
        raise DepotNotFound(from_depot_id)
    if to_depot_id not in townships:
        raise UnknownDepot(f"no depot has the id {to_depot_id}", details={"to_depot_id": to_depot_id})
    # Both ends change, so the caller must be allowed to write both townships.
    ensure_can_write(principal, townships[from_depot_id], townships[to_depot_id])
    await session.execute(
        select(DepotStock.depot_id)
        .where(DepotStock.depot_id.in_([from_depot_id, to_depot_id]), DepotStock.item_code == item_code)
        .order_by(DepotStock.depot_id)
        .with_for_update()
    )
    transfer_id = uuid.uuid4()
    legs = []
    for depot_id, delta in ((from_depot_id, -quantity), (to_depot_id, quantity)):
        legs.append(
            await apply_movement(
                session=session,
                depot_id=depot_id,
                item_code=item_code,
                delta=delta,
                kind=LedgerKind.TRANSFER,
                reason=reason,
                actor=principal.actor,
                transfer_id=transfer_id,
            )
        )
    return transfer_id, legs


async def ledger_page(
    *,
    session: AsyncSession,
    depot_id: int,
    item: str | None = None,
    kind: LedgerKind | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> tuple[list[StockLedgerEntry], bool]:
    """A depot's ledger, newest first; (entries, whether older ones remain). Paged by id (a keyset,
    so entries appended meanwhile neither shift nor repeat the pages)."""
    if await session.scalar(select(Depot.id).where(Depot.id == depot_id)) is None:
        raise DepotNotFound(depot_id)
    stmt = select(StockLedgerEntry).where(StockLedgerEntry.depot_id == depot_id)
    if item is not None:
        stmt = stmt.where(StockLedgerEntry.item_code == item)
    if kind is not None:
        stmt = stmt.where(StockLedgerEntry.kind == kind)
    if before_id is not None:
        stmt = stmt.where(StockLedgerEntry.id < before_id)
    rows = list(await session.scalars(stmt.order_by(StockLedgerEntry.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
