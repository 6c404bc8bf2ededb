"""Settings come only from the environment (prefix JIZHOU_, plus DATABASE_URL, HOST and PORT)."""

from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/jizhou"
# Only ever acceptable in development and tests; refused at start anywhere else.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0000"  # noqa: S105


# --- federation (issue 6) -------------------------------------------------------------------------
FEDERATION_MIN_SECRET_BYTES = 32


class FederationPartnerConfig(BaseModel):
    """One partner's keys and endpoint (JIZHOU_FEDERATION_PARTNERS is a JSON object of these by partner id).

    HMAC-SHA256 keys are per partner and per direction: `inbound_keys` (key id -> secret) are what the partner
    signs its requests to us with (several, for rotation); `outbound_key_id`/`outbound_secret` is what we sign
    our requests to it with. `endpoint` (the partner's base URL) overrides partner.endpoint in the database.
    """

    model_config = ConfigDict(extra="forbid")
    endpoint: str | None = None
    inbound_keys: dict[str, SecretStr] = {}
    outbound_key_id: str | None = None
    outbound_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _strong_secrets(self) -> "FederationPartnerConfig":
        secrets = [*self.inbound_keys.values(), *([self.outbound_secret] if self.outbound_secret else [])]
        if any(len(s.get_secret_value().encode()) < FEDERATION_MIN_SECRET_BYTES for s in secrets):
            raise ValueError(f"federation secrets must be {FEDERATION_MIN_SECRET_BYTES}+ bytes of random data")
        if (self.outbound_key_id is None) != (self.outbound_secret is None):
            raise ValueError("outbound_key_id and outbound_secret go together")
        return self


# --- end federation --------------------------------------------------------------------------------


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JIZHOU_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL", "JIZHOU_DATABASE_URL")
    )
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("HOST", "JIZHOU_HOST"))
    port: int = Field(default=8000, validation_alias=AliasChoices("PORT", "JIZHOU_PORT"))

    # Connections kept open per process. Above it, overflow connections are opened and closed as load comes and
    # goes, and every new backend starts cold (PostGIS loaded, statements planned again): at 32 concurrent
    # recommendations a pool of 10 opened ~5 backends a second, ~0.5 of a core in PostgreSQL (bench section 2).
    db_pool_size: int = 20
    db_max_overflow: int = 10
    # The hot read pool's (app.db.create_engine(hot_reads=True): the recommendation). No overflow: a request
    # past 16 in flight waits (up to the pool timeout, then 503) for a warm connection rather than open a cold
    # one; with 10 + 10 overflow, 32 clients on 2 workers started ~6 backends a second (bench section 2).
    db_read_pool_size: int = 16
    db_read_max_overflow: int = 0
    # A request never waits longer than this on the database; past it the client gets a 503.
    db_statement_timeout_ms: int = 10_000
    db_connect_timeout_s: float = 5.0

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "jizhou-emergency"
    jwt_ttl_s: int = 12 * 3600

    # Login attempts: a burst of 10, then one every 6 s, per account and per client address.
    login_rate_per_s: float = 1 / 6
    login_burst: int = 10
    # Federation requests per partner (and per address, before signatures are checked).
    federation_rate_per_s: float = 20.0
    federation_burst: int = 200

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
    # How often each process clears the live flag of fixes gone stale (teams.sweep): an index hint only,
    # so this bounds how many stale fixes the nearest-team search checks one by one, not correctness.
    dispatch_position_sweep_s: float = Field(default=30.0, gt=0)
    # Teams farther than this (straight line) are not proposed.
    dispatch_max_range_m: float = 80_000
    # How many candidates the spatial index shortlists per need before ranking by ETA.
    dispatch_shortlist: int = 24
    aviation_speed_kmh: float = 220.0
    aviation_turnout_s: int = 900
    # Federation (issue 6): who we are to partners, their keys and endpoints, and the outbox worker.
    federation_sender_id: str = "jizhou"
    federation_partners: dict[str, FederationPartnerConfig] = {}
    federation_clock_skew_s: int = 300
    federation_default_ttl_s: int = 72 * 3600
    federation_http_timeout_s: float = 10.0
    federation_retry_base_s: float = 2.0
    federation_retry_max_s: float = 300.0
    federation_worker_enabled: bool = True
    federation_worker_poll_s: float = 5.0
    # Take a partner's Ack (delivered) or permanent Error (given up) only when it carries the partner's signature
    # over this very request. Off only for a partner implementation that cannot sign its answers yet.
    federation_require_signed_answers: bool = True
    # Live feed (app/live/, docs/asyncapi.yaml).
    # Off: this process runs no hub (no LISTEN connection, no fan-out, no retention pruning) and closes every
    # /api/v1/live socket with 1013 `live_disabled`. Events are still written, so clients lose nothing: they
    # resume with since on a process that has the feed on. Its writes reach those processes by their poll.
    live_enabled: bool = True
    # Events a socket may have waiting; past it the client is closed as a slow consumer (4408).
    live_queue_size: int = Field(default=1000, ge=2)
    live_ping_interval_s: float = Field(default=20.0, gt=0)
    live_pong_timeout_s: float = Field(default=10.0, gt=0)
    # The table poll that catches events whose wake-up NOTIFY was lost or never sent (CLI, SQL).
    live_poll_interval_s: float = Field(default=0.5, gt=0)
    # At most one wake-up NOTIFY per process in this window.
    live_notify_coalesce_ms: int = Field(default=10, ge=0)
    # Under a stream of commits a hub reads and hands out at most once per this many ms, so that the events of
    # several writes travel together (one frame per `?batch=true` socket). An event after a quiet spell goes at once.
    # 100 ms: with 500 sockets the feed cost ~1.5x the writes' own CPU at 100 and ~1.8x at 50 (bench section 6),
    # while a change still reaches every screen well within the second the district asks for.
    live_cycle_spacing_ms: int = Field(default=100, ge=0)
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
        owners: dict[str, str] = {}
        for partner_id, partner in self.federation_partners.items():
            for key_id in partner.inbound_keys:
                if key_id in owners:
                    raise ValueError(f"federation key id {key_id!r} is used by {owners[key_id]} and {partner_id}")
                owners[key_id] = partner_id
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
