"""Incidents through the HTTP API: reporting, reading, editing with versions, the lifecycle, scope."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.geo.coords import wgs84_to_bd09, wgs84_to_gcj02

Auth = Callable[..., dict[str, str]]
CITY = (117.405, 40.045)  # in 文昌街道 (120119001)
XIAYING = "120119104"


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "forest_fire",
        "location": {"type": "Point", "coordinates": list(CITY)},
        "title": "山火",
        "people_affected": 12,
    }
    return data | overrides


async def report(client: httpx.AsyncClient, auth: Auth, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/incidents", json=body(**overrides), headers=auth())
    assert response.status_code == 201, response.text
    return response.json()


async def test_report_derives_township_code_and_category(client: httpx.AsyncClient, auth: Auth) -> None:
    incident = await report(client, auth, severity="II")
    assert incident["township"] == "120119001"
    assert incident["code"].startswith("JZ-") and len(incident["code"]) == len("JZ-20261203-0001")
    assert incident["category"] == "natural_disaster" and incident["type"] == "forest_fire"
    assert incident["severity"] == "II" and incident["severity_name"] == "重大"
    assert incident["status"] == "reported" and incident["version"] == 1
    assert incident["location"]["coordinates"] == pytest.approx(list(CITY))
    assert incident["cross_border"] is False and incident["exercise"] is False
    second = await report(client, auth)
    assert int(second["code"][-4:]) == int(incident["code"][-4:]) + 1


@pytest.mark.parametrize("convert", ["gcj02", "bd09"])
async def test_input_in_gcj02_or_bd09_lands_on_the_same_wgs84_point(
    client: httpx.AsyncClient, auth: Auth, convert: str
) -> None:
    shifted = (wgs84_to_gcj02 if convert == "gcj02" else wgs84_to_bd09)(*CITY)
    incident = await report(client, auth, location={"type": "Point", "coordinates": list(shifted)}, coord_sys=convert)
    assert incident["location"]["coordinates"] == pytest.approx(list(CITY), abs=1e-6)
    read = (
        await client.get(f"/api/v1/incidents/{incident['id']}", params={"coord_sys": convert}, headers=auth())
    ).json()
    assert read["location"]["coordinates"] == pytest.approx(list(shifted), abs=1e-6)


async def test_outside_point_needs_cross_border_and_is_marked(client: httpx.AsyncClient, auth: Auth) -> None:
    pinggu = {"type": "Point", "coordinates": [117.15, 40.15]}
    refused = await client.post("/api/v1/incidents", json=body(location=pinggu), headers=auth())
    assert refused.status_code == 422 and refused.json()["code"] == "outside_district"
    accepted = await report(client, auth, location=pinggu, cross_border=True)
    assert accepted["cross_border"] is True and accepted["township"] is None
    beijing = {"type": "Point", "coordinates": [116.40, 39.90]}
    far = await client.post("/api/v1/incidents", json=body(location=beijing, cross_border=True), headers=auth())
    assert far.status_code == 422


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"location": {"type": "Point", "coordinates": [117.4, 91]}}, "validation_error"),
        ({"location": {"type": "Point", "coordinates": ["abc", 40]}}, "validation_error"),
        ({"location": {"type": "Point", "coordinates": [117.4]}}, "validation_error"),
        ({"location": {"type": "Polygon", "coordinates": [117.4, 40]}}, "validation_error"),
        ({"type": "alien_invasion"}, "validation_error"),
        ({"severity": "V"}, "validation_error"),
        ({"people_affected": -1}, "validation_error"),
        ({"title": ""}, "validation_error"),
        ({"coord_sys": "mars"}, "validation_error"),
        ({"unknown_field": 1}, "validation_error"),
        ({"dead": 10**30}, "validation_error"),
    ],
)
async def test_bad_reports_get_422_and_write_nothing(
    client: httpx.AsyncClient, auth: Auth, payload: dict[str, Any], code: str
) -> None:
    before = (await client.get("/api/v1/incidents", params={"exercise": "any"}, headers=auth())).json()
    response = await client.post("/api/v1/incidents", json=body(**payload), headers=auth())
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code and response.json()["message"]
    after = (await client.get("/api/v1/incidents", params={"exercise": "any"}, headers=auth())).json()
    assert after["numberMatched"] == before["numberMatched"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": "forest_fire", "location": {"type": "Point", "coordinates": [NaN, 40]}, "title": "x"}',
        b'{"type": "forest_fire", "location": {"type": "Point", "coordinates": [117.4, Infinity]}, "title": "x"}',
        b'{"type": "forest_fire", "location": ',
    ],
)
async def test_nan_infinity_and_broken_json_are_4xx(client: httpx.AsyncClient, auth: Auth, raw: bytes) -> None:
    response = await client.post(
        "/api/v1/incidents", content=raw, headers=auth() | {"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["code"] in ("validation_error", "invalid_json")


async def test_oversized_and_too_deep_bodies_are_refused_early(client: httpx.AsyncClient, auth: Auth) -> None:
    big = await client.post(
        "/api/v1/incidents", content=b"x" * 10_000_000, headers=auth() | {"Content-Type": "application/json"}
    )
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
    deep = await client.post(
        "/api/v1/incidents", content=b"[" * 5000 + b"]" * 5000, headers=auth() | {"Content-Type": "application/json"}
    )
    assert deep.status_code == 400 and deep.json()["code"] == "json_too_deep"


async def test_list_filters_and_drills_are_kept_apart(client: httpx.AsyncClient, auth: Auth) -> None:
    real = await report(client, auth, type="flood", severity="III")
    drill = await report(client, auth, type="flood", exercise=True)
    listed = (await client.get("/api/v1/incidents", params={"type": "flood"}, headers=auth())).json()
    ids = {f["id"] for f in listed["features"]}
    assert real["id"] in ids and drill["id"] not in ids
    drills = (await client.get("/api/v1/incidents", params={"exercise": "true"}, headers=auth())).json()
    assert {f["id"] for f in drills["features"]} >= {drill["id"]}
    assert all(f["properties"]["exercise"] for f in drills["features"])
    by_severity = (await client.get("/api/v1/incidents", params={"severity": "III"}, headers=auth())).json()
    assert real["id"] in {f["id"] for f in by_severity["features"]}
    by_township = (await client.get("/api/v1/incidents", params={"township": XIAYING}, headers=auth())).json()
    assert real["id"] not in {f["id"] for f in by_township["features"]}
    in_box = (
        await client.get("/api/v1/incidents", params={"bbox": "117.40,40.04,117.41,40.05"}, headers=auth())
    ).json()
    assert real["id"] in {f["id"] for f in in_box["features"]}
    future = (
        await client.get("/api/v1/incidents", params={"reported_after": "2099-01-01T00:00:00Z"}, headers=auth())
    ).json()
    assert future["numberMatched"] == 0
    naive = await client.get("/api/v1/incidents", params={"reported_after": "2026-01-01T00:00:00"}, headers=auth())
    assert naive.status_code == 422


async def test_patch_needs_the_current_version_and_never_loses_an_update(client: httpx.AsyncClient, auth: Auth) -> None:
    incident = await report(client, auth)
    url = f"/api/v1/incidents/{incident['id']}"
    missing = await client.patch(url, json={"title": "no version"}, headers=auth())
    assert missing.status_code == 428 and missing.json()["code"] == "version_required"
    first = await client.patch(
        url, json={"title": "山火扩大", "people_affected": 300}, headers=auth() | {"If-Match": '"1"'}
    )
    assert first.status_code == 200 and first.json()["version"] == 2
    assert first.headers["ETag"] == '"2"'
    stale = await client.patch(url, json={"version": 1, "title": "stale"}, headers=auth())
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
    assert stale.json()["details"]["current_version"] == 2
    assert (await client.get(url, headers=auth())).json()["title"] == "山火扩大"
    moved = await client.patch(
        url, json={"version": 2, "location": {"type": "Point", "coordinates": [117.46, 40.20]}}, headers=auth()
    )
    assert moved.json()["township"] == XIAYING


async def test_lifecycle_and_illegal_transitions(client: httpx.AsyncClient, auth: Auth) -> None:
    incident = await report(client, auth)
    url = f"/api/v1/incidents/{incident['id']}/transitions"
    illegal = await client.post(url, json={"to": "closed"}, headers=auth())
    assert illegal.status_code == 409 and illegal.json()["code"] == "illegal_transition"
    assert set(illegal.json()["details"]["allowed"]) == {"verified", "dispatched", "dismissed"}
    for to in ("verified", "dispatched", "in_progress", "controlled", "closed"):
        response = await client.post(url, json={"to": to, "note": f"now {to}"}, headers=auth())
        assert response.status_code == 200, response.text
        assert response.json()["status"] == to
    closed = response.json()
    assert closed["closed_at"] is not None
    edit = await client.patch(
        f"/api/v1/incidents/{incident['id']}", json={"version": closed["version"], "title": "x"}, headers=auth()
    )
    assert edit.status_code == 409 and edit.json()["code"] == "incident_closed"
    timeline = (await client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=auth())).json()
    topics = [e["topic"] for e in timeline["entries"]]
    assert topics == ["incident.created"] + ["incident.status_changed"] * 5
    assert timeline["entries"][-1]["data"]["note"] == "now closed"
    assert all(e["actor"] == "command:test-command" for e in timeline["entries"])
    assert [e["seq"] for e in timeline["entries"]] == sorted(e["seq"] for e in timeline["entries"])


async def test_roles_and_township_scope(client: httpx.AsyncClient, auth: Auth) -> None:
    city = auth("township", township="120119001")
    xiaying = auth("township", township=XIAYING)
    assert (await client.post("/api/v1/incidents", json=body(), headers=city)).status_code == 201
    other = await client.post("/api/v1/incidents", json=body(), headers=xiaying)
    assert other.status_code == 403 and other.json()["code"] == "out_of_scope"
    assert (await client.post("/api/v1/incidents", json=body(), headers=auth("viewer"))).status_code == 403
    assert (await client.post("/api/v1/incidents", json=body(), headers=auth("responder", team=1))).status_code == 403
    assert (await client.post("/api/v1/incidents", json=body())).status_code == 401
    incident = await report(client, auth)
    # Reads are open to every district role; edits only in scope.
    assert (await client.get(f"/api/v1/incidents/{incident['id']}", headers=xiaying)).status_code == 200
    patch = await client.patch(
        f"/api/v1/incidents/{incident['id']}", json={"version": 1, "title": "x"}, headers=xiaying
    )
    assert patch.status_code == 403
    # A responder reads only what its team is assigned to.
    assert (
        await client.get(f"/api/v1/incidents/{incident['id']}", headers=auth("responder", team=1))
    ).status_code == 403
    listed = (await client.get("/api/v1/incidents", headers=auth("responder", team=1))).json()
    assert incident["id"] not in {f["id"] for f in listed["features"]}


async def test_expired_tampered_and_unsigned_tokens_are_refused(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    import jwt

    expired = token("command", ttl_s=-10)
    response = await client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json()["code"] == "token_expired"
    good = token("viewer")
    header, _payload, signature = good.split(".")
    forged_payload = jwt.utils.base64url_encode(
        b'{"sub":"x","role":"command","iss":"jizhou-emergency","exp":9999999999,"iat":1}'
    ).decode()
    for bad in (
        f"{header}.{forged_payload}.{signature}",
        jwt.encode({"sub": "x", "role": "command"}, key="", algorithm="none"),
        jwt.encode(
            {"sub": "x", "role": "command", "exp": 9999999999, "iat": 1, "iss": "jizhou-emergency"},
            "wrong-secret-wrong-secret-wrong-secret",
            algorithm="HS256",
        ),
    ):
        response = await client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad


async def test_nul_characters_are_refused_at_the_door(client: httpx.AsyncClient, auth: Auth) -> None:
    query = await client.get("/api/v1/federation/incidents", params={"partner": "pin\x00ggu"}, headers=auth())
    assert query.status_code == 400 and query.json()["code"] == "nul_character"
    body = await client.post("/api/v1/incidents", json=body_with_title("a\u0000b"), headers=auth())
    assert body.status_code == 422 and body.json()["code"] == "validation_error"


def body_with_title(title: str) -> dict[str, Any]:
    return body(title=title)
