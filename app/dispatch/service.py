"""Dispatch: what to send (recommendation), sending it (race-free assignment) and the team lifecycle.

Orchestrates the incidents, teams, shelters, depots and helipads services; it owns only the
`dispatch` table (one row per team sent, with the time of each stage).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.config import Settings
from app.depots import service as depot_service
from app.depots.models import LedgerKind
from app.dispatch import nearby as nearby_service
from app.dispatch.models import Dispatch
from app.dispatch.rules import RULES, Rule
from app.dispatch.schemas import (
    DepotOption,
    DispatchOut,
    HelipadOption,
    Recommendation,
    ShelterOption,
    Shortfall,
    StockOption,
    TeamOption,
)
from app.errors import AppError, Forbidden, NotFound
from app.events import service as event_service
from app.geo.coords import CoordSys, from_wgs84
from app.geo.geojson import PointGeometry
from app.helipads import service as helipad_service
from app.incidents import service as incident_service
from app.incidents.models import Incident
from app.incidents.types import IncidentType
from app.shelters import service as shelter_service
from app.teams import service as team_service
from app.teams.models import Team, TeamStatus
from app.users.models import Role

NEAREST_SHELTERS = 5
NEAREST_DEPOTS = 5


@dataclass(frozen=True, slots=True)
class EtaModel:
    """ETA = turnout(kind) + distance × road factor ÷ speed (straight-line distance, road-corrected)."""

    settings: Settings

    def road_factor(self, township: str | None) -> float:
        mountain = township in self.settings.dispatch_mountain_townships
        return self.settings.dispatch_mountain_road_factor if mountain else self.settings.dispatch_road_factor

    def eta_s(self, *, kind: str, distance_m: float, township: str | None) -> int:
        turnout = self.settings.dispatch_turnout_s.get(kind, 600)
        travel = distance_m * self.road_factor(township) / (self.settings.dispatch_speed_kmh / 3.6)
        return round(turnout + travel)

    def aviation_eta_s(self, distance_m: float) -> int:
        return round(self.settings.aviation_turnout_s + distance_m / (self.settings.aviation_speed_kmh / 3.6))

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {
            "formula": "turnout(kind) + distance_m * road_factor / speed",
            "speed_kmh": s.dispatch_speed_kmh,
            "road_factor": s.dispatch_road_factor,
            "mountain_road_factor": s.dispatch_mountain_road_factor,
            "turnout_s": s.dispatch_turnout_s,
            "position_fresh_s": s.dispatch_position_fresh_s,
            "max_range_m": s.dispatch_max_range_m,
            "aviation_speed_kmh": s.aviation_speed_kmh,
            "aviation_turnout_s": s.aviation_turnout_s,
        }


def _point(lon: float, lat: float, coord_sys: CoordSys) -> PointGeometry:
    x, y = from_wgs84(lon, lat, coord_sys)
    return PointGeometry(type="Point", coordinates=(round(x, 7), round(y, 7)))


async def recommend_teams(
    *,
    session: AsyncSession,
    settings: Settings,
    rule: Rule,
    lon: float,
    lat: float,
    township: str | None,
    coord_sys: CoordSys,
) -> tuple[list[TeamOption], list[Shortfall]]:
    eta = EtaModel(settings)
    chosen: list[TeamOption] = []
    shortfalls: list[Shortfall] = []
    taken: set[int] = set()
    wanted = [max(settings.dispatch_shortlist, need.count * 4) for need in rule.needs]
    # One round trip for every need: each shortlist is longer by the teams earlier needs may take,
    # so leaving those out afterwards still leaves the k nearest of the rest.
    shortlists = await team_service.team_shortlists(
        session=session,
        lon=lon,
        lat=lat,
        needs=[
            ([c.value for c in need.capabilities], k + sum(n.count for n in rule.needs[:i]))
            for i, (need, k) in enumerate(zip(rule.needs, wanted, strict=True))
        ],
        fresh_s=settings.dispatch_position_fresh_s,
    )
    for need, k, shortlist in zip(rule.needs, wanted, shortlists, strict=True):
        candidates = shortlist.nearest(k, taken)
        in_range = [c for c in candidates if c.distance_m <= settings.dispatch_max_range_m]
        # Rank by ETA first and build answer objects only for the teams chosen (a shortlist is ~4x the need).
        ranked = sorted(
            (
                (eta.eta_s(kind=c.kind.value, distance_m=c.distance_m, township=township), round(c.distance_m), c.id, c)
                for c in in_range
            ),
            key=lambda ranking: ranking[:3],
        )[: need.count]
        options = [
            TeamOption(
                id=c.id,
                code=c.code,
                name=c.name,
                kind=c.kind,
                capabilities=c.capabilities,
                headcount=c.headcount,
                township=c.township_code,
                need=need.label,
                distance_m=distance_m,
                eta_s=eta_s,
                position_source=c.position_source,
                position_age_s=round(c.position_age_s) if c.position_age_s is not None else None,
                location=_point(c.lon, c.lat, coord_sys),
            )
            for eta_s, distance_m, _, c in ranked
        ]
        chosen += options
        taken.update(o.id for o in options)
        stale = [o.id for o in options if o.position_source == "base" and o.position_age_s is not None]
        if len(options) < need.count or stale:
            reasons: list[Any] = []
            details: dict[str, Any] = {}
            if len(options) < need.count:
                if len(candidates) > len(in_range):
                    reasons.append("beyond_range")
                    details["beyond_range"] = len(candidates) - len(in_range)
                if len(candidates) < need.count:
                    reasons.append("none_available")
                    details["by_status"] = await team_service.availability_by_capability(
                        session=session, capabilities=[c.value for c in need.capabilities]
                    )
            if stale:
                # Their live positions are too old: their bases were used, so their ETAs are guesses.
                reasons.append("positions_stale")
                details["stale_team_ids"] = stale
            shortfalls.append(
                Shortfall(need=need.label, wanted=need.count, found=len(options), reasons=reasons, details=details)
            )
    chosen.sort(key=lambda o: (o.eta_s, o.distance_m))
    return chosen, shortfalls


async def recommend(
    *,
    session: AsyncSession,
    settings: Settings,
    incident_id: int | None,
    lon: float,
    lat: float,
    incident_type: IncidentType,
    people_affected: int,
    township: str | None,
    coord_sys: CoordSys,
) -> Recommendation:
    rule = RULES[incident_type]
    teams, shortfalls = await recommend_teams(
        session=session, settings=settings, rule=rule, lon=lon, lat=lat, township=township, coord_sys=coord_sys
    )
    want_shelters = rule.shelters or people_affected > 0
    found = await nearby_service.nearby(
        session=session,
        lon=lon,
        lat=lat,
        shelters=NEAREST_SHELTERS * 4 if want_shelters else 0,
        items=list(rule.items),
        depots=NEAREST_DEPOTS,
    )

    shelters: list[ShelterOption] = []
    if want_shelters:
        places = 0
        for shelter in found.shelters:
            # Nearest first, until the people affected have places (at least a few to choose from).
            if len(shelters) >= NEAREST_SHELTERS and places >= people_affected:
                break
            free = shelter["capacity"] - shelter["occupancy"]
            places += free
            shelters.append(
                ShelterOption(
                    id=shelter["id"],
                    code=shelter["code"],
                    name=shelter["name"],
                    level=shelter["level"],
                    township=shelter["township"],
                    distance_m=round(shelter["distance_m"]),
                    capacity=shelter["capacity"],
                    occupancy=shelter["occupancy"],
                    free_places=free,
                    location=_point(shelter["lon"], shelter["lat"], coord_sys),
                )
            )
        if not shelters or places < people_affected:
            shortfalls.append(
                Shortfall(
                    need="shelter places",
                    wanted=people_affected,
                    found=places,
                    reasons=["no_shelter_space" if not shelters else "not_enough_shelter_space"],
                )
            )

    depots = [
        DepotOption(
            id=depot["id"],
            code=depot["code"],
            name=depot["name"],
            level=depot["level"],
            township=depot["township"],
            distance_m=round(depot["distance_m"]),
            stock=[StockOption(**line) for line in depot["stock"] or ()],
            location=_point(depot["lon"], depot["lat"], coord_sys),
        )
        for depot in found.depots
    ]
    if rule.items and not depots:
        shortfalls.append(
            Shortfall(
                need="supplies",
                wanted=len(rule.items),
                found=0,
                reasons=["no_depot_holds_items"],
                details={"items": list(rule.items)},
            )
        )

    pad = found.helipad
    helipad = (
        HelipadOption(
            id=pad["id"],
            code=pad["code"],
            name=pad["name"],
            kind=pad["kind"],
            distance_m=round(pad["distance_m"]),
            location=_point(pad["lon"], pad["lat"], coord_sys),
        )
        if pad is not None
        else None
    )
    aviation_eta = (
        EtaModel(settings).aviation_eta_s(found.aviation_base_m) if found.aviation_base_m is not None else None
    )
    if rule.aviation and (helipad is None or aviation_eta is None):
        shortfalls.append(Shortfall(need="aviation", wanted=1, found=0, reasons=["no_helipad"]))

    return Recommendation(
        incident_id=incident_id,
        type=incident_type.value,
        location=_point(lon, lat, coord_sys),
        teams=teams,
        shelters=shelters,
        depots=depots,
        helipad=helipad,
        aviation_eta_s=aviation_eta,
        shortfalls=shortfalls,
        eta_model=EtaModel(settings).describe(),
    )


# ---- assignment -------------------------------------------------------------------------------


class DispatchNotFound(NotFound):
    code = "dispatch_not_found"


class DispatchAlreadyReleased(AppError):
    status_code = 409
    code = "dispatch_released"


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    return round((end - start).total_seconds()) if start and end else None


def dispatch_out(d: Dispatch, team: Team) -> DispatchOut:
    return DispatchOut(
        id=d.id,
        incident_id=d.incident_id,
        team_id=d.team_id,
        team_name=team.name,
        team_status=team.status,
        dispatched_by=d.dispatched_by,
        note=d.note,
        distance_m=d.distance_m,
        eta_s=d.eta_s,
        dispatched_at=d.dispatched_at,
        en_route_at=d.en_route_at,
        on_scene_at=d.on_scene_at,
        returning_at=d.returning_at,
        released_at=d.released_at,
        released_by=d.released_by,
        turnout_s=_seconds(d.dispatched_at, d.en_route_at),
        travel_s=_seconds(d.en_route_at, d.on_scene_at),
        on_scene_s=_seconds(d.on_scene_at, d.returning_at or d.released_at),
    )


async def assign(
    *,
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    incident_id: int,
    team_ids: list[int],
    note: str,
) -> tuple[Incident, list[DispatchOut]]:
    """Book the teams for the incident: all of them or none (409 naming a team that is not available)."""
    incident = await incident_service.lock_for_dispatch(session=session, incident_id=incident_id)
    incident_service.require_scope(principal, incident.township_code, what="dispatch teams")
    teams = await team_service.book_teams(
        session=session,
        team_ids=team_ids,
        actor=principal.actor,
        reason={"incident_id": incident.id, "incident_code": incident.code},
    )
    lon, lat = incident_service.lon_lat_of(incident)
    eta = EtaModel(settings)
    distances = await team_service.distances_to(
        session=session, team_ids=[t.id for t in teams], lon=lon, lat=lat, fresh_s=settings.dispatch_position_fresh_s
    )
    rows = []
    for team in teams:
        distance = distances[team.id]
        dispatch = Dispatch(
            incident_id=incident.id,
            team_id=team.id,
            dispatched_by=principal.actor,
            note=note,
            distance_m=round(distance),
            eta_s=eta.eta_s(kind=team.kind.value, distance_m=distance, township=incident.township_code),
        )
        session.add(dispatch)
        rows.append((dispatch, team))
    await session.flush()
    for dispatch, _ in rows:
        await session.refresh(dispatch)
    incident = await incident_service.mark_dispatched(session=session, incident=incident, actor=principal.actor)
    await event_service.record(
        session=session,
        topic="dispatch.created",
        subject_type="incident",
        subject_id=incident.id,
        actor=principal.actor,
        township=incident.township_code,
        exercise=incident.exercise,
        data={
            "incident_id": incident.id,
            "incident_code": incident.code,
            "team_ids": [t.id for t in teams],
            "dispatch_ids": [d.id for d, _ in rows],
            "note": note,
            "teams": [{"team_id": t.id, "name": t.name, "eta_s": d.eta_s, "distance_m": d.distance_m} for d, t in rows],
        },
    )
    return incident, [dispatch_out(d, t) for d, t in rows]


async def list_dispatches(*, session: AsyncSession, incident_id: int) -> list[DispatchOut]:
    rows = await session.execute(
        select(Dispatch, Team)
        .join(Team, Team.id == Dispatch.team_id)
        .where(Dispatch.incident_id == incident_id)
        .order_by(Dispatch.id)
    )
    return [dispatch_out(d, t) for d, t in rows]


async def team_assignments(*, session: AsyncSession, team_id: int, active_only: bool) -> list[DispatchOut]:
    stmt = select(Dispatch, Team).join(Team, Team.id == Dispatch.team_id).where(Dispatch.team_id == team_id)
    if active_only:
        stmt = stmt.where(Dispatch.released_at.is_(None))
    rows = await session.execute(stmt.order_by(Dispatch.id.desc()).limit(200))
    return [dispatch_out(d, t) for d, t in rows]


async def team_is_assigned(*, session: AsyncSession, incident_id: int, team_id: int | None) -> bool:
    if team_id is None:
        return False
    found = await session.scalar(
        select(Dispatch.id).where(Dispatch.incident_id == incident_id, Dispatch.team_id == team_id).limit(1)
    )
    return found is not None


async def incident_ids_of_team(*, session: AsyncSession, team_id: int) -> list[int]:
    return list(await session.scalars(select(Dispatch.incident_id).where(Dispatch.team_id == team_id).distinct()))


# ---- team lifecycle ---------------------------------------------------------------------------

# Where a team may go from where; the stage times land on its active dispatch.
TEAM_TRANSITIONS: dict[TeamStatus, tuple[TeamStatus, ...]] = {
    TeamStatus.EN_ROUTE: (TeamStatus.DISPATCHED,),
    TeamStatus.ON_SCENE: (TeamStatus.DISPATCHED, TeamStatus.EN_ROUTE),
    TeamStatus.RETURNING: (TeamStatus.ON_SCENE,),
    TeamStatus.AVAILABLE: (TeamStatus.RETURNING, TeamStatus.OUT_OF_SERVICE),
    TeamStatus.OUT_OF_SERVICE: (TeamStatus.AVAILABLE,),
    TeamStatus.DISPATCHED: (),  # only through an assignment
}
STAGE_COLUMN = {
    TeamStatus.EN_ROUTE: "en_route_at",
    TeamStatus.ON_SCENE: "on_scene_at",
    TeamStatus.RETURNING: "returning_at",
}


def require_team_scope(principal: Principal, team: Team) -> None:
    if principal.role is Role.COMMAND:
        return
    if principal.role is Role.RESPONDER and principal.team_id == team.id:
        return
    if principal.role is Role.TOWNSHIP and team.township_code == principal.township:
        return
    raise Forbidden(
        f"a {principal.role.value} token may not change team {team.id}",
        code="out_of_scope",
        details={"team_id": team.id},
    )


async def change_team_status(
    *, session: AsyncSession, principal: Principal, team_id: int, to: TeamStatus, note: str
) -> Team:
    team = await team_service.get_team(session=session, team_id=team_id)
    if team is None:
        raise team_service.TeamNotFound(f"no team has the id {team_id}", details={"team_id": team_id})
    require_team_scope(principal, team)
    active = await session.scalar(
        select(Dispatch).where(Dispatch.team_id == team_id, Dispatch.released_at.is_(None)).with_for_update()
    )
    reason: dict[str, Any] = {"note": note}
    if active is not None:
        reason |= {"incident_id": active.incident_id, "dispatch_id": active.id}
    team = await team_service.set_status(
        session=session,
        team_id=team_id,
        to_status=to,
        actor=principal.actor,
        allowed_from=TEAM_TRANSITIONS[to],
        reason=reason,
    )
    if active is not None:
        values: dict[str, Any] = {}
        if to in STAGE_COLUMN:
            values[STAGE_COLUMN[to]] = func.now()
        if to is TeamStatus.AVAILABLE:
            values |= {"released_at": func.now(), "released_by": principal.actor}
        if values:
            await session.execute(update(Dispatch).where(Dispatch.id == active.id).values(**values))
        await _record_dispatch_event(
            session, active, "dispatch.team_status", principal.actor, team, status=to.value, note=note
        )
    return team


async def release(
    *, session: AsyncSession, principal: Principal, incident_id: int, dispatch_id: int, note: str
) -> DispatchOut:
    """Stand a team down: a team not yet on scene is free at once; one on scene starts returning."""
    dispatch = await session.scalar(
        select(Dispatch).where(Dispatch.id == dispatch_id, Dispatch.incident_id == incident_id).with_for_update()
    )
    if dispatch is None:
        raise DispatchNotFound(f"incident {incident_id} has no dispatch {dispatch_id}")
    incident = await incident_service.get(session=session, incident_id=incident_id)
    incident_service.require_scope(principal, incident.township_code, what="release a dispatch")
    if dispatch.released_at is not None:
        raise DispatchAlreadyReleased(f"dispatch {dispatch_id} was released at {dispatch.released_at.isoformat()}")
    team = await team_service.get_team(session=session, team_id=dispatch.team_id)
    assert team is not None
    reason = {"incident_id": incident_id, "dispatch_id": dispatch.id, "note": note}
    if team.status is TeamStatus.ON_SCENE:
        team = await team_service.set_status(
            session=session,
            team_id=team.id,
            to_status=TeamStatus.RETURNING,
            actor=principal.actor,
            allowed_from=(TeamStatus.ON_SCENE,),
            reason=reason,
        )
        dispatch.returning_at = datetime.now(dispatch.dispatched_at.tzinfo)
    elif team.status in (TeamStatus.DISPATCHED, TeamStatus.EN_ROUTE):
        team = await team_service.set_status(
            session=session,
            team_id=team.id,
            to_status=TeamStatus.AVAILABLE,
            actor=principal.actor,
            allowed_from=(TeamStatus.DISPATCHED, TeamStatus.EN_ROUTE),
            reason=reason,
        )
    dispatch.released_at = datetime.now(dispatch.dispatched_at.tzinfo)
    dispatch.released_by = principal.actor
    await session.flush()
    await session.refresh(dispatch)
    await _record_dispatch_event(session, dispatch, "dispatch.released", principal.actor, team, note=note)
    return dispatch_out(dispatch, team)


async def _record_dispatch_event(
    session: AsyncSession, dispatch: Dispatch, topic: str, actor: str, team: Team, **extra: Any
) -> None:
    incident = await incident_service.get(session=session, incident_id=dispatch.incident_id)
    await event_service.record(
        session=session,
        topic=topic,
        subject_type="incident",
        subject_id=dispatch.incident_id,
        actor=actor,
        township=incident.township_code,
        exercise=incident.exercise,
        data={
            "incident_id": dispatch.incident_id,
            "dispatch_id": dispatch.id,
            "team_ids": [team.id],
            "team_status": team.status.value,
            **extra,
        },
    )


# ---- /nearest: thin pass-throughs so the router stays on this service --------------------------


def point_in(lon: float, lat: float, coord_sys: CoordSys) -> PointGeometry:
    return _point(lon, lat, coord_sys)


async def nearest_shelters(*, session: AsyncSession, lon: float, lat: float, k: int) -> list[tuple[Any, float]]:
    return await shelter_service.nearest_with_space(session=session, lon=lon, lat=lat, k=k)


async def nearest_depots(
    *, session: AsyncSession, lon: float, lat: float, items: list[str] | None, k: int
) -> list[tuple[Any, float]]:
    return await depot_service.nearest_holding(session=session, lon=lon, lat=lat, items=items, k=k)


async def depot_stock(*, session: AsyncSession, depot_ids: list[int]) -> dict[int, list[Any]]:
    return await depot_service.stock_of(session=session, depot_ids=depot_ids)


async def nearest_pads(*, session: AsyncSession, lon: float, lat: float, k: int) -> list[tuple[Any, float]]:
    return await helipad_service.nearest_helipads(session=session, lon=lon, lat=lat, k=k)


# ---- supplies -----------------------------------------------------------------------------------


async def allocate_supplies(
    *,
    session: AsyncSession,
    principal: Principal,
    incident_id: int,
    depot_id: int,
    item: str,
    quantity: int,
    shelter_id: int | None,
    note: str,
) -> tuple[Incident, Any]:
    """Issue items from a depot to the incident (or a shelter for it): one ledger issue, never below zero
    (the depot's conditional update decides under concurrency), and an event on the incident's timeline."""
    incident = await incident_service.lock_for_dispatch(session=session, incident_id=incident_id)
    incident_service.require_scope(principal, incident.township_code, what="allocate supplies")
    shelter_name = None
    if shelter_id is not None:
        shelter = await shelter_service.get_shelter(session=session, shelter_id=shelter_id)
        if shelter is None:
            raise NotFound(f"no shelter has the id {shelter_id}", code="shelter_not_found")
        shelter_name = shelter.name
    destination = f"incident {incident.code}" + (f", shelter {shelter_name}" if shelter_name else "")
    entry = await depot_service.move_stock(
        session=session,
        depot_id=depot_id,
        item_code=item,
        delta=-quantity,
        kind=LedgerKind.ISSUE,
        reason=f"allocated to {destination}" + (f": {note}" if note else ""),
        principal=principal,
    )
    await event_service.record(
        session=session,
        topic="supplies.allocated",
        subject_type="incident",
        subject_id=incident.id,
        actor=principal.actor,
        township=incident.township_code,
        exercise=incident.exercise,
        data={
            "incident_id": incident.id,
            "depot_id": depot_id,
            "item": item,
            "quantity": quantity,
            "shelter_id": shelter_id,
            "ledger_entry_id": entry.id,
            "balance_after": entry.balance_after,
        },
    )
    return incident, entry
