from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin
from app.geo.columns import multipolygon_column


class Partner(TimestampMixin, Base):
    """A neighbouring district in the joint linkage or joint forest-fire defence mechanism."""

    __tablename__ = "partner"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    adcode: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64), default="", server_default="")
    parent: Mapped[str] = mapped_column(String(64), default="", server_default="")
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    boundary: Mapped[Any] = multipolygon_column(nullable=True)
    # Where its federation endpoint answers; null until the agreement is configured.
    endpoint: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
