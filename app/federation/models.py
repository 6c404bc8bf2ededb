"""Federation tables: the inbox (exactly once), the outbox (delivered until acknowledged), mutual-aid
requests in both directions, and what partners shared with us (incidents, warnings)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin
from app.enums import str_enum
from app.geo.columns import multipolygon_column, point_column


class OutboxState(StrEnum):
    PENDING = "pending"  # not yet acknowledged; retried with backoff, in order per partner
    DELIVERED = "delivered"  # the partner acknowledged it
    REJECTED = "rejected"  # the partner refused it for good (a 4xx Error other than auth/throttling)
    EXPIRED = "expired"  # its dateTimeExpires passed before the partner acknowledged it


class AidDirection(StrEnum):
    INBOUND = "inbound"  # a partner asks us for resources (we provide)
    OUTBOUND = "outbound"  # we ask a partner (it provides)


class AidState(StrEnum):
    REQUESTED = "requested"  # waiting for the provider's decision
    ACCEPTED = "accepted"
    DECLINED = "declined"
    COMMITTED = "committed"  # the provider's teams are assigned (booked on the provider's side)
    RELEASED = "released"
    CANCELLED = "cancelled"


class InboundMessage(Base):
    """Every accepted inbound envelope with the exact answer it got (replays get the same bytes)."""

    __tablename__ = "federation_inbound"
    __table_args__ = (
        UniqueConstraint("sender_id", "distribution_id", name="uq_federation_inbound_sender_distribution"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    sender_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    distribution_id: Mapped[str] = mapped_column(String(128))
    distribution_kind: Mapped[str] = mapped_column(String(16))
    distribution_status: Mapped[str] = mapped_column(String(16))
    content_types: Mapped[list[str]] = mapped_column(ARRAY(String(48)))
    sent_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(128))
    # sha-256 of the canonical envelope: the same distributionID with other content is refused, not replayed.
    body_sha256: Mapped[str] = mapped_column(String(64))
    envelope: Mapped[dict[str, Any]] = mapped_column(JSONB)
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    # Text, not JSONB: a replay must get the very bytes of the first answer.
    response_body: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxMessage(Base):
    """One envelope to one partner; delivered in id order per partner until acknowledged."""

    __tablename__ = "federation_outbox"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The worker's question: the oldest undelivered message of each partner.
        Index("ix_federation_outbox_pending", "partner_id", "id", postgresql_where="state = 'pending'"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    distribution_id: Mapped[str] = mapped_column(String(128), unique=True)
    distribution_kind: Mapped[str] = mapped_column(String(16))
    distribution_status: Mapped[str] = mapped_column(String(16))
    content_types: Mapped[list[str]] = mapped_column(ARRAY(String(48)))
    # The exact bytes sent on every attempt, so the partner's replay check sees one message.
    body: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]
    state: Mapped[OutboxState] = mapped_column(
        str_enum(OutboxState, "federation_outbox_state"), default=OutboxState.PENDING, server_default="pending"
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # What it is about (an aid request id, an incident id, ...), for the API's filters.
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))


class AidRequest(TimestampMixin, Base):
    """A mutual-aid request after EDXL-RM, seen from our side (we provide, or we asked)."""

    __tablename__ = "federation_aid_request"
    __table_args__ = (
        UniqueConstraint(
            "direction", "partner_id", "request_id", name="uq_federation_aid_request_direction_partner_request"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    direction: Mapped[AidDirection] = mapped_column(str_enum(AidDirection, "federation_aid_direction"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    # The requester's id for the exchange (EDXL-RM MessageID of the RequestResource).
    request_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[AidState] = mapped_column(str_enum(AidState, "federation_aid_state"), index=True)
    exercise: Mapped[bool] = mapped_column(default=False, server_default="false")
    # What is asked for: [{capability|kind, quantity, description}], as the request said.
    resources: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    incident: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    location: Mapped[Any] = point_column(nullable=True)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Provider side: our team ids named in the acceptance and booked at commit.
    team_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), default=list, server_default="{}")
    # Requester side: what the provider offered/committed (its resource descriptors).
    offered: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The event seq written with our commit: a team changed after it is no longer ours to release.
    committed_seq: Mapped[int | None] = mapped_column(BigInteger)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class SharedIncident(TimestampMixin, Base):
    """An incident a partner shared with us (NENA EIDO-like), latest version."""

    __tablename__ = "federation_incident"
    __table_args__ = (
        UniqueConstraint("partner_id", "incident_id", name="uq_federation_incident_partner_incident"),
        CheckConstraint("severity BETWEEN 1 AND 4", name="severity_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    incident_id: Mapped[str] = mapped_column(String(128))
    type_code: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(32))
    cancelled: Mapped[bool] = mapped_column(default=False, server_default="false")
    location: Mapped[Any] = point_column()
    occurred_at: Mapped[datetime]
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    exercise: Mapped[bool] = mapped_column(default=False, server_default="false")
    # The whole EIDO-like object as last received.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class SharedWarning(Base):
    """A public warning (CAP 1.2) a partner sent us, as JSON, with its area for spatial questions."""

    __tablename__ = "federation_warning"
    __table_args__ = (UniqueConstraint("partner_id", "identifier", name="uq_federation_warning_partner_identifier"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    identifier: Mapped[str] = mapped_column(String(256))
    sender: Mapped[str] = mapped_column(String(256))
    sent: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    msg_type: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    alert: Mapped[dict[str, Any]] = mapped_column(JSONB)
    area: Mapped[Any] = multipolygon_column(nullable=True)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
