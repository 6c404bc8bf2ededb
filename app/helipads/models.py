from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin
from app.enums import str_enum
from app.geo.columns import point_column


class HelipadKind(StrEnum):
    BASE = "base"  # the aviation rescue base
    TEMPORARY = "temporary"  # 临时起降点
    HOSPITAL = "hospital"
    OTHER = "other"


class HelipadStatus(StrEnum):
    USABLE = "usable"
    UNUSABLE = "unusable"


class Helipad(TimestampMixin, Base):
    __tablename__ = "helipad"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(160))
    name_en: Mapped[str] = mapped_column(String(200), default="", server_default="")
    kind: Mapped[HelipadKind] = mapped_column(str_enum(HelipadKind, "helipad_kind"))
    status: Mapped[HelipadStatus] = mapped_column(
        str_enum(HelipadStatus, "helipad_status"), default=HelipadStatus.USABLE, server_default="usable"
    )
    location: Mapped[Any] = point_column()
    township_code: Mapped[str | None] = mapped_column(ForeignKey("township.code"), index=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")
