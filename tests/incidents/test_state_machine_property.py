"""Property: whatever sequence of moves clients ask for, the incident follows the lifecycle exactly."""

from collections.abc import Callable

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.incidents.models import IncidentStatus
from app.incidents.service import TRANSITIONS

Auth = Callable[..., dict[str, str]]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.sampled_from(list(IncidentStatus)), min_size=1, max_size=8))
async def test_any_sequence_of_moves_follows_the_lifecycle(
    client: httpx.AsyncClient, auth: Auth, moves: list[IncidentStatus]
) -> None:
    created = await client.post(
        "/api/v1/incidents",
        headers=auth(),
        json={"type": "flood", "location": {"type": "Point", "coordinates": [117.40, 39.90]}, "title": "洪水"},
    )
    assert created.status_code == 201
    incident = created.json()
    status, version = IncidentStatus.REPORTED, 1
    for move in moves:
        response = await client.post(
            f"/api/v1/incidents/{incident['id']}/transitions", json={"to": move.value}, headers=auth()
        )
        if move in TRANSITIONS[status]:
            assert response.status_code == 200, response.text
            status, version = move, version + 1
        else:
            assert response.status_code == 409
            assert response.json()["details"]["allowed"] == [s.value for s in TRANSITIONS[status]]
    final = (await client.get(f"/api/v1/incidents/{incident['id']}", headers=auth())).json()
    assert final["status"] == status.value and final["version"] == version
    assert (final["closed_at"] is not None) == (status is IncidentStatus.CLOSED)
    timeline = (await client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=auth())).json()
    assert len(timeline["entries"]) == version  # one event per accepted change, none for refused ones
