from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin
from app.enums import str_enum
from app.geo.columns import point_column


class TeamKind(StrEnum):
    FIRE_RESCUE = "fire_rescue"
    TOWNSHIP_FIRE = "township_fire"
    FOREST_FIRE = "forest_fire"
    HAZMAT = "hazmat"
    FLOOD = "flood"
    GEOLOGICAL = "geological"
    MEDICAL = "medical"
    SOCIAL = "social"
    MILITIA = "militia"
    ENTERPRISE = "enterprise"
    AVIATION = "aviation"


class Capability(StrEnum):
    STRUCTURE_FIRE = "structure_fire"
    FOREST_FIRE = "forest_fire"
    WATER_SUPPLY = "water_supply"
    AVIATION = "aviation"
    HAZMAT = "hazmat"
    FLOOD_RESCUE = "flood_rescue"
    WATER_RESCUE = "water_rescue"
    GEOLOGICAL_RESCUE = "geological_rescue"
    HEAVY_RESCUE = "heavy_rescue"
    SEARCH_RESCUE = "search_rescue"
    MEDICAL = "medical"
    EXTRICATION = "extrication"
    RELIEF = "relief"
    EVACUATION = "evacuation"
    LOGISTICS = "logistics"
    DRONE = "drone"
    COMMS = "comms"
    PUMPING = "pumping"


class TeamStatus(StrEnum):
    AVAILABLE = "available"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RETURNING = "returning"
    OUT_OF_SERVICE = "out_of_service"


class Team(TimestampMixin, Base):
    __tablename__ = "team"
    __table_args__ = (
        CheckConstraint("headcount >= 0", name="headcount_not_negative"),
        Index("ix_team_capabilities", "capabilities", postgresql_using="gin"),
        # The nearest-team search (teams.service.TEAM_SHORTLISTS) walks one index per kind of believed
        # position, each holding only its own teams, so it stays index-driven however many are live.
        CheckConstraint(
            "NOT position_live OR (position IS NOT NULL AND position_at IS NOT NULL)", name="position_live"
        ),
        Index("ix_team_base_not_live", "base", postgresql_using="gist", postgresql_where=text("NOT position_live")),
        Index("ix_team_position_live", "position", postgresql_using="gist", postgresql_where=text("position_live")),
        # What a recommendation walks: available teams at their bases only (a surge of busy teams is not in it).
        Index(
            "ix_team_base_available",
            "base",
            postgresql_using="gist",
            postgresql_where=text("NOT position_live AND status = 'available'"),
        ),
        # Finds the few teams whose flag disagrees with the clock (a fix gone stale since the last sweep).
        Index("ix_team_position_live_at", "position_live", "position_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(160), default="", server_default="")
    kind: Mapped[TeamKind] = mapped_column(str_enum(TeamKind, "team_kind"))
    capabilities: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    headcount: Mapped[int] = mapped_column(Integer)
    township_code: Mapped[str | None] = mapped_column(ForeignKey("township.code"), index=True)
    base: Mapped[Any] = point_column()
    # Last reported live position; the base is used when it is missing or stale.
    position: Mapped[Any] = point_column(nullable=True)
    position_at: Mapped[datetime | None]
    # "The live position was fresh when last looked at": set by a trigger whenever a fix is written
    # (migration 0005), cleared by the sweep once the fix is older than the freshness window
    # (teams.sweep). An index hint only; queries still check position_at, so a flag late by one
    # sweep costs a few rows, never a wrong answer.
    position_live: Mapped[bool] = mapped_column(default=False, server_default="false")
    status: Mapped[TeamStatus] = mapped_column(
        str_enum(TeamStatus, "team_status"), default=TeamStatus.AVAILABLE, server_default="available", index=True
    )
    shareable: Mapped[bool] = mapped_column(default=False, server_default="false")
    phone: Mapped[str] = mapped_column(String(40), default="", server_default="")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class TeamTrackPoint(Base):
    """Every fix a team reported, in the order it was recorded (late fixes still belong to the track).

    (team_id, recorded_at) is unique: a fix sent twice is stored once.
    """

    __tablename__ = "team_track"
    __table_args__ = (UniqueConstraint("team_id", "recorded_at", name="uq_team_track_fix"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    recorded_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    position: Mapped[Any] = point_column()
