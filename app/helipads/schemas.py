from pydantic import BaseModel

from app.geo.geojson import Feature, FeatureCollection, PointGeometry
from app.helipads.models import HelipadKind, HelipadStatus


class HelipadProperties(BaseModel):
    code: str
    name: str
    name_en: str
    kind: HelipadKind
    status: HelipadStatus
    township: str | None
    version: int


HelipadFeature = Feature[PointGeometry, HelipadProperties]
HelipadCollection = FeatureCollection[PointGeometry, HelipadProperties]
