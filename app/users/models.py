from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.enums import str_enum


class Role(StrEnum):
    COMMAND = "command"
    TOWNSHIP = "township"
    RESPONDER = "responder"
    VIEWER = "viewer"
    PARTNER = "partner"


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))
    township_code: Mapped[str | None] = mapped_column(ForeignKey("township.code"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"))
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partner.id"))
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
