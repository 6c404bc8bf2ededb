"""Positions from a gateway: latest position by time of fix, a track history, duplicates stored once."""

from collections.abc import Callable

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Auth = Callable[..., dict[str, str]]


def fix(team: int, lon: float, at: str) -> dict[str, object]:
    return {"team_id": team, "location": {"type": "Point", "coordinates": [lon, 40.05]}, "recorded_at": at}


async def test_gateway_batch_keeps_the_newest_position_and_the_whole_track(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    team = (await session.execute(text("SELECT id FROM team ORDER BY id LIMIT 1"))).scalar_one()
    batch = [
        fix(team, 117.401, "2026-12-03T10:00:00Z"),
        fix(team, 117.403, "2026-12-03T10:02:00Z"),
        fix(team, 117.402, "2026-12-03T10:01:00Z"),  # arrives late: joins the track, not the position
        fix(team, 117.403, "2026-12-03T10:02:00Z"),  # sent twice
    ]
    first = await client.post("/api/v1/positions", json={"positions": batch}, headers=auth())
    assert first.status_code == 200, first.text
    assert first.json()["applied"] == 1
    # An older fix later never overwrites the stored one.
    late = await client.post("/api/v1/positions", json=[fix(team, 117.5, "2026-12-03T09:00:00Z")], headers=auth())
    assert late.json()["results"][0] == {"team_id": team, "applied": False, "reason": "older_than_stored"}
    current = (await client.get(f"/api/v1/teams/{team}", headers=auth())).json()
    assert current["properties"]["position"] == [117.403, 40.05]
    track = (await client.get(f"/api/v1/teams/{team}/track", headers=auth())).json()
    assert [f["geometry"]["coordinates"][0] for f in track["features"]] == [117.5, 117.401, 117.402, 117.403]
    window = (
        await client.get(f"/api/v1/teams/{team}/track", params={"since": "2026-12-03T10:00:30Z"}, headers=auth())
    ).json()
    assert len(window["features"]) == 2
    events = (
        await session.execute(
            text("SELECT count(*) FROM event WHERE topic = 'team.position' AND subject_id = :id"), {"id": str(team)}
        )
    ).scalar()
    assert events == 1
    other = (await session.execute(text("SELECT id FROM team ORDER BY id OFFSET 1 LIMIT 1"))).scalar_one()
    forbidden = await client.get(f"/api/v1/teams/{team}/track", headers=auth("responder", team=other))
    assert forbidden.status_code == 403
