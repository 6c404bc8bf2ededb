"""CAP 1.2 warnings in XML and JSON, and shared resource availability under each partner agreement."""

import copy
from collections.abc import Callable

import defusedxml.ElementTree as SafeET
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.federation import cap, jsonschemas
from tests.federation.conftest import snapshot
from tests.federation.helpers import CAP_ALERT, YUTIAN_KEY, dumps, envelope, signed

PATH = "/federation/v1/messages"


async def post(client: httpx.AsyncClient, message: dict[str, object]) -> httpx.Response:
    body = dumps(message)
    return await client.post(PATH, content=body, headers=signed("POST", PATH, body))


def test_cap_json_xml_round_trip() -> None:
    xml = cap.alert_to_xml(CAP_ALERT)
    root = SafeET.fromstring(xml)
    assert root.tag == "{urn:oasis:names:tc:emergency:cap:1.2}alert"
    assert root.find("{urn:oasis:names:tc:emergency:cap:1.2}identifier").text == "PG-CAP-2025-0042"  # type: ignore[union-attr]
    assert cap.alert_from_xml(xml) == CAP_ALERT
    assert cap.alert_from_xml(cap.alert_to_xml(cap.alert_from_xml(xml))) == CAP_ALERT
    assert jsonschemas.validate("cap-alert", CAP_ALERT) is None


@pytest.mark.parametrize(
    ("xml", "needle"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx">]>'
            '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;</alert>',
            "DTDForbidden",
        ),
        ('<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"><identifier>a</identifier></alert>', "namespace"),
        ("<alert", "well-formed"),
    ],
)
def test_hostile_or_wrong_xml_is_refused(xml: str, needle: str) -> None:
    with pytest.raises(cap.CapError, match=needle):
        cap.alert_from_xml(xml)


async def test_cap_xml_in_and_out(
    fed_client: httpx.AsyncClient, session: AsyncSession, auth: Callable[..., dict[str, str]]
) -> None:
    xml = cap.alert_to_xml(CAP_ALERT)
    r = await post(fed_client, envelope([{"contentType": "cap-alert+xml", "contentXML": xml}]))
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["contentObject"]["results"][0]["result"] == "warning_received"
    listed = (await fed_client.get("/api/v1/federation/warnings", headers=auth("viewer"))).json()
    warning = listed["items"][0]
    assert warning["identifier"] == "PG-CAP-2025-0042" and warning["alert"] == CAP_ALERT
    assert warning["area"]["type"] == "MultiPolygon"
    out = await fed_client.get(f"/api/v1/federation/warnings/{warning['id']}?format=xml", headers=auth("viewer"))
    assert out.headers["content-type"].startswith("application/cap+xml")
    assert cap.alert_from_xml(out.content) == CAP_ALERT
    # The same alert again (another distributionID) is acknowledged and changes nothing.
    before = await snapshot(session)
    r = await post(fed_client, envelope([{"contentType": "cap-alert", "contentObject": CAP_ALERT}]))
    assert r.json()["content"][0]["contentObject"]["results"][0]["result"] == "duplicate_identifier"
    assert (await snapshot(session))["federation_warning"] == before["federation_warning"]


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda a: a["info"][0].pop("urgency"), "/content/0/contentObject/info/0/urgency"),
        (lambda a: a.update(sent="2025-04-01 10:00"), "/content/0/contentObject/sent"),
        (
            lambda a: a["info"][0]["area"][0].update(
                polygon=["40.1,117.2 40.2,117.4 40.1,117.4 40.2,117.2 40.1,117.2"]
            ),
            "/content/0/contentObject/info/0/area/0/polygon/0",
        ),
        (
            lambda a: a["info"][0]["area"][0].update(polygon=["40.1,117.2 40.2,117.4 40.1,117.4 40.3,117.2"]),
            "/content/0/contentObject/info/0/area/0/polygon/0",
        ),
    ],
)
async def test_invalid_warning_names_the_field(
    fed_client: httpx.AsyncClient, session: AsyncSession, mutate: Callable[[dict[str, object]], object], pointer: str
) -> None:
    alert = copy.deepcopy(CAP_ALERT)
    mutate(alert)
    before = await snapshot(session)
    r = await post(fed_client, envelope([{"contentType": "cap-alert", "contentObject": alert}]))
    assert r.status_code == 422, r.text
    assert r.json()["content"][0]["contentObject"]["pointer"] == pointer
    assert await snapshot(session) == before


async def test_cap_xml_problem_points_into_the_xml_content(fed_client: httpx.AsyncClient) -> None:
    alert = copy.deepcopy(CAP_ALERT)
    alert["info"][0]["severity"] = "Apocalyptic"
    r = await post(fed_client, envelope([{"contentType": "cap-alert+xml", "contentXML": cap.alert_to_xml(alert)}]))
    assert r.status_code == 422
    assert r.json()["content"][0]["contentObject"]["pointer"] == "/content/0/contentXML/info/0/severity"


async def resources(client: httpx.AsyncClient, key: tuple[str, str] | None = None) -> dict[str, object]:
    path = "/federation/v1/resources"
    r = await client.get(path, headers=signed("GET", path, key=key) if key else signed("GET", path))
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    assert jsonschemas.validate("resource-availability", body) is None
    return body


async def test_resources_follow_the_agreement(
    fed_client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    every = (await fed_client.get("/api/v1/teams?limit=1000", headers=auth("viewer"))).json()["features"]
    shareable = {f"jizhou:team:{f['id']}" for f in every if f["properties"]["shareable"]}
    private = {f"jizhou:team:{f['id']}" for f in every if not f["properties"]["shareable"]}

    linkage = await resources(fed_client)  # Pinggu: emergency linkage + forest-fire defence
    assert linkage["agreement"] == ["emergency_linkage", "forest_fire_defence"]
    teams = {t["resourceID"] for t in linkage["teams"]["items"]}  # type: ignore[index]
    assert teams == shareable and not teams & private
    assert linkage["teams"]["counts"]["total"] == len(shareable)  # type: ignore[index]
    items = {s["item"] for s in linkage["stockTotals"]}  # type: ignore[attr-defined]
    assert {"101", "201", "301"} <= items
    assert len(linkage["helipads"]) == 3  # type: ignore[arg-type]

    forest = await resources(fed_client, YUTIAN_KEY)  # Yutian: forest-fire defence only
    assert forest["agreement"] == ["forest_fire_defence"]
    for team in forest["teams"]["items"]:  # type: ignore[index]
        assert team["resourceID"] in shareable
        assert "forest_fire" in team["capabilities"] or team["kind"] in ("forest_fire", "aviation")
    kinds = {t["kind"] for t in forest["teams"]["items"]}  # type: ignore[index]
    assert "forest_fire" in kinds and not kinds & {"medical", "flood", "hazmat"}
    assert {s["item"] for s in forest["stockTotals"]} <= {"201", "202", "203", "204", "207", "210", "211"}  # type: ignore[attr-defined]
    assert "201" in {s["item"] for s in forest["stockTotals"]}  # type: ignore[attr-defined]
    for depot in forest["depots"]:  # type: ignore[attr-defined]
        assert all(line["item"].startswith("2") for line in depot["stock"])
    assert forest["helipads"]
