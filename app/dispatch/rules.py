"""What each incident type needs: the rule table (edit it per deployment; it is the only place).

A need asks for `count` teams having any of `capabilities`. Teams are proposed once, for the first
need they satisfy, so one team never fills two needs.
"""

from dataclasses import dataclass, field

from app.incidents.types import IncidentType
from app.teams.models import Capability as C


@dataclass(frozen=True, slots=True)
class Need:
    label: str
    capabilities: tuple[C, ...]
    count: int


@dataclass(frozen=True, slots=True)
class Rule:
    needs: tuple[Need, ...]
    aviation: bool = False
    shelters: bool = False
    items: tuple[str, ...] = field(default=())


BASIC_LIVING = ("101", "102", "104", "105", "107")

# Landslides and debris flows call for the same response: geological teams first.
SLOPE_FAILURE = Rule(
    needs=(
        Need("geological rescue", (C.GEOLOGICAL_RESCUE,), 2),
        Need("heavy rescue", (C.HEAVY_RESCUE,), 1),
        Need("medical", (C.MEDICAL,), 1),
    ),
    shelters=True,
    items=BASIC_LIVING,
)

RULES: dict[IncidentType, Rule] = {
    IncidentType.FOREST_FIRE: Rule(
        needs=(Need("forest fire suppression", (C.FOREST_FIRE,), 3), Need("water supply", (C.WATER_SUPPLY,), 1)),
        aviation=True,
        items=("201", "202", "210", "207"),
    ),
    IncidentType.HAZARDOUS_CHEMICALS: Rule(
        needs=(Need("hazmat", (C.HAZMAT,), 2), Need("medical", (C.MEDICAL,), 1)),
        shelters=True,
        items=("208", "209"),
    ),
    IncidentType.LANDSLIDE: SLOPE_FAILURE,
    IncidentType.COLLAPSE: Rule(
        needs=(
            Need("heavy rescue", (C.HEAVY_RESCUE,), 2),
            Need("geological rescue", (C.GEOLOGICAL_RESCUE,), 1),
            Need("medical", (C.MEDICAL,), 1),
        ),
        shelters=True,
        items=BASIC_LIVING,
    ),
    IncidentType.DEBRIS_FLOW: SLOPE_FAILURE,
    IncidentType.FLOOD: Rule(
        needs=(Need("flood rescue", (C.FLOOD_RESCUE,), 3), Need("water rescue", (C.WATER_RESCUE,), 1)),
        shelters=True,
        items=("301", "302", "205", "206", "204", *BASIC_LIVING),
    ),
    IncidentType.BUILDING_FIRE: Rule(
        needs=(Need("fire suppression", (C.STRUCTURE_FIRE,), 2), Need("medical", (C.MEDICAL,), 1))
    ),
    IncidentType.ROAD_TRAFFIC: Rule(needs=(Need("extrication", (C.EXTRICATION,), 1), Need("medical", (C.MEDICAL,), 1))),
    IncidentType.EARTHQUAKE: Rule(
        needs=(
            Need("heavy rescue", (C.HEAVY_RESCUE,), 3),
            Need("medical", (C.MEDICAL,), 2),
            Need("search and rescue", (C.SEARCH_RESCUE,), 2),
        ),
        aviation=True,
        shelters=True,
        items=(*BASIC_LIVING, "203", "108"),
    ),
    IncidentType.PRODUCTION_SAFETY: Rule(
        needs=(Need("rescue", (C.HEAVY_RESCUE, C.EXTRICATION), 1), Need("medical", (C.MEDICAL,), 1))
    ),
    IncidentType.SEVERE_WEATHER: Rule(
        needs=(Need("relief", (C.RELIEF, C.EVACUATION), 2),),
        shelters=True,
        items=BASIC_LIVING,
    ),
    IncidentType.EPIDEMIC: Rule(needs=(Need("medical", (C.MEDICAL,), 2),)),
    IncidentType.FOOD_POISONING: Rule(needs=(Need("medical", (C.MEDICAL,), 2),)),
    IncidentType.PUBLIC_SECURITY: Rule(needs=(Need("evacuation", (C.EVACUATION,), 1),)),
}
