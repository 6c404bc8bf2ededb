"""Incident types the district plan names, with their GB/T 35561 category and code.

GB/T 35561-2017 (突发事件分类与编码) codes a type by category digit (1 natural disaster, 2 accident,
3 public health, 4 social security), then class and sub-class. The codes below follow that structure
for the types this district handles; a deployment checks them against its copy of the standard and
edits this table (it is the single place they live).
"""

from dataclasses import dataclass
from enum import StrEnum

from app.incidents.models import IncidentCategory


class IncidentType(StrEnum):
    FOREST_FIRE = "forest_fire"
    LANDSLIDE = "landslide"
    COLLAPSE = "collapse"
    DEBRIS_FLOW = "debris_flow"
    FLOOD = "flood"
    EARTHQUAKE = "earthquake"
    SEVERE_WEATHER = "severe_weather"
    HAZARDOUS_CHEMICALS = "hazardous_chemicals"
    BUILDING_FIRE = "building_fire"
    ROAD_TRAFFIC = "road_traffic"
    PRODUCTION_SAFETY = "production_safety"
    EPIDEMIC = "epidemic"
    FOOD_POISONING = "food_poisoning"
    PUBLIC_SECURITY = "public_security"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    category: IncidentCategory
    code: str
    name_zh: str


INCIDENT_TYPES: dict[IncidentType, TypeInfo] = {
    IncidentType.FLOOD: TypeInfo(IncidentCategory.NATURAL_DISASTER, "11A01", "洪涝灾害"),
    IncidentType.SEVERE_WEATHER: TypeInfo(IncidentCategory.NATURAL_DISASTER, "12000", "气象灾害"),
    IncidentType.EARTHQUAKE: TypeInfo(IncidentCategory.NATURAL_DISASTER, "13A00", "地震灾害"),
    IncidentType.COLLAPSE: TypeInfo(IncidentCategory.NATURAL_DISASTER, "14A01", "崩塌"),
    IncidentType.LANDSLIDE: TypeInfo(IncidentCategory.NATURAL_DISASTER, "14A02", "滑坡"),
    IncidentType.DEBRIS_FLOW: TypeInfo(IncidentCategory.NATURAL_DISASTER, "14A03", "泥石流"),
    IncidentType.FOREST_FIRE: TypeInfo(IncidentCategory.NATURAL_DISASTER, "17A01", "森林火灾"),
    IncidentType.PRODUCTION_SAFETY: TypeInfo(IncidentCategory.ACCIDENT, "21000", "生产安全事故"),
    IncidentType.HAZARDOUS_CHEMICALS: TypeInfo(IncidentCategory.ACCIDENT, "21B04", "危险化学品事故"),
    IncidentType.BUILDING_FIRE: TypeInfo(IncidentCategory.ACCIDENT, "21C01", "火灾事故"),
    IncidentType.ROAD_TRAFFIC: TypeInfo(IncidentCategory.ACCIDENT, "22A01", "道路交通事故"),
    IncidentType.EPIDEMIC: TypeInfo(IncidentCategory.PUBLIC_HEALTH, "31A00", "传染病疫情"),
    IncidentType.FOOD_POISONING: TypeInfo(IncidentCategory.PUBLIC_HEALTH, "33A01", "食物中毒"),
    IncidentType.PUBLIC_SECURITY: TypeInfo(IncidentCategory.SOCIAL_SECURITY, "41000", "社会安全事件"),
}

SEVERITY_NAMES = {1: "特别重大", 2: "重大", 3: "较大", 4: "一般"}
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
FROM_ROMAN = {v: k for k, v in ROMAN.items()}
