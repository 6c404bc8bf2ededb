"""Settings come only from the environment (prefix JIZHOU_, plus DATABASE_URL, HOST and PORT)."""

from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/jizhou"
# Only ever acceptable in development and tests; refused at start anywhere else.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0000"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JIZHOU_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL", "JIZHOU_DATABASE_URL")
    )
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("HOST", "JIZHOU_HOST"))
    port: int = Field(default=8000, validation_alias=AliasChoices("PORT", "JIZHOU_PORT"))

    db_pool_size: int = 10
    db_max_overflow: int = 10
    # A request never waits longer than this on the database; past it the client gets a 503.
    db_statement_timeout_ms: int = 10_000
    db_connect_timeout_s: float = 5.0

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "jizhou-emergency"
    jwt_ttl_s: int = 12 * 3600

    # Login attempts: a burst of 10, then one every 6 s, per account and per client address.
    login_rate_per_s: float = 1 / 6
    login_burst: int = 10

    max_body_bytes: int = 1_000_000
    max_json_depth: int = 32
    cors_origins: list[str] = []
    log_level: str = "INFO"
    log_json: bool = True

    # Paging for feature collections.
    page_default_limit: int = 100
    page_max_limit: int = 1000

    # Dispatch: ETA = turnout(kind) + distance × road factor ÷ speed. Mountain townships (the north)
    # have slower roads. A road network (pgRouting) would re-rank the shortlist by travel time instead.
    dispatch_speed_kmh: float = 45.0
    dispatch_road_factor: float = 1.35
    dispatch_mountain_road_factor: float = 1.9
    dispatch_mountain_townships: list[str] = [
        "120119104",
        "120119112",
        "120119203",
        "120119122",
        "120119102",
        "120119124",
        "120119121",
        "120119113",
    ]
    dispatch_turnout_s: dict[str, int] = {
        "fire_rescue": 60,
        "township_fire": 180,
        "forest_fire": 300,
        "hazmat": 120,
        "flood": 300,
        "geological": 600,
        "medical": 120,
        "social": 900,
        "militia": 1200,
        "enterprise": 300,
        "aviation": 900,
    }
    # A live position older than this is not trusted; the team's base is used instead.
    dispatch_position_fresh_s: int = 1800
    # Teams farther than this (straight line) are not proposed.
    dispatch_max_range_m: float = 80_000
    # How many candidates the spatial index shortlists per need before ranking by ETA.
    dispatch_shortlist: int = 24
    aviation_speed_kmh: float = 220.0
    aviation_turnout_s: int = 900

    @property
    def sqlalchemy_url(self) -> str:
        """The libpq URL turned into SQLAlchemy's asyncpg form."""
        return to_asyncpg_url(self.database_url)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        to_asyncpg_url(value)  # refuses anything but a postgresql:// URL at start
        return value

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> "Settings":
        secret = self.jwt_secret.get_secret_value()
        if self.environment == "production" and (secret == DEV_JWT_SECRET or len(secret) < 32):
            raise ValueError("JIZHOU_JWT_SECRET must be set to a random value of 32+ characters in production")
        return self


def to_asyncpg_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}")
    return urlunsplit(("postgresql+asyncpg", *parts[1:]))


@lru_cache
def get_settings() -> Settings:
    return Settings()
