"""Shared resource availability: what the partner agreement lets a partner see of our teams, depot stock
and helipads. Read through the owning domains' services."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.depots import service as depot_service
from app.federation import agreement
from app.federation.envelope import iso
from app.geo.geojson import ListQuery, lon_lat
from app.helipads import service as helipad_service
from app.teams import service as team_service
from app.teams.models import Team

# A live position older than this is not trusted; the base is shown instead (as dispatch does).
POSITION_FRESH = timedelta(minutes=30)
# Everything (the list services page; this is far above any district's count).
ALL = ListQuery(limit=100_000, offset=0)


def point(value: Any) -> dict[str, Any]:
    lon, lat = lon_lat(value)
    return {"type": "Point", "coordinates": [lon, lat]}


def team_resource(sender: str, team: Team, now: datetime | None = None) -> dict[str, Any]:
    """A team as partners see it (in availability lists and in mutual-aid messages)."""
    now = now or datetime.now(UTC)
    live = team.position is not None and team.position_at is not None and now - team.position_at <= POSITION_FRESH
    return {
        "resourceID": f"{sender}:team:{team.id}",
        "name": team.name_en or team.name,
        "kind": team.kind.value,
        "capabilities": list(team.capabilities),
        "headcount": team.headcount,
        "status": team.status.value,
        "location": point(team.position if live else team.base),
    }


async def availability(*, session: AsyncSession, sender: str, partner_id: str, roles: list[str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    teams, _ = await team_service.list_teams(session=session, query=ALL)
    shared = [
        t
        for t in teams
        if agreement.team_shared(roles, shareable=t.shareable, kind=t.kind.value, capabilities=t.capabilities)
    ]
    depots, _ = await depot_service.list_depots(session=session, query=ALL)
    stock = await depot_service.stock_of(session=session, depot_ids=[d.id for d in depots])
    depot_items: list[dict[str, Any]] = []
    totals: dict[str, dict[str, Any]] = {}
    for depot in depots:
        lines = [line for line in stock.get(depot.id, []) if agreement.item_shared(roles, line.item)]
        if not lines:
            continue
        depot_items.append(
            {
                "resourceID": f"{sender}:depot:{depot.id}",
                "name": depot.name_en or depot.name,
                "level": depot.level.value,
                "location": point(depot.location),
                "stock": [{"item": s.item, "name": s.name, "unit": s.unit, "quantity": s.quantity} for s in lines],
            }
        )
        for s in lines:
            total = totals.setdefault(s.item, {"item": s.item, "name": s.name, "unit": s.unit, "quantity": 0})
            total["quantity"] += s.quantity
    helipads: list[dict[str, Any]] = []
    if agreement.helipads_shared(roles):
        pads, _ = await helipad_service.list_helipads(session=session, query=ALL)
        helipads = [
            {
                "resourceID": f"{sender}:helipad:{h.id}",
                "name": h.name_en or h.name,
                "kind": h.kind.value,
                "status": h.status.value,
                "location": point(h.location),
            }
            for h in pads
        ]
    return {
        "provider": sender,
        "partner": partner_id,
        "agreement": [r for r in roles if r in agreement.AGREEMENTS],
        "generatedAt": iso(now),
        "teams": {
            "counts": {
                "total": len(shared),
                "byStatus": dict(sorted(Counter(t.status.value for t in shared).items())),
                "byKind": dict(sorted(Counter(t.kind.value for t in shared).items())),
            },
            "items": [team_resource(sender, t, now) for t in shared],
        },
        "depots": depot_items,
        "stockTotals": [totals[k] for k in sorted(totals)],
        "helipads": helipads,
    }
