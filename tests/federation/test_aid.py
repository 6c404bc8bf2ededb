"""Mutual aid on one side, in a rolled-back transaction: every state move, its event and its message."""

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.models import Event
from tests.federation.conftest import snapshot
from tests.federation.helpers import dumps, envelope, signed

PATH = "/federation/v1/messages"


async def post(client: httpx.AsyncClient, message: dict[str, Any]) -> httpx.Response:
    body = dumps(message)
    return await client.post(PATH, content=body, headers=signed("POST", PATH, body))


async def team_id(client: httpx.AsyncClient, auth: dict[str, str], kind: str) -> int:
    return int((await client.get(f"/api/v1/teams?kind={kind}", headers=auth)).json()["features"][0]["id"])


async def test_we_ask_a_partner(
    fed_client: httpx.AsyncClient, session: AsyncSession, auth: Callable[..., dict[str, str]]
) -> None:
    r = await fed_client.post(
        "/api/v1/federation/aid-requests",
        headers=auth(),
        json={
            "partner": "pinggu",
            "resources": [{"teamKind": "medical", "quantity": 1}],
            "location": {"type": "Point", "coordinates": [117.40, 40.05]},
        },
    )
    assert r.status_code == 201, r.text
    asked = r.json()
    assert (asked["direction"], asked["state"]) == ("outbound", "requested")
    queued = (await fed_client.get("/api/v1/federation/outbox?partner=pinggu", headers=auth())).json()["items"]
    assert [m["content_types"] for m in queued] == [["RequestResource"]]
    # The partner answers, commits, then takes its team back.
    offered = [{"resourceID": "pinggu:team:7", "name": "Pinggu medical team", "kind": "medical", "headcount": 12}]
    for kind, content_type, obj, state in (
        ("Response", "ResponseToRequestResource", {"responseType": "Accept", "resources": offered}, "accepted"),
        ("Update", "CommitResource", {"resources": offered}, "committed"),
        ("Update", "ReleaseResource", {"reason": "needed at home"}, "released"),
    ):
        message = envelope(
            [{"contentType": content_type, "contentObject": {"requestID": asked["request_id"], **obj}}], kind=kind
        )
        r = await post(fed_client, message)
        assert r.status_code == 200, r.text
        row = (await fed_client.get(f"/api/v1/federation/aid-requests/{asked['id']}", headers=auth())).json()
        assert row["state"] == state
        assert row["offered"] == offered
    # A commit for a request in the wrong state is refused, naming the item, and changes nothing.
    before = await snapshot(session)
    r = await post(
        fed_client,
        envelope(
            [
                {
                    "contentType": "CommitResource",
                    "contentObject": {"requestID": asked["request_id"], "resources": offered},
                }
            ]
        ),
    )
    assert r.status_code == 409 and r.json()["content"][0]["contentObject"]["code"] == "illegal_aid_transition"
    assert await snapshot(session) == before


async def test_a_partner_asks_us(
    fed_client: httpx.AsyncClient, session: AsyncSession, auth: Callable[..., dict[str, str]]
) -> None:
    request = {"requestID": "pinggu:aid:1", "resources": [{"capability": "forest_fire", "quantity": 1}]}
    r = await post(fed_client, envelope([{"contentType": "RequestResource", "contentObject": request}], kind="Request"))
    assert r.status_code == 200, r.text
    waiting = (await fed_client.get("/api/v1/federation/aid-requests?state=requested", headers=auth("viewer"))).json()
    aid = waiting["items"][0]
    assert (aid["direction"], aid["partner"], aid["request_id"]) == ("inbound", "pinggu", "pinggu:aid:1")
    event = await session.scalar(select(Event).where(Event.topic == "federation.aid_requested"))
    assert event is not None and event.township_code is None and event.subject_id == str(aid["id"])

    forest = await team_id(fed_client, auth(), "forest_fire")
    base = f"/api/v1/federation/aid-requests/{aid['id']}"
    # Only the command center decides.
    r = await fed_client.post(f"{base}/decision", headers=auth("viewer"), json={"decision": "decline"})
    assert r.status_code == 403
    r = await fed_client.post(f"{base}/decision", headers=auth(), json={"decision": "accept"})
    assert (r.status_code, r.json()["code"]) == (422, "team_ids_required")
    r = await fed_client.post(f"{base}/decision", headers=auth(), json={"decision": "accept", "team_ids": [999999]})
    assert (r.status_code, r.json()["code"]) == (404, "team_not_found")
    r = await fed_client.post(f"{base}/commit", headers=auth())
    assert (r.status_code, r.json()["code"]) == (409, "illegal_aid_transition")
    r = await fed_client.post(f"{base}/decision", headers=auth(), json={"decision": "accept", "team_ids": [forest]})
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    r = await fed_client.post(f"{base}/commit", headers=auth())
    assert r.status_code == 200 and r.json()["state"] == "committed"
    team = (await fed_client.get(f"/api/v1/teams/{forest}", headers=auth())).json()
    assert team["properties"]["status"] == "dispatched"
    # Pinggu cancels after the commit: our team comes home.
    cancel = {"requestID": "pinggu:aid:1", "reason": "rain"}
    r = await post(
        fed_client, envelope([{"contentType": "CancelRequestResource", "contentObject": cancel}], kind="Cancel")
    )
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["contentObject"]["results"][0]["freed_team_ids"] == [forest]
    team = (await fed_client.get(f"/api/v1/teams/{forest}", headers=auth())).json()
    assert team["properties"]["status"] == "available"
    sent = (await fed_client.get("/api/v1/federation/outbox?partner=pinggu", headers=auth())).json()["items"]
    assert [m["content_types"][0] for m in reversed(sent)] == ["ResponseToRequestResource", "CommitResource"]


async def test_commit_fails_whole_when_a_team_was_taken(
    fed_client: httpx.AsyncClient, session: AsyncSession, auth: Callable[..., dict[str, str]]
) -> None:
    from app.teams import service as team_service

    request = {"requestID": "pinggu:aid:2", "resources": [{"capability": "forest_fire", "quantity": 1}]}
    await post(fed_client, envelope([{"contentType": "RequestResource", "contentObject": request}], kind="Request"))
    aid = (await fed_client.get("/api/v1/federation/aid-requests", headers=auth())).json()["items"][0]
    forest = await team_id(fed_client, auth(), "forest_fire")
    base = f"/api/v1/federation/aid-requests/{aid['id']}"
    assert (
        await fed_client.post(f"{base}/decision", headers=auth(), json={"decision": "accept", "team_ids": [forest]})
    ).status_code == 200
    # A local incident takes the team before the commit.
    await team_service.book_teams(session=session, team_ids=[forest], actor="test")
    r = await fed_client.post(f"{base}/commit", headers=auth())
    assert (r.status_code, r.json()["code"]) == (409, "team_not_available")
    assert (await fed_client.get(base, headers=auth())).json()["state"] == "accepted"


async def test_a_forest_fire_partner_cannot_get_a_medical_team(
    fed_client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    from tests.federation.helpers import YUTIAN_KEY

    request = {"requestID": "yutian:aid:1", "resources": [{"teamKind": "medical", "quantity": 1}]}
    body = dumps(
        envelope([{"contentType": "RequestResource", "contentObject": request}], sender="yutian", kind="Request")
    )
    r = await fed_client.post(PATH, content=body, headers=signed("POST", PATH, body, key=YUTIAN_KEY))
    assert r.status_code == 200, r.text
    aid = (await fed_client.get("/api/v1/federation/aid-requests?partner=yutian", headers=auth())).json()["items"][0]
    medical = await team_id(fed_client, auth(), "medical")
    r = await fed_client.post(
        f"/api/v1/federation/aid-requests/{aid['id']}/decision",
        headers=auth(),
        json={"decision": "accept", "team_ids": [medical]},
    )
    assert (r.status_code, r.json()["code"]) == (409, "team_not_shared")
