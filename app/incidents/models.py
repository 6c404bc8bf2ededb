from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin
from app.enums import str_enum
from app.geo.columns import point_column


class IncidentStatus(StrEnum):
    REPORTED = "reported"
    VERIFIED = "verified"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    CONTROLLED = "controlled"
    CLOSED = "closed"
    DISMISSED = "dismissed"


class IncidentCategory(StrEnum):
    """GB/T 35561 top-level categories of emergencies (突发事件分类)."""

    NATURAL_DISASTER = "natural_disaster"
    ACCIDENT = "accident"
    PUBLIC_HEALTH = "public_health"
    SOCIAL_SECURITY = "social_security"


class Severity(IntEnum):
    """Level I is the gravest (特别重大), IV the least (一般)."""

    I = 1  # noqa: E741
    II = 2
    III = 3
    IV = 4


class Incident(TimestampMixin, Base):
    __tablename__ = "incident"
    __table_args__ = (
        CheckConstraint("severity BETWEEN 1 AND 4", name="severity_range"),
        CheckConstraint(
            "dead >= 0 AND injured >= 0 AND missing >= 0 AND trapped >= 0 AND people_affected >= 0",
            name="counts_not_negative",
        ),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    category: Mapped[IncidentCategory] = mapped_column(str_enum(IncidentCategory, "incident_category"))
    type: Mapped[str] = mapped_column(String(48), index=True)
    type_code: Mapped[str] = mapped_column(String(16))
    severity: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[IncidentStatus] = mapped_column(str_enum(IncidentStatus, "incident_status"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    location: Mapped[Any] = point_column()
    township_code: Mapped[str | None] = mapped_column(ForeignKey("township.code"), index=True)
    cross_border: Mapped[bool] = mapped_column(default=False, server_default="false")
    dead: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    injured: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    missing: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    trapped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    people_affected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    exercise: Mapped[bool] = mapped_column(default=False, server_default="false", index=True)
    reported_by: Mapped[str] = mapped_column(String(120))
    reported_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class IncidentCodeCounter(Base):
    """Per-day counter behind the human code JZ-YYYYMMDD-NNNN (an upsert makes it race-free)."""

    __tablename__ = "incident_code_counter"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)
