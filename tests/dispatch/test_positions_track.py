"""Positions from a gateway: latest position by time of fix, a track history, duplicates stored once."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from fastapi.encoders import jsonable_encoder
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


async def _teams(session: AsyncSession, count: int) -> list[tuple[int, str]]:
    """`count` teams (id, township): the seeded ones, topped up with copies of the first at its base."""
    await session.execute(
        text(
            """
            INSERT INTO team (code, name, kind, capabilities, headcount, township_code, base)
            SELECT 'BATCH-' || g, 'batch team ' || g, kind, capabilities, headcount, township_code, base
            FROM (SELECT * FROM team ORDER BY id LIMIT 1) AS first, generate_series(1, :missing) AS g
            """
        ),
        {"missing": max(0, count - int((await session.execute(text("SELECT count(*) FROM team"))).scalar_one()))},
    )
    rows = await session.execute(text("SELECT id, township_code FROM team ORDER BY id LIMIT :n"), {"n": count})
    return [(int(team_id), str(township)) for team_id, township in rows]


async def test_a_batch_of_50_writes_50_track_rows_positions_and_events_in_one_transaction(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    teams = await _teams(session, 50)
    # A second back: a fix time ahead of the server's clock would be clamped to now (fix_time).
    at = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=123456)
    batch = [
        {"team_id": team_id, "location": {"type": "Point", "coordinates": [117.3 + i / 1000, 40.1]}, "recorded_at": at}
        for i, (team_id, _) in enumerate(teams)
    ]
    body = jsonable_encoder({"positions": batch})
    response = await client.post("/api/v1/positions", json=body, headers=auth())
    assert response.status_code == 200, response.text
    assert response.json()["received"] == 50 and response.json()["applied"] == 50
    ids = [str(team_id) for team_id, _ in teams]
    events = (
        await session.execute(
            text(
                "SELECT subject_id, actor, township_code, exercise, data, xmin::text AS tx FROM event"
                " WHERE topic = 'team.position' AND subject_id = ANY(:ids) ORDER BY seq"
            ),
            {"ids": ids},
        )
    ).all()
    # One event per position applied, in the order of the batch, each what a screen needs to move the team.
    assert [e.subject_id for e in events] == ids
    for i, (e, (team_id, township)) in enumerate(zip(events, teams, strict=True)):
        assert (e.actor, e.township_code, e.exercise) == ("command:test-command", township, False)
        assert e.data == {
            "team_id": team_id,
            "lon": round(117.3 + i / 1000, 7),
            "lat": 40.1,
            "recorded_at": at.isoformat(),
        }
    track = (
        await session.execute(
            text("SELECT team_id, recorded_at, xmin::text AS tx FROM team_track WHERE team_id = ANY(:ids)"),
            {"ids": [team_id for team_id, _ in teams]},
        )
    ).all()
    assert sorted(t.team_id for t in track) == [team_id for team_id, _ in teams]
    assert {t.recorded_at for t in track} == {at}
    moved = (
        await session.execute(
            text("SELECT xmin::text AS tx FROM team WHERE id = ANY(:ids) AND position_at = :at"),
            {"ids": [team_id for team_id, _ in teams], "at": at},
        )
    ).all()
    assert len(moved) == 50
    # Track rows, positions and events were all written by one transaction.
    assert len({row.tx for row in [*events, *track, *moved]}) == 1


async def test_a_refused_batch_leaves_no_track_positions_or_events(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    teams = await _teams(session, 36)
    mine, mine_township = teams[0]
    theirs = next(team_id for team_id, township in teams if township != mine_township)
    at = datetime.now(UTC).isoformat()

    async def nothing_written() -> None:
        counts = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM team_track WHERE team_id = ANY(:ids)),"
                    " (SELECT count(*) FROM team WHERE id = ANY(:ids) AND position IS NOT NULL),"
                    " (SELECT count(*) FROM event WHERE topic = 'team.position' AND subject_id = ANY(:sids))"
                ),
                {"ids": [mine, theirs], "sids": [str(mine), str(theirs)]},
            )
        ).one()
        assert tuple(counts) == (0, 0, 0)

    # Another township's team in a township center's batch: 403, and its own team's fix is not kept either.
    out_of_scope = await client.post(
        "/api/v1/positions",
        json=[fix(mine, 117.41, at), fix(theirs, 117.42, at)],
        headers=auth("township", township=mine_township),
    )
    assert out_of_scope.status_code == 403, out_of_scope.text
    assert out_of_scope.json()["code"] == "out_of_scope"
    await nothing_written()
    unknown = await client.post(
        "/api/v1/positions", json=[fix(mine, 117.41, at), fix(987654321, 117.42, at)], headers=auth()
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["details"] == {"team_ids": [987654321]}
    await nothing_written()


async def test_two_fixes_of_one_team_at_the_same_time_the_later_in_the_batch_wins(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession
) -> None:
    team = (await _teams(session, 1))[0][0]
    at = datetime.now(UTC).isoformat()
    response = await client.post(
        "/api/v1/positions", json=[fix(team, 117.41, at), fix(team, 117.42, at)], headers=auth()
    )
    assert [(r["applied"], r["reason"]) for r in response.json()["results"]] == [
        (False, "superseded_in_batch"),
        (True, None),
    ]
    current = (await client.get(f"/api/v1/teams/{team}", headers=auth())).json()
    assert current["properties"]["position"] == [117.42, 40.05]
    [data] = (
        await session.execute(
            text("SELECT data FROM event WHERE topic = 'team.position' AND subject_id = :id"), {"id": str(team)}
        )
    ).scalars()
    assert data["lon"] == 117.42
