from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Event(Base):
    """Append-only: the live feed, the replay buffer, every timeline and the audit trail at once."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_subject", "subject_type", "subject_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    # Null for district-wide events.
    township_code: Mapped[str | None] = mapped_column(String(9))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(120))
    exercise: Mapped[bool] = mapped_column(default=False, server_default="false")
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
