"""Small factories and probes shared by the resource write tests."""

import itertools
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Auth = Callable[..., dict[str, str]]

# Township seats (inside their own polygons) and a point well outside the district (Beijing).
WENCHANG = "120119001"
WENCHANG_POINT = [117.4, 40.04]
WENCHANG_POINT_2 = [117.41, 40.045]
XIAYING = "120119104"
XIAYING_POINT = [117.46, 40.2]
BEIJING_POINT = [116.397, 39.909]

_serial = itertools.count(1)


def unique_code(prefix: str) -> str:
    return f"{prefix}-TEST-{next(_serial):04d}"


def point(lon_lat: list[float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": list(lon_lat)}


def team_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": unique_code("T"),
        "name": "测试救援队",
        "name_en": "Test rescue team",
        "kind": "social",
        "capabilities": ["search_rescue", "relief"],
        "headcount": 12,
        "base": point(WENCHANG_POINT),
        "shareable": False,
        "phone": "+86 22 2914 0000",
    }
    body.update(overrides)
    return body


def shelter_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": unique_code("SH"),
        "name": "测试避难场所",
        "level": "emergency",
        "site_type": "school",
        "capacity": 100,
        "area_m2": 2000,
        "address": "文昌街道测试路1号",
        "location": point(WENCHANG_POINT),
    }
    body.update(overrides)
    return body


def depot_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": unique_code("DEP"),
        "name": "测试物资库",
        "name_en": "Test depot",
        "level": "township",
        "location": point(WENCHANG_POINT),
    }
    body.update(overrides)
    return body


def helipad_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": unique_code("HP"),
        "name": "测试临时起降点",
        "name_en": "Test pad",
        "kind": "temporary",
        "location": point(WENCHANG_POINT),
    }
    body.update(overrides)
    return body


BODIES: dict[str, Callable[..., dict[str, Any]]] = {
    "teams": team_body,
    "shelters": shelter_body,
    "depots": depot_body,
    "helipads": helipad_body,
}


async def create(client: httpx.AsyncClient, auth: Auth, kind: str, **overrides: Any) -> dict[str, Any]:
    """Create a resource as the command center; the created feature."""
    response = await client.post(f"/api/v1/{kind}", json=BODIES[kind](**overrides), headers=auth("command"))
    assert response.status_code == 201, response.text
    feature: dict[str, Any] = response.json()
    return feature


async def events(
    session: AsyncSession, subject_type: str, subject_id: int | str, topic: str | None = None
) -> list[Any]:
    """The event rows of one subject, oldest first."""
    sql = "SELECT * FROM event WHERE subject_type = :st AND subject_id = :sid"
    params: dict[str, Any] = {"st": subject_type, "sid": str(subject_id)}
    if topic is not None:
        sql += " AND topic = :topic"
        params["topic"] = topic
    return list((await session.execute(text(sql + " ORDER BY seq"), params)).mappings())


async def count_events(session: AsyncSession, topic: str) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM event WHERE topic = :t"), {"t": topic}) or 0)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body
