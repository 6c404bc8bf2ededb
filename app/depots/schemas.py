from pydantic import BaseModel

from app.depots.models import DepotLevel
from app.geo.geojson import Feature, FeatureCollection, PointGeometry


class StockLine(BaseModel):
    item: str
    name: str
    unit: str
    quantity: int


class DepotProperties(BaseModel):
    code: str
    name: str
    name_en: str
    level: DepotLevel
    township: str | None
    stock: list[StockLine]
    version: int


DepotFeature = Feature[PointGeometry, DepotProperties]
DepotCollection = FeatureCollection[PointGeometry, DepotProperties]
