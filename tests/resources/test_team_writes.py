"""Teams: create, versioned edits and live positions, through the HTTP API."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asyncpg.connection import LoggedQuery
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import on_driver
from app.geo.coords import wgs84_to_gcj02
from tests.resources.factories import (
    BEIJING_POINT,
    WENCHANG,
    WENCHANG_POINT,
    XIAYING,
    XIAYING_POINT,
    Auth,
    assert_error,
    count_events,
    create,
    events,
    point,
    team_body,
)


async def test_command_creates_a_team_in_the_township_of_its_base(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    body = team_body()
    response = await client.post("/api/v1/teams", json=body, headers=auth("command"))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    feature = response.json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/api/v1/teams/{feature['id']}"
    props = feature["properties"]
    assert props["township"] == WENCHANG
    assert props["code"] == body["code"] and props["status"] == "available" and props["version"] == 1
    assert props["capabilities"] == ["search_rescue", "relief"]
    assert feature["geometry"]["coordinates"] == WENCHANG_POINT

    [event] = await events(session, "team", feature["id"], "team.created")
    assert event["township_code"] == WENCHANG
    assert event["actor"] == "command:test-command"
    assert event["data"]["code"] == body["code"] and event["data"]["base"] == WENCHANG_POINT

    got = await client.get(f"/api/v1/teams/{feature['id']}", headers=auth("viewer"))
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'


async def test_a_base_given_in_gcj02_is_stored_in_wgs84(client: httpx.AsyncClient, auth: Auth) -> None:
    gcj = list(wgs84_to_gcj02(*WENCHANG_POINT))
    feature = await create(client, auth, "teams", base=point(gcj), coord_sys="gcj02")
    lon, lat = feature["properties"]["base"]
    assert abs(lon - WENCHANG_POINT[0]) < 1e-6 and abs(lat - WENCHANG_POINT[1]) < 1e-6
    again = await client.get(f"/api/v1/teams/{feature['id']}", params={"coord_sys": "gcj02"}, headers=auth("viewer"))
    assert again.json()["properties"]["base"] == pytest.approx(gcj, abs=1e-6)


async def test_a_base_outside_the_district_is_refused(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    before = await count_events(session, "team.created")
    response = await client.post("/api/v1/teams", json=team_body(base=point(BEIJING_POINT)), headers=auth("command"))
    assert_error(response, 422, "outside_district")
    assert await count_events(session, "team.created") == before


async def test_a_duplicate_code_is_409_and_writes_nothing(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    first = await create(client, auth, "teams")
    code = first["properties"]["code"]
    response = await client.post("/api/v1/teams", json=team_body(code=code), headers=auth("command"))
    body = assert_error(response, 409, "duplicate_code")
    assert body["details"] == {"code": code}
    seeded = await client.post("/api/v1/teams", json=team_body(code="T-FR-CITY"), headers=auth("command"))
    assert_error(seeded, 409, "duplicate_code")
    assert await session.scalar(text("SELECT count(*) FROM team WHERE code = :c"), {"c": code}) == 1


async def test_a_named_township_must_exist_and_hold_the_point(client: httpx.AsyncClient, auth: Auth) -> None:
    unknown = await client.post("/api/v1/teams", json=team_body(township="120119999"), headers=auth("command"))
    assert_error(unknown, 422, "unknown_township")
    wrong = await client.post("/api/v1/teams", json=team_body(township=XIAYING), headers=auth("command"))
    body = assert_error(wrong, 422, "township_mismatch")
    assert body["details"]["point_township"] == WENCHANG
    right = await client.post("/api/v1/teams", json=team_body(township=WENCHANG), headers=auth("command"))
    assert right.status_code == 201


async def test_an_edit_needs_the_version_it_was_made_against(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    team = await create(client, auth, "teams")
    url = f"/api/v1/teams/{team['id']}"
    assert_error(await client.patch(url, json={"headcount": 20}, headers=auth("command")), 428, "version_required")

    by_header = await client.patch(url, json={"headcount": 20}, headers={**auth("command"), "If-Match": '"1"'})
    assert by_header.status_code == 200, by_header.text
    assert by_header.headers["ETag"] == '"2"'
    assert by_header.json()["properties"]["headcount"] == 20

    # A second client still holding version 1 is refused, with the current version to re-read.
    stale = await client.patch(url, json={"headcount": 5, "version": 1}, headers=auth("command"))
    body = assert_error(stale, 409, "version_conflict")
    assert body["details"]["current_version"] == 2 and body["details"]["your_version"] == 1
    assert stale.headers["ETag"] == '"2"'

    by_field = await client.patch(url, json={"name": "新名字", "version": 2}, headers=auth("command"))
    assert by_field.status_code == 200 and by_field.json()["properties"]["version"] == 3

    disagree = await client.patch(
        url, json={"headcount": 7, "version": 3}, headers={**auth("command"), "If-Match": "2"}
    )
    assert_error(disagree, 400, "conflicting_versions")
    assert_error(
        await client.patch(url, json={"headcount": 7}, headers={**auth("command"), "If-Match": "*"}),
        400,
        "invalid_if_match",
    )

    updates = await events(session, "team", team["id"], "team.updated")
    assert [e["data"]["changes"] for e in updates] == [
        {"headcount": {"from": 12, "to": 20}},
        {"name": {"from": "测试救援队", "to": "新名字"}},
    ]
    assert all(e["actor"] == "command:test-command" and e["township_code"] == WENCHANG for e in updates)


async def test_moving_the_base_moves_the_team_to_the_new_township(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    team = await create(client, auth, "teams")
    response = await client.patch(
        f"/api/v1/teams/{team['id']}", json={"base": point(XIAYING_POINT), "version": 1}, headers=auth("command")
    )
    assert response.status_code == 200, response.text
    assert response.json()["properties"]["township"] == XIAYING
    [event] = await events(session, "team", team["id"], "team.updated")
    assert event["township_code"] == XIAYING and event["data"]["township_from"] == WENCHANG
    assert event["data"]["changes"]["township"] == {"from": WENCHANG, "to": XIAYING}

    outside = await client.patch(
        f"/api/v1/teams/{team['id']}", json={"base": point(BEIJING_POINT), "version": 2}, headers=auth("command")
    )
    assert_error(outside, 422, "outside_district")


async def test_an_edit_that_changes_nothing_writes_nothing(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    team = await create(client, auth, "teams")
    same = await client.patch(
        f"/api/v1/teams/{team['id']}",
        json={"headcount": 12, "base": point(WENCHANG_POINT), "version": 1},
        headers=auth("command"),
    )
    assert same.status_code == 200 and same.json()["properties"]["version"] == 1
    assert await events(session, "team", team["id"], "team.updated") == []
    empty = await client.patch(f"/api/v1/teams/{team['id']}", json={"version": 1}, headers=auth("command"))
    assert_error(empty, 422, "empty_patch")


@pytest.mark.parametrize(
    "patch",
    [
        {"name": None},
        {"name": "   "},
        {"capabilities": []},
        {"capabilities": ["relief", "relief"]},
        {"capabilities": ["teleportation"]},
        {"headcount": -1},
        {"status": "dispatched"},
        {"code": "T-NEW"},
        {"township": XIAYING},
        {"kind": "wizards"},
    ],
)
async def test_bad_edits_are_refused_without_a_write(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession, patch: dict[str, object]
) -> None:
    team = await create(client, auth, "teams")
    response = await client.patch(f"/api/v1/teams/{team['id']}", json={**patch, "version": 1}, headers=auth("command"))
    assert_error(response, 422)
    assert await events(session, "team", team["id"], "team.updated") == []
    current = (await client.get(f"/api/v1/teams/{team['id']}", headers=auth("viewer"))).json()
    assert current["properties"]["version"] == 1


async def test_editing_an_unknown_team_is_404(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.patch(
        "/api/v1/teams/987654321", json={"headcount": 3, "version": 1}, headers=auth("command")
    )
    assert_error(response, 404, "team_not_found")


# ------------------------------------------------------------------------------------------ positions


async def test_a_position_is_applied_once_and_an_older_one_is_ignored(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    team = await create(client, auth, "teams")
    url = f"/api/v1/teams/{team['id']}/position"
    now = datetime.now(UTC)
    fresh = await client.post(
        url,
        json={"location": point(XIAYING_POINT), "recorded_at": now.isoformat()},
        headers=auth("responder", team=team["id"]),
    )
    assert fresh.status_code == 200, fresh.text
    body = fresh.json()
    assert body["applied"] is True
    assert body["properties"]["position"] == XIAYING_POINT
    assert body["geometry"]["coordinates"] == XIAYING_POINT, "the feature's point is the live position"
    assert body["properties"]["version"] == 1, "a position is telemetry, not an edit: no version bump"
    assert body["properties"]["township"] == WENCHANG, "the township stays the base's"

    older = await client.post(
        url,
        json={"location": point(WENCHANG_POINT), "recorded_at": (now - timedelta(minutes=5)).isoformat()},
        headers=auth("responder", team=team["id"]),
    )
    assert older.status_code == 200 and older.json()["applied"] is False
    assert older.json()["properties"]["position"] == XIAYING_POINT

    [event] = await events(session, "team", team["id"], "team.position")
    assert event["township_code"] == WENCHANG and event["actor"] == "responder:test-responder"
    assert event["data"]["team_id"] == team["id"]
    assert [event["data"]["lon"], event["data"]["lat"]] == XIAYING_POINT
    assert datetime.fromisoformat(event["data"]["recorded_at"]) == now


async def test_a_little_clock_skew_is_tolerated(client: httpx.AsyncClient, auth: Auth) -> None:
    team = await create(client, auth, "teams")
    ahead = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    response = await client.post(
        f"/api/v1/teams/{team['id']}/position",
        json={"location": point(XIAYING_POINT), "recorded_at": ahead},
        headers=auth("command"),
    )
    assert response.status_code == 200 and response.json()["applied"] is True
    stored = datetime.fromisoformat(response.json()["properties"]["position_at"])
    assert stored <= datetime.now(UTC), "a fix from a clock running ahead counts as taken now, not later"


async def test_a_position_without_a_time_is_taken_as_received(client: httpx.AsyncClient, auth: Auth) -> None:
    team = await create(client, auth, "teams")
    response = await client.post(
        f"/api/v1/teams/{team['id']}/position",
        json={"location": point(list(wgs84_to_gcj02(*XIAYING_POINT))), "coord_sys": "gcj02"},
        headers=auth("command"),
    )
    assert response.status_code == 200 and response.json()["applied"] is True
    assert response.json()["properties"]["position"] == pytest.approx(XIAYING_POINT, abs=1e-6)
    at = datetime.fromisoformat(response.json()["properties"]["position_at"])
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60


@pytest.mark.parametrize(
    "recorded_at",
    [
        timedelta(minutes=2),  # ahead of the server by more than the minute of clock skew allowed
        timedelta(hours=-25),
        "2024-01-01T00:00:00",  # no UTC offset: ambiguous
        "yesterday",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
    ],
)
async def test_a_position_from_a_broken_clock_is_refused(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession, recorded_at: str | timedelta
) -> None:
    if isinstance(recorded_at, timedelta):
        recorded_at = (datetime.now(UTC) + recorded_at).isoformat()
    team = await create(client, auth, "teams")
    response = await client.post(
        f"/api/v1/teams/{team['id']}/position",
        json={"location": point(XIAYING_POINT), "recorded_at": recorded_at},
        headers=auth("command"),
    )
    assert_error(response, 422, "validation_error")
    assert await events(session, "team", team["id"], "team.position") == []


async def test_a_batch_applies_the_newest_fix_per_team_in_one_go(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    a = await create(client, auth, "teams")
    b = await create(client, auth, "teams")
    now = datetime.now(UTC)
    # b already has a newer position than the batch's fix for it.
    await client.post(
        f"/api/v1/teams/{b['id']}/position",
        json={"location": point(WENCHANG_POINT), "recorded_at": now.isoformat()},
        headers=auth("command"),
    )
    fixes = [
        {
            "team_id": a["id"],
            "location": point([117.45, 40.1]),
            "recorded_at": (now - timedelta(seconds=30)).isoformat(),
        },
        {
            "team_id": a["id"],
            "location": point(XIAYING_POINT),
            "recorded_at": (now - timedelta(seconds=10)).isoformat(),
        },
        {
            "team_id": a["id"],
            "location": point([117.44, 40.1]),
            "recorded_at": (now - timedelta(seconds=20)).isoformat(),
        },
        {"team_id": b["id"], "location": point(XIAYING_POINT), "recorded_at": (now - timedelta(seconds=5)).isoformat()},
    ]
    before = await count_events(session, "team.position")
    response = await client.post("/api/v1/teams/positions", json={"positions": fixes}, headers=auth("command"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["received"] == 4 and body["applied"] == 1
    assert [(r["applied"], r["reason"]) for r in body["results"]] == [
        (False, "superseded_in_batch"),
        (True, None),
        (False, "superseded_in_batch"),
        (False, "older_than_stored"),
    ]
    teams = {
        f["id"]: f["properties"]
        for f in (await client.get("/api/v1/teams", params={"limit": 1000}, headers=auth("viewer"))).json()["features"]
    }
    assert teams[a["id"]]["position"] == XIAYING_POINT
    assert teams[b["id"]]["position"] == WENCHANG_POINT
    assert await count_events(session, "team.position") == before + 1
    [event] = await events(session, "team", a["id"], "team.position")
    assert event["township_code"] == WENCHANG and [event["data"]["lon"], event["data"]["lat"]] == XIAYING_POINT


async def test_a_batch_of_500_is_one_transaction_with_its_events(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    ids = list(
        await session.scalars(text("SELECT id FROM team ORDER BY id"))  # the seeded teams
    )
    now = datetime.now(UTC)
    fixes = [
        {
            "team_id": ids[i % len(ids)],
            "location": point([117.3 + i * 0.0005, 40.0]),
            "recorded_at": (now - timedelta(seconds=500 - i)).isoformat(),
        }
        for i in range(500)
    ]
    before = await count_events(session, "team.position")
    response = await client.post("/api/v1/teams/positions", json=fixes, headers=auth("command"))
    assert response.status_code == 200, response.text
    assert response.json()["applied"] == len(ids)
    assert await count_events(session, "team.position") == before + len(ids)

    too_many = await client.post("/api/v1/teams/positions", json=fixes + fixes[:1], headers=auth("command"))
    assert_error(too_many, 422, "validation_error")
    assert_error(await client.post("/api/v1/teams/positions", json=[], headers=auth("command")), 422)


async def test_a_batch_naming_unknown_teams_writes_nothing(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    team = await create(client, auth, "teams")
    now = datetime.now(UTC).isoformat()
    fixes = [
        {"team_id": team["id"], "location": point(XIAYING_POINT), "recorded_at": now},
        {"team_id": 987654321, "location": point(XIAYING_POINT), "recorded_at": now},
        {"team_id": 987654322, "location": point(XIAYING_POINT), "recorded_at": now},
    ]
    before = await count_events(session, "team.position")
    response = await client.post("/api/v1/teams/positions", json=fixes, headers=auth("command"))
    body = assert_error(response, 422, "unknown_team")
    assert body["details"]["team_ids"] == [987654321, 987654322]
    assert await count_events(session, "team.position") == before
    current = (await client.get(f"/api/v1/teams/{team['id']}", headers=auth("viewer"))).json()
    assert current["properties"]["position"] is None


async def test_one_bad_fix_refuses_the_whole_batch(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    team = await create(client, auth, "teams")
    now = datetime.now(UTC).isoformat()
    fixes = [
        {"team_id": team["id"], "location": point(XIAYING_POINT), "recorded_at": now},
        {"team_id": team["id"], "location": point([117.4, 91]), "recorded_at": now},
    ]
    response = await client.post("/api/v1/teams/positions", json=fixes, headers=auth("command"))
    body = assert_error(response, 422, "validation_error")
    assert body["details"][0]["loc"][:3] == ["body", "positions", 1]
    assert await events(session, "team", team["id"], "team.position") == []


async def test_a_batch_is_one_update_and_one_insert_whatever_its_size(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession, engine: AsyncEngine
) -> None:
    ids = list(await session.scalars(text("SELECT id FROM team ORDER BY id")))
    now = datetime.now(UTC)
    fixes = [
        {"team_id": team_id, "location": point([117.35, 40.0 + i / 1000]), "recorded_at": now.isoformat()}
        for i, team_id in enumerate(ids)
    ]
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    def capture_on_driver(query: LoggedQuery) -> None:
        statements.append(" ".join(query.query.split()))

    # What runs through SQLAlchemy, and what the service runs on the session's asyncpg connection directly.
    async with on_driver(session) as driver:
        pass  # the session's own connection, which stays the same for the test's whole transaction
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    driver.add_query_logger(capture_on_driver)
    try:
        response = await client.post("/api/v1/teams/positions", json=fixes, headers=auth("command"))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        driver.remove_query_logger(capture_on_driver)
    assert response.status_code == 200 and response.json()["applied"] == len(ids)
    # One statement writes the whole batch (track, positions and their events): no per-team UPDATE, no
    # separate INSERT per table, whatever the batch size.
    writing = [s for s in statements if "UPDATE " in s or "INSERT " in s]
    assert len(writing) == 1, writing
    assert writing[0].startswith("WITH fix AS")
    assert all(part in writing[0] for part in ("INSERT INTO team_track", "UPDATE team", "INSERT INTO event"))
