"""Who may write what: every resource write endpoint against every role (allowed, 401, 403).

command: everything; township: resources of its own township only (403 `out_of_scope` elsewhere);
responder: only its own team's position; viewer: reads only; partner: nothing under /api/v1; no token: 401.
A refused write leaves no trace, not even an event.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.resources.factories import (
    WENCHANG,
    WENCHANG_POINT_2,
    XIAYING,
    XIAYING_POINT,
    Auth,
    assert_error,
    create,
    depot_body,
    helipad_body,
    point,
    shelter_body,
    team_body,
)

Request = tuple[str, str, dict[str, Any] | None]
Builder = Callable[[httpx.AsyncClient, Auth], Awaitable[tuple[Request, int]]]


async def _team(client: httpx.AsyncClient, auth: Auth) -> int:
    return int((await create(client, auth, "teams"))["id"])


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def create_team(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    return ("POST", "/api/v1/teams", team_body()), await _team(client, auth)


async def patch_team(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    team = await _team(client, auth)
    return ("PATCH", f"/api/v1/teams/{team}", {"headcount": 30, "version": 1}), team


async def team_position(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    team = await _team(client, auth)
    return ("POST", f"/api/v1/teams/{team}/position", {"location": point(XIAYING_POINT)}), team


async def team_positions(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    team = await _team(client, auth)
    body = {"positions": [{"team_id": team, "location": point(XIAYING_POINT), "recorded_at": _now()}]}
    return ("POST", "/api/v1/teams/positions", body), team


async def create_shelter(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    return ("POST", "/api/v1/shelters", shelter_body()), await _team(client, auth)


async def patch_shelter(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    shelter = (await create(client, auth, "shelters"))["id"]
    return ("PATCH", f"/api/v1/shelters/{shelter}", {"status": "open", "version": 1}), await _team(client, auth)


async def shelter_occupancy(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    shelter = (await create(client, auth, "shelters"))["id"]
    return ("POST", f"/api/v1/shelters/{shelter}/occupancy", {"delta": 2}), await _team(client, auth)


async def create_depot(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    return ("POST", "/api/v1/depots", depot_body()), await _team(client, auth)


async def patch_depot(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    depot = (await create(client, auth, "depots"))["id"]
    return ("PATCH", f"/api/v1/depots/{depot}", {"name": "改名", "version": 1}), await _team(client, auth)


async def depot_movement(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    depot = (await create(client, auth, "depots"))["id"]
    body = {"kind": "receipt", "item": "101", "quantity": 5, "reason": "入库"}
    return ("POST", f"/api/v1/depots/{depot}/movements", body), await _team(client, auth)


async def depot_transfer(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    a = (await create(client, auth, "depots"))["id"]
    b = (await create(client, auth, "depots", location=point(WENCHANG_POINT_2)))["id"]
    await client.post(
        f"/api/v1/depots/{a}/movements",
        json={"kind": "receipt", "item": "101", "quantity": 5, "reason": "入库"},
        headers=auth("command"),
    )
    body = {"to_depot_id": b, "item": "101", "quantity": 2, "reason": "调拨"}
    return ("POST", f"/api/v1/depots/{a}/transfers", body), await _team(client, auth)


async def create_helipad(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    return ("POST", "/api/v1/helipads", helipad_body()), await _team(client, auth)


async def patch_helipad(client: httpx.AsyncClient, auth: Auth) -> tuple[Request, int]:
    pad = (await create(client, auth, "helipads"))["id"]
    return ("PATCH", f"/api/v1/helipads/{pad}", {"status": "unusable", "version": 1}), await _team(client, auth)


RESOURCE_WRITES: list[Builder] = [
    create_team,
    patch_team,
    create_shelter,
    patch_shelter,
    shelter_occupancy,
    create_depot,
    patch_depot,
    depot_movement,
    depot_transfer,
    create_helipad,
    patch_helipad,
]
POSITION_WRITES: list[Builder] = [team_position, team_positions]

# role -> (status, code) for resource writes and for position reports. Every resource lives in Wenchang.
ROLES: dict[str, tuple[tuple[int, str | None], tuple[int, str | None]]] = {
    "command": ((200, None), (200, None)),
    "township_own": ((200, None), (200, None)),
    "township_other": ((403, "out_of_scope"), (403, "out_of_scope")),
    "responder_own": ((403, "role_not_allowed"), (200, None)),
    "responder_other": ((403, "role_not_allowed"), (403, "out_of_scope")),
    "viewer": ((403, "role_not_allowed"), (403, "role_not_allowed")),
    "partner": ((403, "partner_not_allowed"), (403, "partner_not_allowed")),
    "none": ((401, "unauthorized"), (401, "unauthorized")),
}


def _headers(auth: Auth, role: str, team_id: int) -> dict[str, str]:
    match role:
        case "township_own":
            return auth("township", township=WENCHANG)
        case "township_other":
            return auth("township", township=XIAYING)
        case "responder_own":
            return auth("responder", team=team_id)
        case "responder_other":
            return auth("responder", team=team_id + 100_000)
        case "partner":
            return auth("partner", partner="pinggu")
        case "none":
            return {}
        case _:
            return auth(role)


async def _event_count(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM event")) or 0)


CASES = [
    pytest.param(builder, role, expected[0 if builder in RESOURCE_WRITES else 1], id=f"{builder.__name__}-{role}")
    for builder in RESOURCE_WRITES + POSITION_WRITES
    for role, expected in ROLES.items()
]


@pytest.mark.parametrize(("builder", "role", "expected"), CASES)
async def test_every_write_endpoint_against_every_role(
    client: httpx.AsyncClient,
    auth: Auth,
    session: AsyncSession,
    builder: Builder,
    role: str,
    expected: tuple[int, str | None],
) -> None:
    (method, url, body), team_id = await builder(client, auth)
    before = await _event_count(session)
    response = await client.request(method, url, json=body, headers=_headers(auth, role, team_id))
    status, code = expected
    if status == 200:
        assert response.status_code in (200, 201), response.text
        assert await _event_count(session) > before, "an allowed write announces itself"
    else:
        assert_error(response, status, code)
        assert await _event_count(session) == before, "a refused write leaves no event"


@pytest.mark.parametrize("url", ["/api/v1/teams/{team}", "/api/v1/shelters/{shelter}", "/api/v1/depots/{depot}/ledger"])
@pytest.mark.parametrize("role", ["command", "township_other", "responder_other", "viewer"])
async def test_every_district_role_reads(client: httpx.AsyncClient, auth: Auth, url: str, role: str) -> None:
    ids = {
        "team": (await create(client, auth, "teams"))["id"],
        "shelter": (await create(client, auth, "shelters"))["id"],
        "depot": (await create(client, auth, "depots"))["id"],
    }
    response = await client.get(url.format(**ids), headers=_headers(auth, role, ids["team"]))
    assert response.status_code == 200, response.text
    assert_error(await client.get(url.format(**ids)), 401, "unauthorized")


# ------------------------------------------------------------------ township scope on edits that move things


@pytest.mark.parametrize(
    ("kind", "field"), [("teams", "base"), ("shelters", "location"), ("depots", "location"), ("helipads", "location")]
)
async def test_a_township_center_cannot_move_its_resource_into_another_township(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession, kind: str, field: str
) -> None:
    resource = await create(client, auth, kind)
    own = auth("township", township=WENCHANG)
    before = await _event_count(session)
    away = await client.patch(
        f"/api/v1/{kind}/{resource['id']}", json={field: point(XIAYING_POINT), "version": 1}, headers=own
    )
    body = assert_error(away, 403, "out_of_scope")
    assert body["details"]["townships"] == [XIAYING]
    assert await _event_count(session) == before
    nearby = await client.patch(
        f"/api/v1/{kind}/{resource['id']}", json={field: point(WENCHANG_POINT_2), "version": 1}, headers=own
    )
    assert nearby.status_code == 200, nearby.text
    # The command center moves it; from then on it is Xiaying's to edit, not Wenchang's.
    moved = await client.patch(
        f"/api/v1/{kind}/{resource['id']}", json={field: point(XIAYING_POINT), "version": 2}, headers=auth("command")
    )
    assert moved.json()["properties"]["township"] == XIAYING
    assert_error(
        await client.patch(f"/api/v1/{kind}/{resource['id']}", json={"name": "x", "version": 3}, headers=own),
        403,
        "out_of_scope",
    )
    ok = await client.patch(
        f"/api/v1/{kind}/{resource['id']}",
        json={"name": "下营", "version": 3},
        headers=auth("township", township=XIAYING),
    )
    assert ok.status_code == 200, ok.text


async def test_a_township_center_transfers_only_between_its_own_depots(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    own = (await create(client, auth, "depots"))["id"]
    other = (await create(client, auth, "depots", location=point(XIAYING_POINT)))["id"]
    await client.post(
        f"/api/v1/depots/{own}/movements",
        json={"kind": "receipt", "item": "101", "quantity": 5, "reason": "入库"},
        headers=auth("command"),
    )
    before = await _event_count(session)
    response = await client.post(
        f"/api/v1/depots/{own}/transfers",
        json={"to_depot_id": other, "item": "101", "quantity": 1, "reason": "支援"},
        headers=auth("township", township=WENCHANG),
    )
    assert_error(response, 403, "out_of_scope")
    assert await _event_count(session) == before


async def test_a_township_center_creates_only_in_its_own_township(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    xiaying = auth("township", township=XIAYING)
    before = await _event_count(session)
    for kind, body in (
        ("teams", team_body()),
        ("shelters", shelter_body()),
        ("depots", depot_body()),
        ("helipads", helipad_body()),
    ):
        assert_error(await client.post(f"/api/v1/{kind}", json=body, headers=xiaying), 403, "out_of_scope")
    assert await _event_count(session) == before
    mine = await client.post("/api/v1/teams", json=team_body(base=point(XIAYING_POINT)), headers=xiaying)
    assert mine.status_code == 201 and mine.json()["properties"]["township"] == XIAYING
    [event] = (
        await session.execute(
            text("SELECT actor, township_code FROM event WHERE topic = 'team.created' AND subject_id = :id"),
            {"id": str(mine.json()["id"])},
        )
    ).all()
    assert tuple(event) == ("township:test-township", XIAYING)


async def test_a_responder_batch_naming_another_team_is_refused_whole(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    mine = await _team(client, auth)
    theirs = await _team(client, auth)
    before = await _event_count(session)
    fixes = [
        {"team_id": mine, "location": point(XIAYING_POINT), "recorded_at": _now()},
        {"team_id": theirs, "location": point(XIAYING_POINT), "recorded_at": _now()},
    ]
    response = await client.post("/api/v1/teams/positions", json=fixes, headers=auth("responder", team=mine))
    assert assert_error(response, 403, "out_of_scope")["details"]["team_ids"] == [theirs]
    assert await _event_count(session) == before
