"""Rescue teams: where they are, what they can do and whether they are free."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import and_, case, cast, func, not_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import AppError
from app.events import service as event_service
from app.geo.geojson import ListQuery, point_wkt
from app.geo.queries import fetch_page, geodesic_distance, in_bbox, knn, point_value
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
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    )
    if len(taken) != len(wanted):
        got = {t.id for t in taken}
        missing = [i for i in wanted if i not in got]
        rows = dict((await session.execute(select(Team.id, Team.status).where(Team.id.in_(missing)))).all())
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
        .execution_options(synchronize_session=False, populate_existing=True)
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


@dataclass(frozen=True, slots=True)
class TeamCandidate:
    team: Team
    lon: float
    lat: float
    distance_m: float
    # "live" when a fresh reported position was used, else "base".
    position_source: str
    position_age_s: float | None


async def nearest_teams(
    *,
    session: AsyncSession,
    lon: float,
    lat: float,
    capabilities: list[str] | None,
    k: int,
    fresh_s: int,
    only_available: bool = True,
    exclude_ids: list[int] | None = None,
) -> list[TeamCandidate]:
    """The k teams nearest the point by where they are believed to be, nearest first.

    A team is where its live position says when that is fresh, else at its base. Both sets are
    shortlisted by the GiST index (`<->`) separately, so the union holds the true k nearest; the
    exact geodesic distance then orders them. No row locks here: booking is by key, elsewhere.
    """
    point = point_value(lon, lat)
    fresh = and_(Team.position.is_not(None), Team.position_at > func.now() - timedelta(seconds=fresh_s))
    conditions = []
    if only_available:
        conditions.append(Team.status == TeamStatus.AVAILABLE)
    if capabilities:
        conditions.append(Team.capabilities.overlap(capabilities))
    if exclude_ids:
        conditions.append(Team.id.not_in(exclude_ids))
    by_base = select(Team.id).where(*conditions, not_(fresh)).order_by(knn(Team.base, point)).limit(k)
    by_live = select(Team.id).where(*conditions, fresh).order_by(knn(Team.position, point)).limit(k)
    shortlist = union_all(by_base, by_live).subquery()
    effective = case((fresh, Team.position), else_=Team.base)
    rows = await session.execute(
        select(
            Team,
            geodesic_distance(effective, point),
            func.ST_X(cast(effective, Geometry)),
            func.ST_Y(cast(effective, Geometry)),
            fresh,
            func.extract("epoch", func.now() - Team.position_at),
        ).where(Team.id.in_(select(shortlist.c.id)))
    )
    candidates = [
        TeamCandidate(
            team=team,
            lon=x,
            lat=y,
            distance_m=float(distance),
            position_source="live" if is_fresh else "base",
            position_age_s=float(age) if age is not None else None,
        )
        for team, distance, x, y, is_fresh, age in rows
    ]
    candidates.sort(key=lambda c: (c.distance_m, c.team.id))
    return candidates[:k]


async def availability_by_capability(*, session: AsyncSession, capabilities: list[str]) -> dict[str, int]:
    """How many teams with any of the capabilities are in each status (for shortfall reasons)."""
    rows = await session.execute(
        select(Team.status, func.count()).where(Team.capabilities.overlap(capabilities)).group_by(Team.status)
    )
    return {status.value: count for status, count in rows}


async def distances_to(
    *, session: AsyncSession, team_ids: list[int], lon: float, lat: float, fresh_s: int
) -> dict[int, float]:
    """Geodesic metres from each team's believed position (fresh live, else base) to the point."""
    point = point_value(lon, lat)
    fresh = and_(Team.position.is_not(None), Team.position_at > func.now() - timedelta(seconds=fresh_s))
    effective = case((fresh, Team.position), else_=Team.base)
    rows = await session.execute(select(Team.id, geodesic_distance(effective, point)).where(Team.id.in_(team_ids)))
    return {team_id: float(distance) for team_id, distance in rows}


async def report_position(*, session: AsyncSession, team: Team, lon_lat: tuple[float, float], actor: str) -> Team:
    """Record where the team is now (as reported with a status change), with its event."""
    lon, lat = lon_lat
    updated = await session.scalar(
        update(Team)
        .where(Team.id == team.id)
        .values(position=point_wkt(lon, lat), position_at=func.now())
        .returning(Team)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    assert updated is not None
    await event_service.record(
        session=session,
        topic="team.position",
        subject_type="team",
        subject_id=team.id,
        actor=actor,
        township=team.township_code,
        data={"team_id": team.id, "lon": lon, "lat": lat},
    )
    return updated
