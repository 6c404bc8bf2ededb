"""Bad input to the resource writes: always a 4xx with {code, message, details}, never a 500, never a
partial write."""

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.resources.factories import BODIES, Auth, assert_error, create

POINT_FIELD = {"teams": "base", "shelters": "location", "depots": "location", "helipads": "location"}
KINDS = list(POINT_FIELD)


async def _event_count(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM event")) or 0)


def _with_point(kind: str, coordinates: str) -> str:
    """A create body as raw JSON text whose point has the given coordinates text (for NaN literals)."""
    body = BODIES[kind]()
    body[POINT_FIELD[kind]] = "__POINT__"
    return json.dumps(body).replace('"__POINT__"', '{"type": "Point", "coordinates": ' + coordinates + "}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "coordinates",
    [
        "[117.4, 91]",
        "[117.4, -90.5]",
        "[181, 40]",
        '["abc", 40]',
        "[NaN, 40]",
        "[117.4, NaN]",
        "[Infinity, 40]",
        "[117.4, -Infinity]",
        "[1e400, 40]",
        "[117.4]",
        "[]",
        "[[117.4, 40.04]]",
        "null",
        "[true, false]",
        '["117.4", "40.04"]',
    ],
)
async def test_bad_coordinates_are_refused(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession, kind: str, coordinates: str
) -> None:
    before = await _event_count(session)
    response = await client.post(
        f"/api/v1/{kind}",
        content=_with_point(kind, coordinates),
        headers={**auth("command"), "Content-Type": "application/json"},
    )
    assert_error(response, 422, "validation_error")
    assert await _event_count(session) == before


# Field overrides that must be refused for every kind, and per kind.
COMMON_BAD: list[dict[str, Any]] = [
    {"name": ""},
    {"name": "   "},
    {"name": None},
    {"name": "x" * 10_000},
    {"name": "a\u0000b"},
    {"name": 42},
    {"code": ""},
    {"code": "has spaces"},
    {"code": "x" * 41},
    {"code": None},
    {"coord_sys": "utm"},
    {"coord_sys": "WGS84 "},
    {"township": "12345"},
    {"township": 120119001},
    {"unknown_field": 1},
    {"id": 5},
    {"version": 7},
]
PER_KIND_BAD: dict[str, list[dict[str, Any]]] = {
    "teams": [
        {"kind": "ninjas"},
        {"capabilities": []},
        {"capabilities": ["relief", "relief"]},
        {"capabilities": "relief"},
        {"capabilities": ["flying"]},
        {"headcount": -1},
        {"headcount": 2**63},
        {"headcount": 10**30},
        {"headcount": "many"},
        {"headcount": 1.5},
        {"base": {"type": "LineString", "coordinates": [[117.4, 40.0], [117.5, 40.1]]}},
        {"base": {"type": "Point", "coordinates": [117.4, 40.04], "crs": "EPSG:4326"}},
        {"phone": "call me maybe"},
        {"shareable": "perhaps"},
        {"status": "available"},
        {"township_code": "120119001"},
    ],
    "shelters": [
        {"level": "deluxe"},
        {"capacity": -1},
        {"capacity": 2**40},
        {"capacity": None},
        {"area_m2": -10},
        {"area_m2": 2**63},
        {"occupancy": 10},
        {"status": "open"},
    ],
    "depots": [{"level": "national"}, {"stock": [{"item": "101", "quantity": 5}]}],
    "helipads": [{"kind": "spaceport"}, {"status": "maybe"}],
}
CASES = [pytest.param(kind, bad, id=f"{kind}-{json.dumps(bad)[:40]}") for kind in KINDS for bad in COMMON_BAD] + [
    pytest.param(kind, bad, id=f"{kind}-{json.dumps(bad)[:40]}") for kind, bads in PER_KIND_BAD.items() for bad in bads
]


@pytest.mark.parametrize(("kind", "bad"), CASES)
async def test_bad_create_bodies_are_422_and_write_nothing(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession, kind: str, bad: dict[str, Any]
) -> None:
    before = await _event_count(session)
    response = await client.post(f"/api/v1/{kind}", json=BODIES[kind](**bad), headers=auth("command"))
    assert_error(response, 422)
    assert await _event_count(session) == before


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        ("{not json", 400, "invalid_json"),
        ("[]", 422, "validation_error"),
        ('"a string"', 422, "validation_error"),
        ("null", 422, "validation_error"),
        ("", 422, "validation_error"),
        ("[" * 100 + "]" * 100, 400, "json_too_deep"),
    ],
)
async def test_bodies_that_are_not_objects_are_4xx(
    client: httpx.AsyncClient, auth: Auth, kind: str, content: str, status: int, code: str
) -> None:
    response = await client.post(
        f"/api/v1/{kind}", content=content, headers={**auth("command"), "Content-Type": "application/json"}
    )
    assert_error(response, status, code)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_body_over_the_size_limit_is_413(client: httpx.AsyncClient, auth: Auth, kind: str) -> None:
    body = BODIES[kind](name="x" * 2_000_000)
    assert_error(await client.post(f"/api/v1/{kind}", json=body, headers=auth("command")), 413, "payload_too_large")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, {"name": "x", "version": 0}, 422, "validation_error"),
        ({}, {"name": "x", "version": 2**40}, 422, "validation_error"),
        ({}, {"name": "x", "version": "one"}, 422, "validation_error"),
        ({"If-Match": "99999999999"}, {"name": "x"}, 400, "invalid_if_match"),
        ({"If-Match": "abc"}, {"name": "x"}, 400, "invalid_if_match"),
        ({"If-Match": '"1", "2"'}, {"name": "x"}, 400, "invalid_if_match"),
        ({"If-Match": '"2"'}, {"name": "x"}, 409, "version_conflict"),
        ({}, {"name": "x"}, 428, "version_required"),
        ({"If-Match": '"1"'}, {"name": "", "version": 1}, 422, "validation_error"),
        ({"If-Match": '"1"'}, {"code": "NEW-CODE"}, 422, "validation_error"),
    ],
)
async def test_bad_edits_are_4xx_and_write_nothing(
    client: httpx.AsyncClient,
    auth: Auth,
    session: AsyncSession,
    kind: str,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    resource = await create(client, auth, kind)
    before = await _event_count(session)
    response = await client.patch(f"/api/v1/{kind}/{resource['id']}", json=body, headers={**auth("command"), **headers})
    assert_error(response, status, code)
    assert await _event_count(session) == before


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("raw_id", "status"), [("0", 422), ("-1", 422), ("abc", 422), ("9" * 30, 422), ("12345678", 404)]
)
async def test_bad_ids_in_the_path_are_4xx(
    client: httpx.AsyncClient, auth: Auth, kind: str, raw_id: str, status: int
) -> None:
    response = await client.patch(f"/api/v1/{kind}/{raw_id}", json={"name": "x", "version": 1}, headers=auth("command"))
    assert_error(response, status)


# --------------------------------------------------------------------------------- never a 500 (fuzzing)

_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("kind", KINDS)
async def test_random_field_values_never_cause_a_500(
    client: httpx.AsyncClient, auth: Auth, session: AsyncSession, kind: str
) -> None:
    template = BODIES[kind]()
    fields = sorted(template)
    answers: list[int] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def probe(data: st.DataObject) -> None:
        body = dict(template)
        for field in data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True)):
            body[field] = data.draw(_json)
        body["code"] = BODIES[kind]()["code"]  # a fresh code, so a body that passes is a real create
        bodies.append(body)

    bodies: list[dict[str, Any]] = []
    probe()
    for body in bodies:
        # json.dumps writes NaN/Infinity literals, which Python's JSON parser would accept.
        response = await client.post(
            f"/api/v1/{kind}", content=json.dumps(body), headers={**auth("command"), "Content-Type": "application/json"}
        )
        answers.append(response.status_code)
        assert response.status_code < 500, (body, response.text)
        assert set(response.json()) >= ({"code", "message", "details"} if response.status_code >= 400 else {"id"})
    assert any(400 <= s < 500 for s in answers)
