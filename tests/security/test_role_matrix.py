"""Every role against every endpoint: allowed, 401 or 403 — and every route of the app is in the table.

Bodies are empty on purpose: authorization is decided before the body is looked at, so a denied role
gets 401/403 whatever it sends, and an allowed one gets past it (to a 2xx, 404, 409 or 422).
Scope within a role (another township, another team) is tested per domain.
"""

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.main import create_app
from tests.conftest import make_settings

Auth = Callable[..., dict[str, str]]

ALL = {"command", "township", "viewer", "responder"}
WRITERS = {"command", "township"}
REPORTERS = {"command", "township", "responder"}
NOT_RESPONDER = {"command", "township", "viewer"}
COMMAND = {"command"}

# (method, path template) -> roles that get past authorization
MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/townships"): ALL,
    ("GET", "/api/v1/townships/{code}"): ALL,
    ("GET", "/api/v1/teams"): ALL,
    ("POST", "/api/v1/teams"): WRITERS,
    ("GET", "/api/v1/teams/{team_id}"): ALL,
    ("PATCH", "/api/v1/teams/{team_id}"): WRITERS,
    ("POST", "/api/v1/teams/positions"): REPORTERS,
    ("POST", "/api/v1/positions"): REPORTERS,
    ("POST", "/api/v1/teams/{team_id}/position"): REPORTERS,
    ("POST", "/api/v1/teams/{team_id}/status"): REPORTERS,
    ("GET", "/api/v1/teams/{team_id}/assignments"): ALL,
    ("GET", "/api/v1/teams/{team_id}/track"): ALL,
    ("GET", "/api/v1/shelters"): ALL,
    ("POST", "/api/v1/shelters"): WRITERS,
    ("GET", "/api/v1/shelters/{shelter_id}"): ALL,
    ("PATCH", "/api/v1/shelters/{shelter_id}"): WRITERS,
    ("POST", "/api/v1/shelters/{shelter_id}/occupancy"): WRITERS,
    ("GET", "/api/v1/depots"): ALL,
    ("POST", "/api/v1/depots"): WRITERS,
    ("GET", "/api/v1/depots/{depot_id}"): ALL,
    ("PATCH", "/api/v1/depots/{depot_id}"): WRITERS,
    ("GET", "/api/v1/depots/{depot_id}/ledger"): ALL,
    ("POST", "/api/v1/depots/{depot_id}/movements"): WRITERS,
    ("POST", "/api/v1/depots/{depot_id}/transfers"): WRITERS,
    ("GET", "/api/v1/helipads"): ALL,
    ("POST", "/api/v1/helipads"): WRITERS,
    ("GET", "/api/v1/helipads/{helipad_id}"): ALL,
    ("PATCH", "/api/v1/helipads/{helipad_id}"): WRITERS,
    ("GET", "/api/v1/incidents"): ALL,
    ("POST", "/api/v1/incidents"): WRITERS,
    ("GET", "/api/v1/incidents/{incident_id}"): ALL,
    ("PATCH", "/api/v1/incidents/{incident_id}"): WRITERS,
    ("POST", "/api/v1/incidents/{incident_id}/transitions"): WRITERS,
    ("GET", "/api/v1/incidents/{incident_id}/timeline"): ALL,
    ("GET", "/api/v1/incidents/{incident_id}/recommendation"): NOT_RESPONDER,
    ("GET", "/api/v1/incidents/{incident_id}/dispatches"): ALL,
    ("POST", "/api/v1/incidents/{incident_id}/dispatches"): WRITERS,
    ("POST", "/api/v1/incidents/{incident_id}/dispatches/{dispatch_id}/release"): WRITERS,
    ("POST", "/api/v1/incidents/{incident_id}/supplies"): WRITERS,
    ("GET", "/api/v1/nearest"): ALL,
    ("GET", "/api/v1/federation/partners"): ALL,
    ("GET", "/api/v1/federation/outbox"): ALL,
    ("POST", "/api/v1/federation/outbox"): COMMAND,
    ("GET", "/api/v1/federation/outbox/{outbox_id}"): ALL,
    ("GET", "/api/v1/federation/aid-requests"): ALL,
    ("POST", "/api/v1/federation/aid-requests"): COMMAND,
    ("GET", "/api/v1/federation/aid-requests/{aid_id}"): ALL,
    ("POST", "/api/v1/federation/aid-requests/{aid_id}/decision"): COMMAND,
    ("POST", "/api/v1/federation/aid-requests/{aid_id}/commit"): COMMAND,
    ("POST", "/api/v1/federation/aid-requests/{aid_id}/release"): COMMAND,
    ("POST", "/api/v1/federation/aid-requests/{aid_id}/cancel"): COMMAND,
    ("GET", "/api/v1/federation/incidents"): ALL,
    ("GET", "/api/v1/federation/incidents/{shared_id}"): ALL,
    ("GET", "/api/v1/federation/warnings"): ALL,
    ("GET", "/api/v1/federation/warnings/{warning_id}"): ALL,
}
# Open to anyone: probes, login, the published schemas. The partner endpoints authenticate by signature.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/token"),
    ("GET", "/federation/v1/schemas"),
    ("GET", "/federation/v1/schemas/{name}"),
}
PARTNER_ONLY = {("POST", "/federation/v1/messages"), ("GET", "/federation/v1/resources")}
ROLES = ["none", "command", "township", "viewer", "responder", "partner"]


def app_routes() -> set[tuple[str, str]]:
    spec = create_app(make_settings("postgresql://unused@localhost/none")).openapi()
    return {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}


def test_every_route_is_in_the_matrix() -> None:
    routes = app_routes()
    assert routes - set(MATRIX) - PUBLIC - PARTNER_ONLY == set(), "a route without an authorization rule"
    assert set(MATRIX) - routes == set(), "the matrix names a route the app does not have"


@pytest.fixture
async def ids(client: httpx.AsyncClient, auth: Auth, session: AsyncSession) -> dict[str, Any]:
    """Real ids in the township 120119001, with the responder's team dispatched to the incident."""
    one = {"township": "120119001"}

    async def first(sql: str) -> Any:
        return (await session.execute(text(sql), one)).scalar_one()

    team = await first("SELECT id FROM team WHERE township_code = :township ORDER BY id LIMIT 1")
    incident = (
        await client.post(
            "/api/v1/incidents",
            headers=auth(),
            json={
                "type": "building_fire",
                "location": {"type": "Point", "coordinates": [117.405, 40.045]},
                "title": "x",
            },
        )
    ).json()
    dispatch = (
        await client.post(f"/api/v1/incidents/{incident['id']}/dispatches", json={"team_ids": [team]}, headers=auth())
    ).json()["dispatches"][0]
    return {
        "code": "120119001",
        "team_id": team,
        "incident_id": incident["id"],
        "dispatch_id": dispatch["id"],
        "shelter_id": await first("SELECT id FROM shelter WHERE township_code = :township ORDER BY id LIMIT 1"),
        "depot_id": await first("SELECT id FROM depot WHERE township_code = :township ORDER BY id LIMIT 1"),
        "helipad_id": (await session.execute(text("SELECT min(id) FROM helipad"))).scalar_one(),
        "outbox_id": 1,
        "aid_id": 1,
        "shared_id": 1,
        "warning_id": 1,
        "name": "envelope",
    }


def headers_for(role: str, auth: Auth, ids: dict[str, Any]) -> dict[str, str]:
    if role == "none":
        return {}
    if role == "township":
        return auth("township", township="120119001")
    if role == "responder":
        return auth("responder", team=ids["team_id"])
    if role == "partner":
        return auth("partner", partner="pinggu")
    return auth(role)


@pytest.mark.parametrize("role", ROLES)
async def test_role_against_every_endpoint(
    client: httpx.AsyncClient, auth: Auth, ids: dict[str, Any], role: str
) -> None:
    wrong = []
    for (method, template), allowed in sorted(MATRIX.items()):
        path = template.format(**ids)
        params = {"kind": "team", "lon": 117.4, "lat": 40.0} if template == "/api/v1/nearest" else None
        response = await client.request(
            method, path, headers=headers_for(role, auth, ids), params=params, json={} if method != "GET" else None
        )
        got = response.status_code
        if role == "none":
            ok = got == 401
        elif role in allowed:
            ok = got not in (401, 403) and got < 500
        else:
            ok = got == 403
        if not ok or ("code" not in response.json() and got >= 400):
            wrong.append((method, template, got, response.text[:160]))
    assert not wrong, f"{role}: {wrong}"


async def test_district_tokens_cannot_pose_as_a_partner(client: httpx.AsyncClient, auth: Auth) -> None:
    for role in ("command", "viewer"):
        messages = await client.post("/federation/v1/messages", json={}, headers=auth(role))
        resources = await client.get("/federation/v1/resources", headers=auth(role))
        assert messages.status_code in (401, 403) and resources.status_code in (401, 403)
