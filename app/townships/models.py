from enum import StrEnum
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin
from app.enums import str_enum
from app.geo.columns import multipolygon_column, point_column


class TownshipKind(StrEnum):
    SUBDISTRICT = "subdistrict"
    TOWN = "town"
    TOWNSHIP = "township"
    DEVELOPMENT_ZONE = "development-zone"


class Township(TimestampMixin, Base):
    """One of the 28 township-level units; its polygon decides which township a point belongs to."""

    __tablename__ = "township"

    code: Mapped[str] = mapped_column(String(9), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[TownshipKind] = mapped_column(str_enum(TownshipKind, "township_kind"))
    seat: Mapped[Any] = point_column()
    boundary: Mapped[Any] = multipolygon_column()
