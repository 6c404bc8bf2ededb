"""`python -m app federation deliver`: one delivery pass of the outbox (for operators and cron), the same
code the lifespan worker runs."""

import asyncio
import json

import httpx

from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.federation import outbox


async def _deliver_once() -> dict[str, object]:
    settings = get_settings()
    engine = create_engine(settings)
    try:
        async with httpx.AsyncClient(timeout=settings.federation_http_timeout_s, trust_env=False) as client:
            report = await outbox.deliver_due(create_sessionmaker(engine), settings, client)
    finally:
        await engine.dispose()
    return {
        "attempted": len(report.outcomes),
        "delivered": len(report.delivered),
        "outcomes": [
            {"id": o.outbox_id, "partner": o.partner_id, "state": o.state.value, "status": o.status, "error": o.error}
            for o in report.outcomes
        ],
    }


def deliver() -> int:
    print(json.dumps(asyncio.run(_deliver_once()), ensure_ascii=False))
    return 0
