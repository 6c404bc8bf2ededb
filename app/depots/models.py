import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, Numeric, String, Text, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin
from app.enums import str_enum
from app.geo.columns import point_column


class ItemCategory(StrEnum):
    BASIC_LIVING = "basic_living"  # GB/T 38565 1xx
    EQUIPMENT = "equipment"  # 2xx
    ENGINEERING = "engineering"  # 3xx


class DepotLevel(StrEnum):
    DISTRICT = "district"
    TOWNSHIP = "township"
    SOCIAL = "social"


class LedgerKind(StrEnum):
    RECEIPT = "receipt"
    ISSUE = "issue"
    ADJUSTMENT = "adjustment"
    TRANSFER = "transfer"


class Item(Base):
    """A kind of relief supply or equipment, coded after GB/T 38565."""

    __tablename__ = "item"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(96), default="", server_default="")
    unit: Mapped[str] = mapped_column(String(16))
    category: Mapped[ItemCategory] = mapped_column(str_enum(ItemCategory, "item_category"))
    # How many people one unit serves for basic living (None for equipment).
    persons_per_unit: Mapped[Decimal | None] = mapped_column(Numeric(10, 3))


class Depot(TimestampMixin, Base):
    __tablename__ = "depot"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(160))
    name_en: Mapped[str] = mapped_column(String(200), default="", server_default="")
    level: Mapped[DepotLevel] = mapped_column(str_enum(DepotLevel, "depot_level"))
    location: Mapped[Any] = point_column()
    township_code: Mapped[str | None] = mapped_column(ForeignKey("township.code"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class DepotStock(Base):
    """The current level per item: a running total of the ledger, kept in the same transaction."""

    __tablename__ = "depot_stock"
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    depot_id: Mapped[int] = mapped_column(ForeignKey("depot.id", ondelete="CASCADE"), primary_key=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("item.code"), primary_key=True, index=True)
    quantity: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class StockLedgerEntry(Base):
    """Append-only: every stock movement with its reason and actor (a trigger refuses UPDATE/DELETE)."""

    __tablename__ = "stock_ledger"
    __table_args__ = (CheckConstraint("delta <> 0", name="delta_not_zero"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    depot_id: Mapped[int] = mapped_column(ForeignKey("depot.id"), index=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("item.code"))
    delta: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[LedgerKind] = mapped_column(str_enum(LedgerKind, "ledger_kind"))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(120))
    # Both legs of a transfer share this id.
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
