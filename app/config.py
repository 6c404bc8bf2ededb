"""Settings come only from the environment (prefix JIZHOU_, plus DATABASE_URL, HOST and PORT)."""

from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
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

    max_body_bytes: int = 1_000_000
    max_json_depth: int = 32
    cors_origins: list[str] = []
    log_level: str = "INFO"
    log_json: bool = True

    # Paging for feature collections.
    page_default_limit: int = 100
    page_max_limit: int = 1000

    # Live feed (app/live/, docs/asyncapi.yaml).
    # Events a socket may have waiting; past it the client is closed as a slow consumer (4408).
    live_queue_size: int = Field(default=1000, ge=2)
    live_ping_interval_s: float = Field(default=20.0, gt=0)
    live_pong_timeout_s: float = Field(default=10.0, gt=0)
    # The table poll that catches events whose wake-up NOTIFY was lost or never sent (CLI, SQL).
    live_poll_interval_s: float = Field(default=0.5, gt=0)
    # At most one wake-up NOTIFY per process in this window.
    live_notify_coalesce_ms: int = Field(default=10, ge=0)
    # A missing seq is taken as rolled back once every transaction that was writing to the event table when it
    # went missing has ended, and at least live_gap_grace_s has passed; past live_gap_timeout_s it is given up
    # regardless, and delivered late if it commits after all (see app/live/watermark.py).
    live_gap_grace_s: float = Field(default=0.5, ge=0)
    live_gap_timeout_s: float = Field(default=30.0, gt=0)
    live_replay_batch: int = Field(default=500, ge=1)
    # Audit needs keep events this long; the hub deletes older ones every event_prune_interval_s.
    event_retention_days: int = Field(default=400, ge=1)
    event_prune_interval_s: float = Field(default=3600.0, gt=0)

    @property
    def sqlalchemy_url(self) -> str:
        """The libpq URL turned into SQLAlchemy's asyncpg form."""
        return to_asyncpg_url(self.database_url)

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
