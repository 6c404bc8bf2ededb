"""Secrets only from the environment and refused when weak; login rate limits; CORS closed by default."""

from collections.abc import Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from app.config import DEV_JWT_SECRET, Settings
from app.main import create_app
from tests.conftest import make_settings


def test_production_refuses_default_or_weak_secrets() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(environment="production")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(environment="production", jwt_secret="short")  # type: ignore[call-arg, arg-type]
    ok = Settings(environment="production", jwt_secret="r" * 48)  # type: ignore[call-arg, arg-type]
    assert ok.jwt_secret.get_secret_value() != DEV_JWT_SECRET
    assert "r" * 48 not in repr(ok)  # secrets never printed


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone@db.example:6543/jz")
    monkeypatch.setenv("JIZHOU_CORS_ORIGINS", '["https://command.example"]')
    settings = Settings()  # type: ignore[call-arg]
    assert settings.sqlalchemy_url == "postgresql+asyncpg://someone@db.example:6543/jz"
    assert settings.cors_origins == ["https://command.example"]
    monkeypatch.setenv("DATABASE_URL", "mysql://x@y/z")
    with pytest.raises(ValidationError):
        Settings()  # type: ignore[call-arg]


async def test_login_attempts_are_rate_limited(main_db: str) -> None:
    # A bucket that does not refill within the test: on a loaded machine twelve password checks can take longer
    # than the default refill (one attempt per 6 s), and the test is about the burst, not the clock.
    app = create_app(make_settings(main_db, login_burst=10, login_rate_per_s=0.001))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        codes = []
        for _ in range(12):
            response = await client.post("/api/v1/auth/token", data={"username": "ghost", "password": "guess"})
            codes.append(response.status_code)
        assert codes[:10] == [401] * 10
        assert codes[10:] == [429, 429]
        last = await client.post("/api/v1/auth/token", data={"username": "ghost", "password": "guess"})
        assert last.json()["code"] == "rate_limited" and int(last.headers["Retry-After"]) >= 1


async def test_cors_is_closed_by_default_and_opens_only_to_configured_origins(
    main_db: str, auth: Callable[..., dict[str, str]]
) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    for origins, allowed in (([], None), (["https://command.example"], "https://command.example")):
        app = create_app(make_settings(main_db, cors_origins=origins))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            evil = await client.options("/api/v1/teams", headers=preflight)
            assert "access-control-allow-origin" not in evil.headers
            good = await client.options("/api/v1/teams", headers=preflight | {"Origin": "https://command.example"})
            assert good.headers.get("access-control-allow-origin") == allowed
