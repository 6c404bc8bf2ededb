"""Column types for places: everything is WGS-84 geography with a GiST index."""

from typing import Any

from geoalchemy2 import Geography
from sqlalchemy.orm import MappedColumn, mapped_column


def point_column(*, nullable: bool = False, **kwargs: Any) -> MappedColumn[Any]:
    return mapped_column(Geography(geometry_type="POINT", srid=4326, spatial_index=True), nullable=nullable, **kwargs)


def multipolygon_column(*, nullable: bool = False, **kwargs: Any) -> MappedColumn[Any]:
    return mapped_column(
        Geography(geometry_type="MULTIPOLYGON", srid=4326, spatial_index=True), nullable=nullable, **kwargs
    )
