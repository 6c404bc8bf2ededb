from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Dispatch(Base):
    """One team sent to one incident, with the times of each stage for later analysis.

    A partial unique index allows one active (unreleased) dispatch per team: the database itself
    refuses a double booking, whatever the code above it does.
    """

    __tablename__ = "dispatch"
    __table_args__ = (
        Index("uq_dispatch_active_team", "team_id", unique=True, postgresql_where=text("released_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), index=True)
    dispatched_by: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    # What the recommendation said when the team was sent.
    distance_m: Mapped[int | None] = mapped_column(Integer)
    eta_s: Mapped[int | None] = mapped_column(Integer)
    dispatched_at: Mapped[datetime] = mapped_column(server_default=func.now())
    en_route_at: Mapped[datetime | None]
    on_scene_at: Mapped[datetime | None]
    returning_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(120))
