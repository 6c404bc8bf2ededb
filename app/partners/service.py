"""Partner districts of the joint mechanisms."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.partners.models import Partner
from app.upsert import UpsertResult, upsert_by_key


async def upsert_partners(*, session: AsyncSession, rows: list[dict[str, Any]]) -> UpsertResult:
    """rows: id, adcode, name, name_en, parent, roles, boundary (EWKT)."""
    return await upsert_by_key(session, Partner, rows, key="id")


async def list_partners(*, session: AsyncSession) -> list[Partner]:
    return list(await session.scalars(select(Partner).order_by(Partner.id)))
