"""Recommendations: ranking checked against an independent geodesic computation (pyproj)."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pyproj import Geod

from app.config import Settings

Auth = Callable[..., dict[str, str]]
GEOD = Geod(ellps="WGS84")

# Points all over the district: the city, the northern mountains, the southern plains, the east and west.
POINTS = [
    (117.405, 40.045),
    (117.46, 40.19),
    (117.38, 39.80),
    (117.66, 40.05),
    (117.27, 40.02),
    (117.55, 39.90),
    (117.33, 40.13),
    (117.50, 40.02),
]


def geodesic_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


async def all_teams(client: httpx.AsyncClient, auth: Auth) -> list[dict[str, Any]]:
    body = (await client.get("/api/v1/teams", params={"limit": 1000}, headers=auth())).json()
    return list(body["features"])


@pytest.mark.parametrize("point", POINTS)
async def test_nearest_teams_match_pyproj_over_all_seeded_teams(
    client: httpx.AsyncClient, auth: Auth, point: tuple[float, float]
) -> None:
    teams = await all_teams(client, auth)
    expected = sorted(teams, key=lambda t: geodesic_m(point, tuple(t["properties"]["base"])))
    response = await client.get(
        "/api/v1/nearest",
        params={"kind": "team", "lon": point[0], "lat": point[1], "limit": len(teams)},
        headers=auth(),
    )
    assert response.status_code == 200, response.text
    got = response.json()["features"]
    assert [f["id"] for f in got] == [t["id"] for t in expected]
    for feature, team in zip(got, expected, strict=True):
        truth = geodesic_m(point, tuple(team["properties"]["base"]))
        assert feature["properties"]["distance_m"] == pytest.approx(truth, abs=1.0)
        assert feature["properties"]["position_source"] == "base"


@pytest.mark.parametrize("point", POINTS[:4])
async def test_recommendation_ranks_capable_teams_by_eta(
    client: httpx.AsyncClient, auth: Auth, settings: Settings, point: tuple[float, float]
) -> None:
    incident = (
        await client.post(
            "/api/v1/incidents",
            headers=auth(),
            json={
                "type": "forest_fire",
                "location": {"type": "Point", "coordinates": list(point)},
                "title": "山火",
                "people_affected": 500,
            },
        )
    ).json()
    rec = (await client.get(f"/api/v1/incidents/{incident['id']}/recommendation", headers=auth())).json()
    teams = await all_teams(client, auth)
    mountain = incident["township"] in settings.dispatch_mountain_townships
    factor = settings.dispatch_mountain_road_factor if mountain else settings.dispatch_road_factor

    def eta(team: dict[str, Any]) -> float:
        p = team["properties"]
        distance = geodesic_m(point, tuple(p["base"]))
        return settings.dispatch_turnout_s[p["kind"]] + distance * factor / (settings.dispatch_speed_kmh / 3.6)

    forest = sorted((t for t in teams if "forest_fire" in t["properties"]["capabilities"]), key=eta)[:3]
    proposed = [t for t in rec["teams"] if t["need"] == "forest fire suppression"]
    assert [t["id"] for t in proposed] == [t["id"] for t in forest]
    for option in rec["teams"]:
        team = next(t for t in teams if t["id"] == option["id"])
        assert option["eta_s"] == pytest.approx(eta(team), abs=1.5)
        assert option["position_source"] == "base"
    assert any(t["need"] == "water supply" for t in rec["teams"])
    assert [t["eta_s"] for t in rec["teams"]] == sorted(t["eta_s"] for t in rec["teams"])
    # Shelters with room for the 500 people, nearest first.
    assert sum(s["free_places"] for s in rec["shelters"]) >= 500
    assert [s["distance_m"] for s in rec["shelters"]] == sorted(s["distance_m"] for s in rec["shelters"])
    assert rec["depots"] and all(any(line["item"] == "201" for line in d["stock"]) or d["stock"] for d in rec["depots"])
    assert rec["helipad"] is not None and rec["aviation_eta_s"] > settings.aviation_turnout_s


async def test_shortfall_reasons_when_teams_are_busy_or_far(
    client: httpx.AsyncClient, auth: Auth, session: Any
) -> None:
    from sqlalchemy import text

    await session.execute(text("UPDATE team SET status = 'on_scene' WHERE 'hazmat' = ANY(capabilities)"))
    incident = (
        await client.post(
            "/api/v1/incidents",
            headers=auth(),
            json={
                "type": "hazardous_chemicals",
                "location": {"type": "Point", "coordinates": [117.42, 39.99]},
                "title": "泄漏",
            },
        )
    ).json()
    rec = (await client.get(f"/api/v1/incidents/{incident['id']}/recommendation", headers=auth())).json()
    hazmat = next(s for s in rec["shortfalls"] if s["need"] == "hazmat")
    assert hazmat["found"] == 0 and hazmat["wanted"] == 2
    assert "none_available" in hazmat["reasons"]
    assert hazmat["details"]["by_status"].get("on_scene", 0) >= 1


async def test_live_position_is_used_when_fresh_and_base_when_stale(
    client: httpx.AsyncClient, auth: Auth, session: Any
) -> None:
    from sqlalchemy import text

    team_id = (await session.execute(text("SELECT id FROM team WHERE kind = 'forest_fire'"))).scalar_one()
    target = (117.30, 39.78)
    await session.execute(
        text(
            "UPDATE team SET position = 'SRID=4326;POINT(117.301 39.781)'::geography, position_at = now() "
            "WHERE id = :id"
        ),
        {"id": team_id},
    )
    params = {"kind": "team", "lon": target[0], "lat": target[1], "limit": 1, "capability": "forest_fire"}
    near = (await client.get("/api/v1/nearest", params=params, headers=auth())).json()["features"][0]
    assert near["id"] == team_id and near["properties"]["position_source"] == "live"
    assert near["properties"]["distance_m"] == pytest.approx(geodesic_m(target, (117.301, 39.781)), abs=1)
    await session.execute(
        text("UPDATE team SET position_at = now() - interval '3 hours' WHERE id = :id"), {"id": team_id}
    )
    stale = (await client.get("/api/v1/nearest", params=params | {"limit": 50}, headers=auth())).json()["features"]
    mine = next(f for f in stale if f["id"] == team_id)
    assert mine["properties"]["position_source"] == "base"


@pytest.mark.parametrize(("kind", "extra"), [("shelter", {}), ("depot", {"item": "201"}), ("helipad", {})])
async def test_nearest_other_kinds_are_sorted_and_exact(
    client: httpx.AsyncClient, auth: Auth, kind: str, extra: dict[str, str]
) -> None:
    point = (117.45, 40.10)
    body = (
        await client.get(
            "/api/v1/nearest",
            params={"kind": kind, "lon": point[0], "lat": point[1], "limit": 10} | extra,
            headers=auth(),
        )
    ).json()
    assert body["features"]
    distances = [f["properties"]["distance_m"] for f in body["features"]]
    assert distances == sorted(distances)
    for f in body["features"]:
        assert f["properties"]["distance_m"] == pytest.approx(
            geodesic_m(point, tuple(f["geometry"]["coordinates"])), abs=1.0
        )
    if kind == "depot":
        assert all(line["item"] == "201" for f in body["features"] for line in f["properties"]["stock"])


async def test_nearest_rejects_bad_points(client: httpx.AsyncClient, auth: Auth) -> None:
    for params in (
        {"kind": "team", "lon": 200, "lat": 40},
        {"kind": "team", "lon": "abc", "lat": 40},
        {"kind": "boat", "lon": 117, "lat": 40},
        {"kind": "team", "lon": "nan", "lat": 40},
    ):
        response = await client.get("/api/v1/nearest", params=params, headers=auth())
        assert response.status_code == 422, params
