from datetime import datetime

from pydantic import BaseModel

from app.geo.geojson import Feature, FeatureCollection, PointGeometry
from app.teams.models import TeamKind, TeamStatus


class TeamProperties(BaseModel):
    code: str
    name: str
    name_en: str
    kind: TeamKind
    capabilities: list[str]
    headcount: int
    status: TeamStatus
    township: str | None
    base: tuple[float, float]
    position: tuple[float, float] | None
    position_at: datetime | None
    shareable: bool
    version: int


TeamFeature = Feature[PointGeometry, TeamProperties]
TeamCollection = FeatureCollection[PointGeometry, TeamProperties]
