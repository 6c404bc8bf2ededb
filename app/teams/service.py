"""Rescue teams: where they are, what they can do and whether they are free."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import TextClause, and_, case, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db import DriverStatement
from app.errors import AppError
from app.events import service as event_service
from app.geo.coords import CoordSys
from app.geo.geojson import ListQuery, point_wkt
from app.geo.input import PointIn
from app.geo.queries import fetch_page, geodesic_distance, in_bbox, point_value
from app.teams.models import Team, TeamKind, TeamStatus, TeamTrackPoint
from app.teams.schemas import TeamCreate, TeamPatch
from app.upsert import UpsertResult, upsert_by_key
from app.writes import (
    create_resource,
    edit_resource,
    ensure_can_report_team,
    ensure_can_write,
    place_new,
    snapshot_point,
)


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
    id: int
    code: str
    name: str
    kind: TeamKind
    capabilities: list[str]
    headcount: int
    township_code: str | None
    status: TeamStatus
    lon: float
    lat: float
    distance_m: float
    # "live" when a fresh reported position was used, else "base".
    position_source: Literal["live", "base"]
    position_age_s: float | None
    # The index's distance (`<->`, on the sphere) that shortlisted it.
    index_distance_m: float


@dataclass(frozen=True, slots=True)
class TeamShortlist:
    """One need's shortlists, each in index order: teams by base, teams by fresh live position."""

    by_base: list[TeamCandidate]
    by_live: list[TeamCandidate]

    def nearest(self, k: int, exclude: Collection[int] = ()) -> list[TeamCandidate]:
        """The k nearest by geodesic distance, leaving out `exclude`: the first k of each shortlist
        (what `ORDER BY <-> LIMIT k` would give without them), ranked exactly."""
        picked = [c for c in self.by_base if c.id not in exclude][:k]
        picked += [c for c in self.by_live if c.id not in exclude][:k]
        picked.sort(key=lambda c: (c.distance_m, c.id))
        return picked[:k]


# The nearest teams for several needs in one statement, by where each team is believed to be: its
# live position when fresh, else its base. For each need (capabilities, k), four branches:
# - by base: teams not flagged live, walked by the partial GiST index on base (NOT position_live);
# - by live position: teams flagged live, by the partial GiST index on position (position_live);
# - the few whose flag the clock has overtaken (flagged live, fix now stale: ranked by base), and
#   the reverse (never under the trigger, but exactness must not depend on it), both found through
#   the btree on (position_live, position_at).
# Each KNN branch filters the clock's verdict too, so every team counts once, where it really is.
# The index orders by `<->` (sphere); the caller ranks by the exact geodesic distance.
# Each branch selects its rows whole (no join back to team by id: a generic plan would merge-join the
# whole table for that).
# The status filter is in the text, not a parameter, so that the planner can match the partial indexes of
# available teams (ix_team_base_available): a surge of busy teams near the fire is then never walked past.
_TEAM_SHORTLISTS_SQL = """
    WITH here AS (
        SELECT CAST(ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326) AS geography)
                   AS point,
               now() - make_interval(secs => CAST(:fresh_s AS float8)) AS fresh_after
    ),
    need AS (
        SELECT n.ord, CAST(string_to_array(n.caps, ',') AS varchar(32)[]) AS caps, n.k
        FROM unnest(CAST(:capabilities AS text[]), CAST(:k AS integer[])) WITH ORDINALITY AS n(caps, k, ord)
    )
    SELECT need.ord, c.live, c.index_distance_m,
           c.id, c.code, c.name, c.kind, c.capabilities, c.headcount, c.township_code, c.status,
           ST_Distance(c.believed, here.point) AS distance_m,
           ST_X(CAST(c.believed AS geometry)) AS lon,
           ST_Y(CAST(c.believed AS geometry)) AS lat,
           EXTRACT(epoch FROM now() - c.position_at) AS age_s
    FROM here
    CROSS JOIN need
    CROSS JOIN LATERAL (
        (SELECT t.id, t.code, t.name, t.kind, t.capabilities, t.headcount, t.township_code, t.status,
                t.position_at, t.base AS believed, false AS live, t.base <-> here.point AS index_distance_m
         FROM team AS t
         WHERE NOT t.position_live
           AND (t.position_at IS NULL OR t.position_at <= here.fresh_after OR t.position IS NULL)
           /*status*/
           AND (cardinality(need.caps) = 0 OR t.capabilities && need.caps)
         ORDER BY t.base <-> here.point
         LIMIT need.k)
        UNION ALL
        (SELECT t.id, t.code, t.name, t.kind, t.capabilities, t.headcount, t.township_code, t.status,
                t.position_at, t.base, false, t.base <-> here.point
         FROM team AS t
         WHERE t.position_live AND t.position_at <= here.fresh_after
           /*status*/
           AND (cardinality(need.caps) = 0 OR t.capabilities && need.caps))
        UNION ALL
        (SELECT t.id, t.code, t.name, t.kind, t.capabilities, t.headcount, t.township_code, t.status,
                t.position_at, t.position, true, t.position <-> here.point
         FROM team AS t
         WHERE t.position_live AND t.position_at > here.fresh_after
           /*status*/
           AND (cardinality(need.caps) = 0 OR t.capabilities && need.caps)
         ORDER BY t.position <-> here.point
         LIMIT need.k)
        UNION ALL
        (SELECT t.id, t.code, t.name, t.kind, t.capabilities, t.headcount, t.township_code, t.status,
                t.position_at, t.position, true, t.position <-> here.point
         FROM team AS t
         WHERE NOT t.position_live AND t.position_at > here.fresh_after AND t.position IS NOT NULL
           /*status*/
           AND (cardinality(need.caps) = 0 OR t.capabilities && need.caps))
    ) AS c
    ORDER BY need.ord, c.index_distance_m, c.id
    """


def _team_shortlists(status_filter: str) -> TextClause:
    return text(_TEAM_SHORTLISTS_SQL.replace("/*status*/", status_filter))


TEAM_SHORTLISTS = _team_shortlists("AND t.status = 'available'")  # what a recommendation may propose
TEAM_SHORTLISTS_ANY_STATUS = _team_shortlists("")
# The recommendation's hot path runs on the driver; keyed by only_available.
SHORTLISTS_ON_DRIVER = {
    True: DriverStatement.of(TEAM_SHORTLISTS),
    False: DriverStatement.of(TEAM_SHORTLISTS_ANY_STATUS),
}


async def team_shortlists(
    *,
    session: AsyncSession,
    lon: float,
    lat: float,
    needs: Sequence[tuple[Sequence[str], int]],
    fresh_s: int,
    only_available: bool = True,
) -> list[TeamShortlist]:
    """For each need (capabilities, or none for any; k), the k teams nearest the point by base and
    the k nearest by fresh live position, in one round trip. No row locks: booking is by key."""
    rows = await SHORTLISTS_ON_DRIVER[only_available].fetch(
        session,
        lon=lon,
        lat=lat,
        fresh_s=fresh_s,
        capabilities=[",".join(capabilities) for capabilities, _ in needs],
        k=[k for _, k in needs],
    )
    shortlists = [TeamShortlist(by_base=[], by_live=[]) for _ in needs]
    for ord_, live, index_distance, *team, distance, x, y, age in rows:
        team_id, code, name, kind, capabilities, headcount, township, status = team
        shortlist = shortlists[ord_ - 1]
        (shortlist.by_live if live else shortlist.by_base).append(
            TeamCandidate(
                id=team_id,
                code=code,
                name=name,
                kind=TeamKind(kind),
                capabilities=capabilities,
                headcount=headcount,
                township_code=township,
                status=TeamStatus(status),
                lon=x,
                lat=y,
                distance_m=float(distance),
                position_source="live" if live else "base",
                position_age_s=float(age) if age is not None else None,
                index_distance_m=index_distance,
            )
        )
    return shortlists


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
    shortlisted by their GiST index (`<->`) separately, so the union holds the true k nearest; the
    exact geodesic distance then orders them.
    """
    excluded = set(exclude_ids or ())
    (shortlist,) = await team_shortlists(
        session=session,
        lon=lon,
        lat=lat,
        needs=[(capabilities or [], k + len(excluded))],
        fresh_s=fresh_s,
        only_available=only_available,
    )
    return shortlist.nearest(k, excluded)


async def sweep_stale_positions(*, session: AsyncSession, fresh_s: int) -> int:
    """Set `position_live` to what the clock says where it disagrees (fixes gone stale, mostly);
    returns how many teams changed. Idempotent; any process may run it at any time."""
    result = await session.execute(SWEEP_POSITIONS, {"fresh_s": fresh_s})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# Both directions are ranges of the (position_live, position_at) btree. The fix itself stays on the
# row (and in team_track): only the index hint changes, so no event and no version bump.
# SKIP LOCKED: the sweep never waits for a row a booking or a position write holds (so it can never
# deadlock with one); a skipped row is swept next round, and the search is exact without it.
SWEEP_POSITIONS = text(
    """
    UPDATE team SET position_live = NOT position_live
    WHERE id IN (
        SELECT id FROM team
        WHERE (position_live AND position_at <= now() - make_interval(secs => CAST(:fresh_s AS float8)))
           OR (NOT position_live AND position IS NOT NULL
               AND position_at > now() - make_interval(secs => CAST(:fresh_s AS float8)))
        FOR UPDATE SKIP LOCKED
    )
    """
)


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


# ---------------------------------------------------------------------------------------- writes


class UnknownTeams(AppError):
    status_code = 422
    code = "unknown_team"


def team_snapshot(team: Team) -> dict[str, Any]:
    """The editable state of a team as plain JSON (what created/updated events carry)."""
    return {
        "code": team.code,
        "name": team.name,
        "name_en": team.name_en,
        "kind": TeamKind(team.kind).value,
        "capabilities": list(team.capabilities),
        "headcount": team.headcount,
        "township": team.township_code,
        "base": snapshot_point(team.base),
        "shareable": team.shareable,
        "phone": team.phone,
    }


async def create_team(*, session: AsyncSession, data: TeamCreate, principal: Principal) -> Team:
    """A new team at its base; the township is the one holding the base (scope-checked)."""
    place = await place_new(
        session=session, principal=principal, point=data.base, coord_sys=data.coord_sys, township=data.township
    )
    team: Team = await create_resource(
        session,
        Team,
        subject="team",
        values={
            "code": data.code,
            "name": data.name,
            "name_en": data.name_en,
            "kind": data.kind,
            "capabilities": [c.value for c in data.capabilities],
            "headcount": data.headcount,
            "township_code": place.township,
            "base": place.wkt,
            "shareable": data.shareable,
            "phone": data.phone,
        },
        principal=principal,
        event_data=lambda t: team_event_data(t, **team_snapshot(t)),
    )
    return team


async def _writable_team(*, session: AsyncSession, team_id: int, principal: Principal) -> Team:
    team = await session.get(Team, team_id, populate_existing=True)
    if team is None:
        raise TeamNotFound(f"no team has the id {team_id}", details={"team_id": team_id})
    ensure_can_write(principal, team.township_code)
    return team


async def update_team(
    *, session: AsyncSession, team_id: int, patch: TeamPatch, expected_version: int, principal: Principal
) -> Team:
    """Change a team's editable fields, only if it is still at `expected_version` (else 409).

    An edit that changes nothing writes nothing (no version bump, no event).
    """
    updated: Team = await edit_resource(
        session,
        Team,
        subject="team",
        subject_id=team_id,
        fields=patch.given(),
        coord_sys=patch.coord_sys,
        expected=expected_version,
        principal=principal,
        load=lambda: _writable_team(session=session, team_id=team_id, principal=principal),
        point_field="base",
        snapshot=team_snapshot,
        event_data=team_event_data,
    )
    return updated


async def report_position(
    *,
    session: AsyncSession,
    team_id: int,
    location: PointIn,
    coord_sys: CoordSys,
    recorded_at: datetime | None,
    principal: Principal,
) -> tuple[Team, bool]:
    """Set a team's live position if this fix is newer than the stored one; (team, applied).

    Last writer by the time of the fix, not of arrival: a late, older fix is ignored (no event). The
    live position is telemetry, not an edit, so it needs no version and bumps none.
    """
    team = await session.get(Team, team_id)
    if team is None:
        raise TeamNotFound(f"no team has the id {team_id}", details={"team_id": team_id})
    ensure_can_report_team(principal, [team_id], {team_id: team.township_code})
    lon, lat = location.wgs84(coord_sys)
    at = fix_time(recorded_at)
    await session.execute(
        pg_insert(TeamTrackPoint)
        .values(team_id=team_id, recorded_at=at, position=point_wkt(lon, lat))
        .on_conflict_do_nothing(constraint="uq_team_track_fix")
    )
    moved = await session.scalar(
        update(Team)
        .where(Team.id == team_id, or_(Team.position_at.is_(None), Team.position_at < at))
        .values(position=point_wkt(lon, lat), position_at=at)
        .returning(Team)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if moved is None:
        await session.refresh(team)
        return team, False
    await event_service.record(
        session=session,
        topic="team.position",
        subject_type="team",
        subject_id=team_id,
        actor=principal.actor,
        township=moved.township_code,
        data=_position_data(team_id, lon, lat, at),
    )
    return moved, True


def fix_time(recorded_at: datetime | None) -> datetime:
    """When a fix counts as taken: its own time, but never later than now. A device clock a little
    ahead (the schemas allow a minute) must not make its fix outrank the correct ones that follow."""
    now = datetime.now(UTC)
    return now if recorded_at is None or recorded_at > now else recorded_at


def _position_data(team_id: int, lon: float, lat: float, at: datetime) -> dict[str, Any]:
    return {"team_id": team_id, "lon": round(lon, 7), "lat": round(lat, 7), "recorded_at": at.isoformat()}


# One statement applies the whole batch, all from arrays (one prepared statement whatever the batch size; no
# ORM, no per-row SQL to compile, one round trip): every fix joins the track, the newest fix per team becomes
# its position where it is newer than the stored one, and each position applied writes its event. It also
# answers which of the named teams exist and their townships: the caller's scope is checked on that answer,
# and a refused batch raises, which rolls the whole transaction back (so nothing of it is ever committed).
# DISTINCT ON first, because UPDATE ... FROM with several source rows for one target row would apply an
# arbitrary one of them. The event data comes ready made from Python (built for every fix, used for those
# applied), so it reads exactly as the single-fix endpoint's.
_APPLY_POSITIONS = text(
    """
    WITH fix AS (
        SELECT * FROM unnest(
            CAST(:idx AS integer[]), CAST(:team_id AS bigint[]), CAST(:lon AS float8[]),
            CAST(:lat AS float8[]), CAST(:recorded_at AS timestamptz[]), CAST(:data AS text[])
        ) AS f(idx, team_id, lon, lat, recorded_at, data)
    ),
    named AS (
        -- Locked in id order before anything else of theirs is written (the track and the update below come
        -- after these rows): two batches naming the same teams wait for each other instead of deadlocking,
        -- whatever order the join below would visit the rows in. NO KEY UPDATE is the UPDATE's own lock, so
        -- the track's foreign-key checks (KEY SHARE) of other transactions do not wait for it.
        SELECT id, township_code FROM team WHERE id IN (SELECT team_id FROM fix) ORDER BY id FOR NO KEY UPDATE
    ),
    track AS (
        -- Every fix joins the track, late ones too; a fix sent twice is kept once. (Only known teams': an
        -- unknown one refuses the batch, but must not fail the statement on the foreign key first.)
        INSERT INTO team_track (team_id, recorded_at, position)
        SELECT team_id, recorded_at, CAST(ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS geography)
        FROM fix WHERE team_id IN (SELECT id FROM named)
        ON CONFLICT (team_id, recorded_at) DO NOTHING
    ),
    newest AS (
        SELECT DISTINCT ON (team_id) idx, team_id, lon, lat, recorded_at, data
        FROM fix ORDER BY team_id, recorded_at DESC, idx DESC
    ),
    moved AS (
        UPDATE team AS t
        SET position = CAST(ST_SetSRID(ST_MakePoint(n.lon, n.lat), 4326) AS geography),
            position_at = n.recorded_at,
            updated_at = now()
        FROM newest AS n JOIN named AS k ON k.id = n.team_id
        WHERE t.id = n.team_id AND (t.position_at IS NULL OR t.position_at < n.recorded_at)
        RETURNING n.idx, t.id, t.township_code, n.data
    ),
    logged AS (
        -- The event of each position applied, in the order of the batch.
        INSERT INTO event (topic, subject_type, subject_id, actor, data, township_code, exercise)
        SELECT 'team.position', 'team', CAST(id AS text), :actor, CAST(data AS jsonb), township_code, false
        FROM moved ORDER BY idx
    )
    SELECT (SELECT coalesce(array_agg(id), '{}') FROM named) AS team_ids,
           (SELECT coalesce(array_agg(township_code), '{}') FROM named) AS townships,
           (SELECT coalesce(array_agg(idx), '{}') FROM moved) AS applied
    """
)
_APPLY_POSITIONS_ON_DRIVER = DriverStatement.of(_APPLY_POSITIONS)  # a gateway's hot path, every few seconds


@dataclass(frozen=True, slots=True)
class Fix:
    team_id: int
    lon: float
    lat: float
    recorded_at: datetime


async def report_positions(
    *, session: AsyncSession, fixes: list[Fix], principal: Principal
) -> list[tuple[bool, str | None]]:
    """Apply a batch of fixes in one transaction: (applied, reason-if-not) per fix, in input order.

    All or nothing on errors: an unknown team or one the caller may not report refuses the batch (the
    exception rolls back what the statement wrote).
    """
    ((team_ids, team_townships, applied_idx),) = await _APPLY_POSITIONS_ON_DRIVER.fetch(
        session,
        idx=list(range(len(fixes))),
        team_id=[f.team_id for f in fixes],
        lon=[f.lon for f in fixes],
        lat=[f.lat for f in fixes],
        recorded_at=[f.recorded_at for f in fixes],
        data=[orjson.dumps(_position_data(f.team_id, f.lon, f.lat, f.recorded_at)).decode() for f in fixes],
        actor=principal.actor,
    )
    townships: dict[int, str | None] = dict(zip(team_ids, team_townships, strict=True))
    ids = sorted({f.team_id for f in fixes})
    unknown = [i for i in ids if i not in townships]
    if unknown:
        raise UnknownTeams(
            f"no team has the id {unknown[0]}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
            details={"team_ids": unknown},
        )
    ensure_can_report_team(principal, ids, townships)
    applied = set(applied_idx)
    if applied:
        event_service.mark_written(session=session)
    newest_in_batch: dict[int, int] = {}
    for idx, f in enumerate(fixes):
        best = newest_in_batch.get(f.team_id)
        if best is None or (f.recorded_at, idx) >= (fixes[best].recorded_at, best):
            newest_in_batch[f.team_id] = idx
    return [
        (True, None)
        if idx in applied
        else (False, "older_than_stored" if newest_in_batch[f.team_id] == idx else "superseded_in_batch")
        for idx, f in enumerate(fixes)
    ]


async def track(
    *, session: AsyncSession, team_id: int, since: datetime | None, until: datetime | None, limit: int
) -> list[TeamTrackPoint]:
    """The team's fixes in recorded order (the latest `limit` of the window)."""
    stmt = select(TeamTrackPoint).where(TeamTrackPoint.team_id == team_id)
    if since is not None:
        stmt = stmt.where(TeamTrackPoint.recorded_at >= since)
    if until is not None:
        stmt = stmt.where(TeamTrackPoint.recorded_at < until)
    rows = list(await session.scalars(stmt.order_by(TeamTrackPoint.recorded_at.desc()).limit(limit)))
    return rows[::-1]
