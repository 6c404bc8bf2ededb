"""Envelopes: invalid ones get an Error naming the field; valid ones are stored with their effects as events,
exactly once (a replay gets the first answer, byte for byte)."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.models import Event
from app.federation import jsonschemas
from tests.federation.conftest import snapshot
from tests.federation.helpers import dumps, envelope, incident, signed

PATH = "/federation/v1/messages"


async def post(client: httpx.AsyncClient, message: Any) -> httpx.Response:
    body = message if isinstance(message, bytes) else dumps(message)
    return await client.post(PATH, content=body, headers=signed("POST", PATH, body))


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


@pytest.mark.parametrize(
    ("make", "pointer", "status"),
    [
        (
            lambda: without(envelope([{"contentType": "incident", "contentObject": incident()}]), "dateTimeSent"),
            "/dateTimeSent",
            422,
        ),
        (
            lambda: {
                **envelope([{"contentType": "incident", "contentObject": incident()}]),
                "distributionKind": "Gossip",
            },
            "/distributionKind",
            422,
        ),
        (
            lambda: {**envelope([{"contentType": "incident", "contentObject": incident()}]), "dateTimeExpires": "soon"},
            "/dateTimeExpires",
            422,
        ),
        (lambda: envelope([]), "/content", 422),
        (lambda: envelope([{"contentType": "rumour", "contentObject": {}}]), "/content/0/contentType", 422),
        (
            lambda: envelope([{"contentType": "incident", "contentObject": incident(severity="V")}]),
            "/content/0/contentObject/severity",
            422,
        ),
        (
            lambda: envelope([{"contentType": "incident", "contentObject": without(incident(), "location")}]),
            "/content/0/contentObject/location",
            422,
        ),
        (
            lambda: envelope(
                [
                    {
                        "contentType": "incident",
                        "contentObject": incident(location={"type": "Point", "coordinates": [217.0, 40.0]}),
                    }
                ]
            ),
            "/content/0/contentObject/location/coordinates/0",
            422,
        ),
        (
            lambda: envelope([{"contentType": "incident", "contentObject": incident(typeCode="21C01")}]),
            "/content/0/contentObject/typeCode",
            422,
        ),
        (
            lambda: envelope([{"contentType": "incident", "contentObject": {**incident(), "colour": "red"}}]),
            "/content/0/contentObject/colour",
            422,
        ),
        (
            lambda: envelope(
                [
                    {
                        "contentType": "RequestResource",
                        "contentObject": {"requestID": "r1", "resources": [{"quantity": 2}]},
                    }
                ]
            ),
            "/content/0/contentObject/resources/0/capability",
            422,
        ),
        (lambda: envelope([{"contentType": "cap-alert+xml", "contentObject": {}}]), "/content/0/contentXML", 422),
        (lambda: b"{not json", "", 400),
    ],
)
async def test_invalid_message_gets_an_error_naming_the_field(
    fed_client: httpx.AsyncClient, session: AsyncSession, make: Callable[[], Any], pointer: str, status: int
) -> None:
    before = await snapshot(session)
    r = await post(fed_client, make())
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["distributionKind"] == "Error"
    problem = answer["content"][0]["contentObject"]
    assert problem["pointer"] == pointer, problem
    assert problem["code"] == r.headers["Fed-Error-Code"]
    assert jsonschemas.validate("envelope", answer) is None
    assert jsonschemas.validate("error", problem) is None
    assert await snapshot(session) == before


async def test_shared_incident_reaches_the_command_center(
    fed_client: httpx.AsyncClient, session: AsyncSession, auth: Callable[..., dict[str, str]]
) -> None:
    message = envelope([{"contentType": "incident", "contentObject": incident()}])
    r = await post(fed_client, message)
    assert r.status_code == 200, r.text
    ack = r.json()
    assert ack["distributionKind"] == "Ack" and ack["distributionReference"] == [message["distributionID"]]
    assert ack["senderID"] == "jizhou" and ack["recipientID"] == ["pinggu"]
    assert ack["content"][0]["contentObject"]["results"] == [
        {"contentType": "incident", "incidentID": "PG-2025-0001", "result": "incident_shared"}
    ]
    event = await session.scalar(select(Event).where(Event.topic == "federation.incident_shared"))
    assert event is not None
    assert event.township_code is None  # district-wide: the command center and every township see it
    assert event.actor == "partner:pinggu"
    assert event.data["severity"] == "III" and event.data["location"]["coordinates"] == [117.33, 40.18]
    listed = (await fed_client.get("/api/v1/federation/incidents", headers=auth("viewer"))).json()
    assert [i["incident_id"] for i in listed["items"]] == ["PG-2025-0001"]

    # An update replaces it; an older revision arriving late does not.
    r = await post(
        fed_client,
        envelope(
            [{"contentType": "incident", "contentObject": incident(revision=3, status="controlled", severity="IV")}],
            kind="Update",
        ),
    )
    assert r.json()["content"][0]["contentObject"]["results"][0]["result"] == "incident_updated"
    r = await post(
        fed_client, envelope([{"contentType": "incident", "contentObject": incident(revision=2)}], kind="Update")
    )
    assert r.json()["content"][0]["contentObject"]["results"][0]["result"] == "stale_revision_ignored"
    item = (await fed_client.get("/api/v1/federation/incidents", headers=auth("viewer"))).json()["items"][0]
    assert (item["status"], item["severity"], item["revision"]) == ("controlled", "IV", 3)
    r = await post(
        fed_client, envelope([{"contentType": "incident", "contentObject": incident(revision=4)}], kind="Cancel")
    )
    assert r.json()["content"][0]["contentObject"]["results"][0]["result"] == "incident_cancelled"
    listed = (await fed_client.get("/api/v1/federation/incidents", headers=auth("viewer"))).json()
    assert listed["items"] == []


async def test_replay_is_answered_identically_and_changes_nothing(
    fed_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    message = envelope([{"contentType": "incident", "contentObject": incident()}])
    body = dumps(message)
    first = await fed_client.post(PATH, content=body, headers=signed("POST", PATH, body))
    assert first.status_code == 200
    after_first = await snapshot(session)
    # A retransmission: same bytes, a fresh signature (new timestamp).
    again = await fed_client.post(PATH, content=body, headers=signed("POST", PATH, body))
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers.get("Fed-Replay") == "true"
    # The same envelope re-serialized with its keys in another order is the same message too.
    reordered = dumps(dict(reversed(list(message.items()))))
    third = await fed_client.post(PATH, content=reordered, headers=signed("POST", PATH, reordered))
    assert third.content == first.content
    assert await snapshot(session) == after_first


async def test_reused_distribution_id_with_other_content_is_refused(
    fed_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    message = envelope([{"contentType": "incident", "contentObject": incident()}])
    assert (await post(fed_client, message)).status_code == 200
    before = await snapshot(session)
    other = {**message, "content": [{"contentType": "incident", "contentObject": incident("PG-OTHER")}]}
    r = await post(fed_client, other)
    assert r.status_code == 409
    assert r.json()["content"][0]["contentObject"] == {
        "code": "distribution_id_reused",
        "message": f"distributionID {message['distributionID']} was already used for a different message",
        "pointer": "/distributionID",
    }
    assert await snapshot(session) == before


async def test_test_messages_are_acknowledged_without_effects(
    fed_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    before = await snapshot(session)
    r = await post(fed_client, envelope([{"contentType": "incident", "contentObject": incident()}], status="Test"))
    assert r.status_code == 200
    assert r.json()["content"][0]["contentObject"]["results"] == [
        {"contentType": "incident", "result": "no_effect_test"}
    ]
    after = await snapshot(session)
    assert after["federation_inbound"] == before["federation_inbound"] + 1
    assert after["federation_incident"] == before["federation_incident"]


async def test_one_bad_item_refuses_the_whole_message(fed_client: httpx.AsyncClient, session: AsyncSession) -> None:
    before = await snapshot(session)
    message = envelope(
        [
            {"contentType": "incident", "contentObject": incident()},
            {"contentType": "ReleaseResource", "contentObject": {"requestID": "never-sent"}},
        ]
    )
    r = await post(fed_client, message)
    assert r.status_code == 404
    problem = r.json()["content"][0]["contentObject"]
    assert (problem["code"], problem["pointer"]) == ("aid_request_not_found", "/content/1")
    assert await snapshot(session) == before


async def test_schemas_are_served(fed_client: httpx.AsyncClient) -> None:
    listed = (await fed_client.get("/federation/v1/schemas")).json()["schemas"]
    names = {s["name"] for s in listed}
    assert {
        "envelope",
        "incident",
        "RequestResource",
        "ResponseToRequestResource",
        "CommitResource",
        "ReleaseResource",
        "CancelRequestResource",
        "cap-alert",
        "resource-availability",
    } <= names
    r = await fed_client.get("/federation/v1/schemas/envelope")
    assert r.headers["content-type"].startswith("application/schema+json")
    assert r.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (await fed_client.get("/federation/v1/schemas/nope")).json()["code"] == "schema_not_found"
