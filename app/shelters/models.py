from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin
from app.enums import str_enum
from app.geo.columns import point_column


class ShelterLevel(StrEnum):
    EMERGENCY = "emergency"  # 紧急避难场所
    FIXED = "fixed"  # 固定避难场所


class ShelterStatus(StrEnum):
    STANDBY = "standby"
    OPEN = "open"
    FULL = "full"
    CLOSED = "closed"


class Shelter(TimestampMixin, Base):
    __tablename__ = "shelter"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        CheckConstraint("occupancy >= 0 AND occupancy <= capacity", name="occupancy_within_capacity"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(160))
    level: Mapped[ShelterLevel] = mapped_column(str_enum(ShelterLevel, "shelter_level"))
    site_type: Mapped[str] = mapped_column(String(32), default="", server_default="")
    capacity: Mapped[int] = mapped_column(Integer)
    occupancy: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    area_m2: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[ShelterStatus] = mapped_column(
        str_enum(ShelterStatus, "shelter_status"), default=ShelterStatus.STANDBY, server_default="standby"
    )
    address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    location: Mapped[Any] = point_column()
    township_code: Mapped[str | None] = mapped_column(ForeignKey("township.code"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
