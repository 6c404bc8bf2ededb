"""Rescue teams: where they are, what they can do and whether they are free."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.geojson import ListQuery
from app.geo.queries import fetch_page, in_bbox
from app.teams.models import Team, TeamKind, TeamStatus
from app.upsert import UpsertResult, upsert_by_key


async def list_teams(
    *,
    session: AsyncSession,
    query: ListQuery,
    kind: TeamKind | None = None,
    status: TeamStatus | None = None,
    capability: str | None = None,
) -> tuple[list[Team], int]:
    stmt = select(Team).order_by(Team.id)
    if query.township:
        stmt = stmt.where(Team.township_code == query.township)
    if query.bbox:
        stmt = stmt.where(in_bbox(Team.base, query.bbox))
    if kind:
        stmt = stmt.where(Team.kind == kind)
    if status:
        stmt = stmt.where(Team.status == status)
    if capability:
        stmt = stmt.where(Team.capabilities.contains([capability]))
    return await fetch_page(session, stmt, limit=query.limit, offset=query.offset)


async def get_team(*, session: AsyncSession, team_id: int) -> Team | None:
    return await session.get(Team, team_id)


async def upsert_teams(*, session: AsyncSession, rows: list[dict[str, Any]]) -> UpsertResult:
    """Seed or import by code.

    rows: code, name, name_en, kind, capabilities, headcount, township_code, base, shareable, phone;
    status is set on insert only.
    """
    return await upsert_by_key(session, Team, rows, key="code", insert_only=("status",), returning="id")
