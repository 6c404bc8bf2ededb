"""The read endpoints as a client sees them: GeoJSON FeatureCollections, filters, paging, auth."""

from collections.abc import Callable

import httpx
import pytest

KINDS = ["townships", "teams", "shelters", "depots", "helipads"]


@pytest.mark.parametrize("kind", KINDS)
async def test_every_list_is_a_paged_geojson_feature_collection(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], kind: str
) -> None:
    response = await client.get(f"/api/v1/{kind}", params={"limit": 2}, headers=auth("viewer"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberReturned"] == len(body["features"]) == 2
    assert body["numberMatched"] >= 3
    assert any(link["rel"] == "next" for link in body["links"])
    for feature in body["features"]:
        assert feature["type"] == "Feature"
        assert feature["id"] is not None
        assert feature["properties"]["name"]
        assert len(feature["properties"]["township"]) == 9
        lon, lat = (
            feature["geometry"]["coordinates"][0][0][0] if kind == "townships" else feature["geometry"]["coordinates"]
        )
        assert 117.0 < lon < 118.0 and 39.6 < lat < 40.4, "[lon, lat] order, inside Jizhou"


async def test_paging_walks_every_shelter_exactly_once(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    seen: list[int] = []
    url: str | None = "/api/v1/shelters?limit=40"
    while url:
        body = (await client.get(url, headers=auth("viewer"))).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == 95


async def test_township_and_bbox_filters(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    headers = auth("viewer")
    body = (
        await client.get("/api/v1/shelters", params={"township": "120119001", "limit": 1000}, headers=headers)
    ).json()
    assert body["numberMatched"] >= 2
    assert {f["properties"]["township"] for f in body["features"]} == {"120119001"}
    assert any(f["properties"]["level"] == "fixed" for f in body["features"])

    box = (117.35, 39.95, 117.45, 40.10)
    body = (
        await client.get("/api/v1/shelters", params={"bbox": ",".join(map(str, box)), "limit": 1000}, headers=headers)
    ).json()
    assert body["numberMatched"] > 0
    for f in body["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert box[0] <= lon <= box[2] and box[1] <= lat <= box[3]
    everything = (await client.get("/api/v1/shelters", params={"limit": 1000}, headers=headers)).json()
    inside = [
        f
        for f in everything["features"]
        if box[0] <= f["geometry"]["coordinates"][0] <= box[2] and box[1] <= f["geometry"]["coordinates"][1] <= box[3]
    ]
    assert body["numberMatched"] == len(inside)


async def test_depots_carry_their_stock(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    body = (
        await client.get("/api/v1/depots", params={"level": "district", "limit": 100}, headers=auth("viewer"))
    ).json()
    stock = {line["item"]: line for f in body["features"] for line in f["properties"]["stock"]}
    assert stock["201"]["quantity"] >= 10_000
    assert stock["201"]["unit"] and stock["201"]["name"]


async def test_team_properties_follow_the_contract(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    body = (await client.get("/api/v1/teams", params={"limit": 1000}, headers=auth("viewer"))).json()
    kinds = {f["properties"]["kind"] for f in body["features"]}
    assert {
        "fire_rescue",
        "township_fire",
        "forest_fire",
        "hazmat",
        "flood",
        "geological",
        "medical",
        "social",
        "militia",
    } <= kinds
    for f in body["features"]:
        p = f["properties"]
        assert p["capabilities"] and p["headcount"] > 0 and p["status"] == "available"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"bbox": "1,2,3"}, "invalid_bbox"),
        ({"bbox": "a,b,c,d"}, "invalid_bbox"),
        ({"bbox": "117,40,116,41"}, "invalid_bbox"),
        ({"bbox": "nan,1,2,3"}, "invalid_bbox"),
        ({"limit": "0"}, "validation_error"),
        ({"limit": "abc"}, "validation_error"),
        ({"township": "12345"}, "validation_error"),
    ],
)
async def test_bad_list_parameters_get_a_4xx_with_a_code(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], params: dict[str, str], code: str
) -> None:
    response = await client.get("/api/v1/shelters", params=params, headers=auth("viewer"))
    assert 400 <= response.status_code < 500
    body = response.json()
    assert body["code"] == code and body["message"]


async def test_unknown_ids_are_404_and_huge_ids_are_422(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    assert (await client.get("/api/v1/teams/999999", headers=auth())).json()["code"] == "team_not_found"
    assert (await client.get("/api/v1/teams/99999999999999999999999", headers=auth())).status_code == 422
    assert (await client.get("/api/v1/townships/120119999", headers=auth())).status_code == 404


async def test_reads_need_a_token_and_partners_are_kept_out(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    assert (await client.get("/api/v1/teams")).status_code == 401
    assert (await client.get("/api/v1/teams", headers={"Authorization": "Bearer nonsense"})).status_code == 401
    response = await client.get("/api/v1/teams", headers=auth("partner", partner="pinggu"))
    assert response.status_code == 403


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["postgis"].startswith("3.")


async def test_a_user_logs_in_and_uses_the_token(client: httpx.AsyncClient, session) -> None:  # type: ignore[no-untyped-def]
    from app.users import service as user_service
    from app.users.models import Role

    await user_service.create_user(
        session=session, username="dispatcher1", password="correct horse battery", role=Role.COMMAND
    )
    await session.commit()  # a savepoint: the outer transaction still rolls back after the test
    wrong = await client.post("/api/v1/auth/token", data={"username": "dispatcher1", "password": "nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
    unknown = await client.post("/api/v1/auth/token", data={"username": "ghost", "password": "nope"})
    assert unknown.status_code == 401
    ok = await client.post("/api/v1/auth/token", data={"username": "dispatcher1", "password": "correct horse battery"})
    assert ok.status_code == 200, ok.text
    token = ok.json()["access_token"]
    assert (await client.get("/api/v1/helipads", headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_reads_answer_in_gcj02_on_request(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    from app.geo.coords import wgs84_to_gcj02

    wgs = (await client.get("/api/v1/helipads", headers=auth("viewer"))).json()["features"][0]
    gcj = (await client.get("/api/v1/helipads", params={"coord_sys": "gcj02"}, headers=auth("viewer"))).json()
    expected = wgs84_to_gcj02(*wgs["geometry"]["coordinates"])
    got = gcj["features"][0]["geometry"]["coordinates"]
    assert abs(got[0] - expected[0]) < 1e-6 and abs(got[1] - expected[1]) < 1e-6
    assert got != wgs["geometry"]["coordinates"]
    bad = await client.get("/api/v1/helipads", params={"coord_sys": "mars"}, headers=auth("viewer"))
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
