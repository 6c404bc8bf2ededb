"""Rescue teams: where they are, what they can do and whether they are free."""

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import AppError
from app.events import service as event_service
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


class TeamNotAvailable(AppError):
    status_code = 409
    code = "team_not_available"


class TeamNotFound(AppError):
    status_code = 404
    code = "team_not_found"


def team_event_data(team: Team, **extra: Any) -> dict[str, Any]:
    """What a team event carries: enough for a screen to update without another request."""
    return {
        "team_id": team.id,
        "code": team.code,
        "name": team.name,
        "kind": team.kind.value,
        "status": team.status.value,
        "version": team.version,
        **extra,
    }


async def book_teams(
    *,
    session: AsyncSession,
    team_ids: list[int],
    actor: str,
    to_status: TeamStatus = TeamStatus.DISPATCHED,
    reason: dict[str, Any] | None = None,
) -> list[Team]:
    """Take every named team from available to `to_status`, or none of them.

    One conditional UPDATE decides: a team is taken only if it is still available when the row
    is written, so two callers racing for one team get one success and one TeamNotAvailable.
    (Never `SELECT ... ORDER BY geog <-> pt ... FOR UPDATE`: PostGIS 3.3 on PG 15 fails that with
    "attempted to lock invisible tuple"; candidates are chosen elsewhere, the booking is by key.)
    """
    wanted = sorted(set(team_ids))
    # Locking in id order keeps two multi-team bookings from deadlocking each other.
    taken = list(
        await session.scalars(
            update(Team)
            .where(Team.id.in_(wanted), Team.status == TeamStatus.AVAILABLE)
            .values(status=to_status, version=Team.version + 1, updated_at=func.now())
            .returning(Team)
            .execution_options(synchronize_session=False)
        )
    )
    if len(taken) != len(wanted):
        got = {t.id for t in taken}
        missing = [i for i in wanted if i not in got]
        rows = dict((await session.execute(select(Team.id, Team.status).where(Team.id.in_(missing)))).tuples().all())
        unknown = [i for i in missing if i not in rows]
        if unknown:
            raise TeamNotFound(f"no team has the id {unknown[0]}", details={"team_ids": unknown})
        busy = [{"team_id": i, "status": rows[i].value} for i in missing]
        first = busy[0]
        raise TeamNotAvailable(
            f"team {first['team_id']} is not available (it is {first['status']})", details={"teams": busy}
        )
    await event_service.record_many(
        session=session,
        events=[
            {
                "topic": "team.status_changed",
                "subject_type": "team",
                "subject_id": t.id,
                "actor": actor,
                "township": t.township_code,
                "data": team_event_data(t, previous="available", **(reason or {})),
            }
            for t in taken
        ],
    )
    return taken


async def set_status(
    *,
    session: AsyncSession,
    team_id: int,
    to_status: TeamStatus,
    actor: str,
    allowed_from: tuple[TeamStatus, ...],
    reason: dict[str, Any] | None = None,
) -> Team:
    """Move one team between statuses, only from the ones allowed (conditional, race-free)."""
    team = await session.scalar(
        update(Team)
        .where(Team.id == team_id, Team.status.in_(allowed_from))
        .values(status=to_status, version=Team.version + 1, updated_at=func.now())
        .returning(Team)
        .execution_options(synchronize_session=False)
    )
    if team is None:
        current = await session.scalar(select(Team.status).where(Team.id == team_id))
        if current is None:
            raise TeamNotFound(f"no team has the id {team_id}", details={"team_id": team_id})
        raise TeamNotAvailable(
            f"team {team_id} is {current.value}; it can go to {to_status.value} only from "
            + ", ".join(s.value for s in allowed_from),
            code="illegal_team_transition",
            details={
                "team_id": team_id,
                "status": current.value,
                "to": to_status.value,
                "allowed_from": [s.value for s in allowed_from],
            },
        )
    await event_service.record(
        session=session,
        topic="team.status_changed",
        subject_type="team",
        subject_id=team.id,
        actor=actor,
        township=team.township_code,
        data=team_event_data(team, **(reason or {})),
    )
    return team
