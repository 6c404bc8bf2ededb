"""Shelters: create, versioned edits, and check-in/check-out with the automatic full/open status."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.resources.factories import (
    WENCHANG,
    XIAYING,
    XIAYING_POINT,
    Auth,
    assert_error,
    create,
    events,
    point,
    shelter_body,
)


async def _shelter(client: httpx.AsyncClient, auth: Auth, **overrides: Any) -> dict[str, Any]:
    return await create(client, auth, "shelters", **overrides)


async def _occupancy(client: httpx.AsyncClient, auth: Auth, shelter_id: int, **body: int) -> httpx.Response:
    return await client.post(f"/api/v1/shelters/{shelter_id}/occupancy", json=body, headers=auth("command"))


async def _patch(client: httpx.AsyncClient, auth: Auth, shelter_id: int, **body: Any) -> httpx.Response:
    return await client.patch(f"/api/v1/shelters/{shelter_id}", json=body, headers=auth("command"))


async def test_a_new_shelter_is_on_standby_and_empty(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    response = await client.post("/api/v1/shelters", json=shelter_body(capacity=250), headers=auth("command"))
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == '"1"'
    props = response.json()["properties"]
    assert props["status"] == "standby" and props["occupancy"] == 0 and props["free_places"] == 250
    assert props["township"] == WENCHANG
    [event] = await events(session, "shelter", response.json()["id"], "shelter.created")
    assert event["township_code"] == WENCHANG and event["data"]["capacity"] == 250


@pytest.mark.parametrize(
    "overrides",
    [
        {"capacity": -1},
        {"capacity": 10**20},
        {"capacity": "lots"},
        {"level": "luxury"},
        {"name": ""},
        {"area_m2": -5},
        {"occupancy": 5},
        {"status": "open"},
        {"location": point([117.4, 91])},
    ],
)
async def test_bad_shelters_are_refused(client: httpx.AsyncClient, auth: Auth, overrides: dict[str, Any]) -> None:
    response = await client.post("/api/v1/shelters", json=shelter_body(**overrides), headers=auth("command"))
    assert_error(response, 422, "validation_error")


async def test_check_ins_open_a_standby_shelter_fill_it_and_check_outs_reopen_it(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    shelter = await _shelter(client, auth, capacity=10)
    sid = shelter["id"]

    first = await _occupancy(client, auth, sid, delta=4)
    assert first.status_code == 200, first.text
    assert {"occupancy": 4, "status": "open", "free_places": 6, "version": 2}.items() <= first.json()[
        "properties"
    ].items()
    assert first.headers["ETag"] == '"2"'

    full = await _occupancy(client, auth, sid, delta=6)
    assert full.json()["properties"]["status"] == "full" and full.json()["properties"]["free_places"] == 0

    refused = await _occupancy(client, auth, sid, delta=1)
    body = assert_error(refused, 409, "shelter_full")
    assert body["details"]["free_places"] == 0 and body["details"]["requested"] == 1

    out = await _occupancy(client, auth, sid, delta=-3)
    assert out.json()["properties"]["status"] == "open" and out.json()["properties"]["occupancy"] == 7

    too_many = await _occupancy(client, auth, sid, delta=4)
    body = assert_error(too_many, 409, "shelter_full")
    assert body["details"]["free_places"] == 3

    below = await _occupancy(client, auth, sid, delta=-8)
    assert_error(below, 409, "occupancy_below_zero")

    logged = await events(session, "shelter", sid, "shelter.occupancy_changed")
    assert [(e["data"]["delta"], e["data"]["occupancy"], e["data"]["status"]) for e in logged] == [
        (4, 4, "open"),
        (6, 10, "full"),
        (-3, 7, "open"),
    ]
    assert logged[0]["data"]["status_from"] == "standby"
    assert all(e["township_code"] == WENCHANG and e["actor"] == "command:test-command" for e in logged)


async def test_a_head_count_sets_the_occupancy_within_capacity(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    shelter = await _shelter(client, auth, capacity=50)
    sid = shelter["id"]
    counted = await _occupancy(client, auth, sid, occupancy=50)
    assert counted.json()["properties"]["occupancy"] == 50 and counted.json()["properties"]["status"] == "full"
    assert_error(await _occupancy(client, auth, sid, occupancy=51), 422, "occupancy_above_capacity")
    same = await _occupancy(client, auth, sid, occupancy=50)
    assert same.status_code == 200 and same.json()["properties"]["version"] == 2, "no change, no write"
    assert len(await events(session, "shelter", sid, "shelter.occupancy_changed")) == 1

    for bad in ({}, {"delta": 1, "occupancy": 3}, {"delta": 0}, {"occupancy": -1}, {"delta": 10**10}, {"x": 1}):
        response = await client.post(f"/api/v1/shelters/{sid}/occupancy", json=bad, headers=auth("command"))
        assert_error(response, 422, "validation_error")


async def test_a_closed_shelter_takes_no_check_ins_but_lets_people_leave(client: httpx.AsyncClient, auth: Auth) -> None:
    shelter = await _shelter(client, auth, capacity=20)
    sid = shelter["id"]
    await _occupancy(client, auth, sid, delta=5)
    closed = await _patch(client, auth, sid, status="closed", version=2)
    assert closed.status_code == 200 and closed.json()["properties"]["status"] == "closed"
    assert_error(await _occupancy(client, auth, sid, delta=1), 409, "shelter_closed")
    left = await _occupancy(client, auth, sid, delta=-5)
    assert left.json()["properties"]["occupancy"] == 0 and left.json()["properties"]["status"] == "closed"


async def test_a_shelter_declared_full_stays_full_until_reopened(client: httpx.AsyncClient, auth: Auth) -> None:
    shelter = await _shelter(client, auth, capacity=100)
    sid = shelter["id"]
    await _occupancy(client, auth, sid, delta=60)
    declared = await _patch(client, auth, sid, status="full", version=2)
    assert declared.json()["properties"]["status"] == "full"
    body = assert_error(await _occupancy(client, auth, sid, delta=1), 409, "shelter_full")
    assert body["details"]["status"] == "full"
    out = await _occupancy(client, auth, sid, delta=-10)
    assert out.json()["properties"]["status"] == "full", "a check-out does not undo an operator's decision"
    reopened = await _patch(client, auth, sid, status="open", version=4)
    assert reopened.json()["properties"]["status"] == "open"


async def test_edits_keep_occupancy_within_capacity_and_status_consistent(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    shelter = await _shelter(client, auth, capacity=30)
    sid = shelter["id"]
    assert_error(await _patch(client, auth, sid, occupancy=31, version=1), 422, "occupancy_above_capacity")
    assert_error(await _patch(client, auth, sid, capacity=-1, version=1), 422, "validation_error")

    opened = await _patch(client, auth, sid, status="open", occupancy=20, version=1)
    assert opened.status_code == 200, opened.text
    assert {"status": "open", "occupancy": 20, "version": 2}.items() <= opened.json()["properties"].items()

    shrink = await _patch(client, auth, sid, capacity=10, version=2)
    body = assert_error(shrink, 422, "occupancy_above_capacity")
    assert body["details"] == {"occupancy": 20, "capacity": 10}

    to_full = await _patch(client, auth, sid, capacity=20, version=2)
    assert to_full.json()["properties"]["status"] == "full", "no place left: full without being told"
    assert_error(await _patch(client, auth, sid, status="open", version=3), 422, "shelter_status_conflict")
    grow = await _patch(client, auth, sid, capacity=40, version=3)
    assert grow.json()["properties"]["status"] == "open"

    updates = await events(session, "shelter", sid, "shelter.updated")
    assert [e["data"]["changes"] for e in updates] == [
        {"status": {"from": "standby", "to": "open"}, "occupancy": {"from": 0, "to": 20}},
        {"capacity": {"from": 30, "to": 20}, "status": {"from": "open", "to": "full"}},
        {"capacity": {"from": 20, "to": 40}, "status": {"from": "full", "to": "open"}},
    ]


async def test_a_check_in_makes_an_older_edit_stale(client: httpx.AsyncClient, auth: Auth) -> None:
    shelter = await _shelter(client, auth, capacity=30)
    sid = shelter["id"]
    await _occupancy(client, auth, sid, delta=3)
    # The operator read version 1 (occupancy 0); writing occupancy 0 now would erase the check-in.
    stale = await _patch(client, auth, sid, occupancy=0, version=1)
    assert_error(stale, 409, "version_conflict")


async def test_moving_a_shelter_rederives_its_township(client: httpx.AsyncClient, auth: Auth) -> None:
    shelter = await _shelter(client, auth)
    moved = await _patch(client, auth, shelter["id"], location=point(XIAYING_POINT), version=1)
    assert moved.json()["properties"]["township"] == XIAYING
    area = await _patch(client, auth, shelter["id"], area_m2=None, version=2)
    assert area.status_code == 200 and area.json()["properties"]["area_m2"] is None
    assert_error(await _patch(client, auth, shelter["id"], name=None, version=3), 422, "validation_error")


async def test_occupancy_of_an_unknown_shelter_is_404(client: httpx.AsyncClient, auth: Auth) -> None:
    assert_error(await _occupancy(client, auth, 987654321, delta=1), 404, "shelter_not_found")
