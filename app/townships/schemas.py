from pydantic import BaseModel

from app.geo.geojson import FeatureCollection, MultiPolygonGeometry
from app.townships.models import TownshipKind


class TownshipProperties(BaseModel):
    code: str
    name: str
    kind: TownshipKind
    township: str
    seat: tuple[float, float]


TownshipCollection = FeatureCollection[MultiPolygonGeometry, TownshipProperties]
