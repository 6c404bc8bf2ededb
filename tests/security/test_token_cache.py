"""A token is verified once and then kept (app.auth._verified): keeping it must never accept what verifying
again would refuse."""

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from app.auth import VERIFIED_TOKENS_KEPT, _verified, decode_token, mint_token
from app.errors import Unauthorized
from app.users.models import Role
from tests.conftest import make_settings


async def test_a_token_accepted_before_is_refused_once_it_expires(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    short = token("viewer", ttl_s=2)
    headers = {"Authorization": f"Bearer {short}"}
    assert (await client.get("/api/v1/incidents", headers=headers)).status_code == 200
    assert (await client.get("/api/v1/incidents", headers=headers)).status_code == 200  # kept, still valid
    expires_at = _verified_expiry(short)
    await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.1)
    refused = await client.get("/api/v1/incidents", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "token_expired"


def _verified_expiry(token: str) -> float:
    (expiry,) = [expires_at for (kept, *_), (_, expires_at) in _verified.items() if kept == token]
    return expiry


def test_a_token_kept_under_one_secret_is_verified_again_under_another() -> None:
    first = make_settings("postgresql://unused/none")
    other = first.model_copy(update={"jwt_secret": SecretStr("another-secret-" + "y" * 40)})
    issued = mint_token(settings=first, subject="s", role=Role.COMMAND)
    assert decode_token(issued, first).role is Role.COMMAND
    with pytest.raises(Unauthorized):
        decode_token(issued, other)


def test_the_kept_tokens_are_bounded() -> None:
    settings = make_settings("postgresql://unused/none")
    for n in range(VERIFIED_TOKENS_KEPT + 10):
        decode_token(mint_token(settings=settings, subject=f"s{n}", role=Role.VIEWER), settings)
    assert len(_verified) == VERIFIED_TOKENS_KEPT
