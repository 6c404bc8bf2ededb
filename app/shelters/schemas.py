from pydantic import BaseModel

from app.geo.geojson import Feature, FeatureCollection, PointGeometry
from app.shelters.models import ShelterLevel, ShelterStatus


class ShelterProperties(BaseModel):
    code: str
    name: str
    level: ShelterLevel
    site_type: str
    capacity: int
    occupancy: int
    free_places: int
    area_m2: int | None
    status: ShelterStatus
    address: str
    township: str | None
    version: int


ShelterFeature = Feature[PointGeometry, ShelterProperties]
ShelterCollection = FeatureCollection[PointGeometry, ShelterProperties]
