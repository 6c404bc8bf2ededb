"""Depots: create/edit, and stock that changes only by ledger entries (movements and transfers)."""

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.resources.factories import (
    WENCHANG,
    XIAYING,
    XIAYING_POINT,
    Auth,
    assert_error,
    create,
    depot_body,
    events,
    point,
)


async def _move(client: httpx.AsyncClient, auth: Auth, depot_id: int, **body: Any) -> httpx.Response:
    body.setdefault("reason", "测试")
    return await client.post(f"/api/v1/depots/{depot_id}/movements", json=body, headers=auth("command"))


async def _stock(client: httpx.AsyncClient, auth: Auth, depot_id: int) -> dict[str, int]:
    feature = (await client.get(f"/api/v1/depots/{depot_id}", headers=auth("viewer"))).json()
    return {line["item"]: line["quantity"] for line in feature["properties"]["stock"]}


async def _ledger_disagreements(session: AsyncSession) -> list[Any]:
    """(depot, item) pairs whose level is not the sum of their ledger entries."""
    rows = await session.execute(
        text(
            """
            SELECT coalesce(s.depot_id, l.depot_id), coalesce(s.item_code, l.item_code), s.quantity, l.total
            FROM depot_stock s
            FULL JOIN (SELECT depot_id, item_code, sum(delta) AS total FROM stock_ledger GROUP BY 1, 2) l
              ON l.depot_id = s.depot_id AND l.item_code = s.item_code
            WHERE coalesce(s.quantity, 0) <> coalesce(l.total, 0)
            """
        )
    )
    return list(rows)


async def _ledger_count(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM stock_ledger")) or 0)


async def test_a_new_depot_is_empty_and_announced(client: httpx.AsyncClient, auth: Auth, session: AsyncSession) -> None:
    response = await client.post("/api/v1/depots", json=depot_body(), headers=auth("command"))
    assert response.status_code == 201, response.text
    feature = response.json()
    assert response.headers["ETag"] == '"1"'
    assert feature["properties"]["stock"] == [] and feature["properties"]["township"] == WENCHANG
    [event] = await events(session, "depot", feature["id"], "depot.created")
    assert event["township_code"] == WENCHANG and event["actor"] == "command:test-command"


async def test_the_level_is_the_sum_of_the_ledger_after_a_sequence_of_movements(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    depot = await create(client, auth, "depots")
    did = depot["id"]
    steps = [
        ({"kind": "receipt", "item": "101", "quantity": 100}, 100),
        ({"kind": "issue", "item": "101", "quantity": 30}, 70),
        ({"kind": "adjustment", "item": "101", "delta": -5, "reason": "盘点短缺"}, 65),
        ({"kind": "adjustment", "item": "101", "delta": 10, "reason": "盘点盘盈"}, 75),
        ({"kind": "receipt", "item": "301", "quantity": 5000}, 5000),
        ({"kind": "issue", "item": "101", "quantity": 75}, 0),
    ]
    for body, balance in steps:
        response = await _move(client, auth, did, **body)
        assert response.status_code == 201, response.text
        entry = response.json()
        assert entry["balance_after"] == balance and entry["depot_id"] == did
        assert entry["actor"] == "command:test-command" and entry["reason"]
    assert await _stock(client, auth, did) == {"101": 0, "301": 5000}
    assert await _ledger_disagreements(session) == []

    logged = await events(session, "depot", did, "depot.stock_changed")
    assert [(e["data"]["item"], e["data"]["delta"], e["data"]["balance"], e["data"]["kind"]) for e in logged] == [
        ("101", 100, 100, "receipt"),
        ("101", -30, 70, "issue"),
        ("101", -5, 65, "adjustment"),
        ("101", 10, 75, "adjustment"),
        ("301", 5000, 5000, "receipt"),
        ("101", -75, 0, "issue"),
    ]
    assert all(e["township_code"] == WENCHANG and e["actor"] == "command:test-command" for e in logged)


async def test_an_issue_beyond_the_stock_is_409_and_writes_nothing(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    depot = await create(client, auth, "depots")
    await _move(client, auth, depot["id"], kind="receipt", item="104", quantity=10)
    ledger_before = await _ledger_count(session)
    for body in ({"kind": "issue", "item": "104", "quantity": 11}, {"kind": "adjustment", "item": "104", "delta": -11}):
        response = await _move(client, auth, depot["id"], **body)
        err = assert_error(response, 409, "insufficient_stock")
        assert err["details"]["available"] == 10 and err["details"]["requested"] == 11
    never_held = await _move(client, auth, depot["id"], kind="issue", item="105", quantity=1)
    assert assert_error(never_held, 409, "insufficient_stock")["details"]["available"] == 0
    assert await _ledger_count(session) == ledger_before
    assert len(await events(session, "depot", depot["id"], "depot.stock_changed")) == 1
    assert await _stock(client, auth, depot["id"]) == {"104": 10}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "receipt", "item": "999", "quantity": 1, "reason": "x"}, "unknown_item"),
        ({"kind": "receipt", "item": "abc", "quantity": 1, "reason": "x"}, "validation_error"),
        ({"kind": "transfer", "item": "101", "quantity": 1, "reason": "x"}, "validation_error"),
        ({"kind": "theft", "item": "101", "quantity": 1, "reason": "x"}, "validation_error"),
        ({"kind": "receipt", "item": "101", "quantity": 0, "reason": "x"}, "validation_error"),
        ({"kind": "receipt", "item": "101", "quantity": -3, "reason": "x"}, "validation_error"),
        ({"kind": "receipt", "item": "101", "quantity": 2**63, "reason": "x"}, "validation_error"),
        ({"kind": "receipt", "item": "101", "quantity": 1.5, "reason": "x"}, "validation_error"),
        ({"kind": "receipt", "item": "101", "quantity": 1, "reason": ""}, "validation_error"),
        ({"kind": "receipt", "item": "101", "quantity": 1, "reason": "   "}, "validation_error"),
        ({"kind": "receipt", "item": "101", "quantity": 1}, "validation_error"),
        ({"kind": "receipt", "item": "101", "quantity": 1, "reason": "a\u0000b"}, "validation_error"),
        ({"kind": "adjustment", "item": "101", "delta": 0, "reason": "x"}, "validation_error"),
        ({"kind": "adjustment", "item": "101", "quantity": 5, "reason": "x"}, "validation_error"),
        ({"kind": "issue", "item": "101", "delta": -5, "reason": "x"}, "validation_error"),
        ({"kind": "receipt", "item": "101", "quantity": 1, "reason": "x", "actor": "someone-else"}, "validation_error"),
    ],
)
async def test_bad_movements_are_refused_without_a_write(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession, body: dict[str, Any], code: str
) -> None:
    depot = await create(client, auth, "depots")
    before = await _ledger_count(session)
    response = await client.post(f"/api/v1/depots/{depot['id']}/movements", json=body, headers=auth("command"))
    assert_error(response, 422, code)
    assert await _ledger_count(session) == before


async def test_movements_at_an_unknown_depot_are_404(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await _move(client, auth, 987654321, kind="receipt", item="101", quantity=1)
    assert_error(response, 404, "depot_not_found")


async def test_a_transfer_writes_two_entries_sharing_an_id(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    a = await create(client, auth, "depots")
    b = await create(client, auth, "depots", location=point(XIAYING_POINT))
    await _move(client, auth, a["id"], kind="receipt", item="102", quantity=500)
    response = await client.post(
        f"/api/v1/depots/{a['id']}/transfers",
        json={"to_depot_id": b["id"], "item": "102", "quantity": 120, "reason": "支援下营镇"},
        headers=auth("command"),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    out, into = body["entries"]
    assert out["depot_id"] == a["id"] and out["delta"] == -120 and out["balance_after"] == 380
    assert into["depot_id"] == b["id"] and into["delta"] == 120 and into["balance_after"] == 120
    assert out["transfer_id"] == into["transfer_id"] == body["transfer_id"]
    assert out["kind"] == into["kind"] == "transfer"
    assert await _stock(client, auth, a["id"]) == {"102": 380}
    assert await _stock(client, auth, b["id"]) == {"102": 120}
    [ea] = [
        e for e in await events(session, "depot", a["id"], "depot.stock_changed") if e["data"]["kind"] == "transfer"
    ]
    [eb] = await events(session, "depot", b["id"], "depot.stock_changed")
    assert ea["township_code"] == WENCHANG and eb["township_code"] == XIAYING
    assert ea["data"]["transfer_id"] == eb["data"]["transfer_id"] == body["transfer_id"]
    assert await _ledger_disagreements(session) == []


async def test_a_transfer_the_source_cannot_cover_writes_nothing(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    a = await create(client, auth, "depots")
    b = await create(client, auth, "depots")
    await _move(client, auth, a["id"], kind="receipt", item="102", quantity=10)
    before = await _ledger_count(session)
    response = await client.post(
        f"/api/v1/depots/{a['id']}/transfers",
        json={"to_depot_id": b["id"], "item": "102", "quantity": 11, "reason": "x"},
        headers=auth("command"),
    )
    assert_error(response, 409, "insufficient_stock")
    assert await _ledger_count(session) == before
    assert await _stock(client, auth, b["id"]) == {}
    assert await events(session, "depot", b["id"], "depot.stock_changed") == []


@pytest.mark.parametrize(
    ("to", "status", "code"),
    [("self", 422, "same_depot"), (987654321, 422, "unknown_depot"), (2**63, 422, "validation_error")],
)
async def test_a_transfer_needs_another_existing_depot(
    client: httpx.AsyncClient, auth: Auth, to: Any, status: int, code: str
) -> None:
    a = await create(client, auth, "depots")
    await _move(client, auth, a["id"], kind="receipt", item="102", quantity=10)
    response = await client.post(
        f"/api/v1/depots/{a['id']}/transfers",
        json={"to_depot_id": a["id"] if to == "self" else to, "item": "102", "quantity": 1, "reason": "x"},
        headers=auth("command"),
    )
    assert_error(response, status, code)
    from_unknown = await client.post(
        "/api/v1/depots/987654321/transfers",
        json={"to_depot_id": a["id"], "item": "102", "quantity": 1, "reason": "x"},
        headers=auth("command"),
    )
    assert_error(from_unknown, 404, "depot_not_found")


async def test_the_ledger_pages_newest_first_with_an_item_filter(client: httpx.AsyncClient, auth: Auth) -> None:
    depot = await create(client, auth, "depots")
    for i in range(7):
        await _move(client, auth, depot["id"], kind="receipt", item="101" if i % 2 else "103", quantity=i + 1)
    url: str | None = f"/api/v1/depots/{depot['id']}/ledger?limit=3"
    seen: list[int] = []
    while url:
        page = (await client.get(url, headers=auth("viewer"))).json()
        assert page["numberReturned"] == len(page["entries"]) <= 3
        seen += [e["id"] for e in page["entries"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == 7 and seen == sorted(seen, reverse=True)

    only = (
        await client.get(f"/api/v1/depots/{depot['id']}/ledger", params={"item": "101"}, headers=auth("viewer"))
    ).json()
    assert [e["delta"] for e in only["entries"]] == [6, 4, 2]
    assert_error(await client.get("/api/v1/depots/987654321/ledger", headers=auth("viewer")), 404, "depot_not_found")
    assert_error(
        await client.get(f"/api/v1/depots/{depot['id']}/ledger", params={"item": "1x"}, headers=auth("viewer")),
        422,
    )


async def test_a_seeded_depot_keeps_its_ledger_in_step(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    depot_id = await session.scalar(text("SELECT id FROM depot WHERE code = 'DEP-FOREST'"))
    assert depot_id is not None
    before = (await _stock(client, auth, depot_id))["201"]
    await _move(client, auth, depot_id, kind="issue", item="201", quantity=500, reason="盘山火场")
    await _move(client, auth, depot_id, kind="receipt", item="201", quantity=200, reason="补充")
    assert (await _stock(client, auth, depot_id))["201"] == before - 300
    assert await _ledger_disagreements(session) == []


async def test_depot_edits_are_versioned(client: httpx.AsyncClient, auth: Auth, session: AsyncSession) -> None:
    depot = await create(client, auth, "depots")
    url = f"/api/v1/depots/{depot['id']}"
    assert_error(await client.patch(url, json={"name": "新库"}, headers=auth("command")), 428, "version_required")
    moved = await client.patch(
        url, json={"location": point(XIAYING_POINT), "level": "social"}, headers={**auth("command"), "If-Match": '"1"'}
    )
    assert moved.status_code == 200, moved.text
    assert moved.headers["ETag"] == '"2"'
    assert moved.json()["properties"]["township"] == XIAYING and moved.json()["properties"]["level"] == "social"
    assert_error(await client.patch(url, json={"name": "旧", "version": 1}, headers=auth("command")), 409)
    assert_error(await client.patch(url, json={"stock": [], "version": 2}, headers=auth("command")), 422)
    [event] = await events(session, "depot", depot["id"], "depot.updated")
    assert event["township_code"] == XIAYING and set(event["data"]["changes"]) == {"location", "township", "level"}
