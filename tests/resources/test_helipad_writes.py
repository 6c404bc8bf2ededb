"""Helipads: create and versioned edits, including taking a pad out of use."""

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.resources.factories import (
    BEIJING_POINT,
    WENCHANG,
    Auth,
    assert_error,
    create,
    events,
    helipad_body,
    point,
)


async def test_a_helipad_is_created_usable_in_the_township_of_its_point(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    response = await client.post("/api/v1/helipads", json=helipad_body(), headers=auth("command"))
    assert response.status_code == 201, response.text
    props = response.json()["properties"]
    assert props["status"] == "usable" and props["township"] == WENCHANG and props["version"] == 1
    [event] = await events(session, "helipad", response.json()["id"], "helipad.created")
    assert event["township_code"] == WENCHANG and event["data"]["kind"] == "temporary"

    outside = await client.post(
        "/api/v1/helipads", json=helipad_body(location=point(BEIJING_POINT)), headers=auth("command")
    )
    assert_error(outside, 422, "outside_district")
    assert_error(
        await client.post("/api/v1/helipads", json=helipad_body(status="broken"), headers=auth("command")),
        422,
        "validation_error",
    )


async def test_a_pad_is_taken_out_of_use_and_back_with_versions(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    pad = await create(client, auth, "helipads")
    url = f"/api/v1/helipads/{pad['id']}"
    down = await client.patch(url, json={"status": "unusable"}, headers={**auth("command"), "If-Match": '"1"'})
    assert down.status_code == 200, down.text
    assert down.json()["properties"]["status"] == "unusable" and down.headers["ETag"] == '"2"'
    stale = await client.patch(url, json={"status": "usable", "version": 1}, headers=auth("command"))
    assert assert_error(stale, 409, "version_conflict")["details"]["current_version"] == 2
    up = await client.patch(url, json={"status": "usable", "version": 2}, headers=auth("command"))
    assert up.json()["properties"]["status"] == "usable"
    changes = [e["data"]["changes"] for e in await events(session, "helipad", pad["id"], "helipad.updated")]
    assert changes == [
        {"status": {"from": "usable", "to": "unusable"}},
        {"status": {"from": "unusable", "to": "usable"}},
    ]
    got = await client.get(url, headers=auth("viewer"))
    assert got.headers["ETag"] == '"3"'


async def test_the_seeded_aviation_base_can_be_edited(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    pad_id = await session.scalar(text("SELECT id FROM helipad WHERE code = 'HP-BASE-01'"))
    current = await client.get(f"/api/v1/helipads/{pad_id}", headers=auth("viewer"))
    version = current.json()["properties"]["version"]
    assert current.headers["ETag"] == f'"{version}"'
    response = await client.patch(
        f"/api/v1/helipads/{pad_id}", json={"name_en": "Aviation base", "version": version}, headers=auth("command")
    )
    assert response.status_code == 200 and response.json()["properties"]["name_en"] == "Aviation base"
    assert_error(
        await client.patch("/api/v1/helipads/987654321", json={"name": "x", "version": 1}, headers=auth("command")),
        404,
        "helipad_not_found",
    )
