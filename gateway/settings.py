"""Server settings: environment variables (BACKLAY_*, plus REDIS_URL / DATABASE_URL) and flags.

Every limit has a name ending in `_max` and a safe default; `describe()` prints them at start.
"""

import re
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKLAY_", extra="ignore")

    host: str = "127.0.0.1"
    ws_port: int = 8765
    # the WebSocket library under the trading socket (gateway/links.py): the same protocol on
    # either; picows parses frames in C
    ws_server: Literal["picows", "websockets"] = "picows"
    http_port: int = 8080
    var_dir: str = "var"
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices(
        "REDIS_URL", "BACKLAY_REDIS_URL"))
    database_url: str | None = Field(default=None, validation_alias=AliasChoices(
        "DATABASE_URL", "BACKLAY_DATABASE_URL"))
    appendfsync: str = "always"  # "everysec" may lose up to 1 s of acknowledged work
    stream: str = "backlay:journal"
    currency: str = "BDT"  # the default: wallet and money requests that name none, v1 replies
    currencies: list[str] = ["BDT"]  # every currency of wallets and markets; `currency` first

    # auth
    jwt_secret: str = "backlay-development-secret-change-me"  # HS256 in development
    jwt_public_key: str | None = None  # RS256 PEM in production: set it and HS256 is refused
    allowed_origins: list[str] = ["http://127.0.0.1:8080", "http://localhost:8080"]
    auth_timeout_s: float = 5.0
    webhook_secret: str = "backlay-development-webhook-secret"
    webhook_tolerance_s: int = 300

    # engine settings that decide outcomes: journaled (a Configure command) when they change
    velocity_orders_max: int = 20  # orders per user per rolling second; 0 = off
    velocity_window_ms: int = 1_000
    house_default_liability_minor: int = 1_000_000
    house_back_ticks: int = 0
    self_limit_cooling_off_ms: int = 86_400_000  # before a bettor's raise of their own limit

    # per-connection bounds
    frame_bytes_max: int = 64 * 1024
    messages_per_s_max: float = 50.0  # token bucket refill rate
    message_burst_max: int = 100  # token bucket size
    subscriptions_max: int = 100
    send_queue_max: int = 1_000  # frames waiting for a slow client; past it market data drops
    slip_legs_max: int = 20
    connections_max: int = 10_000

    # pushes
    conflation_ms: int = 50
    heartbeat_s: float = 5.0
    exposure_push_ms: int = 250
    cancel_on_disconnect_ms: int = 500
    snapshot_every_commands: int = 100_000
    # snapshots are spaced so that taking them (fork to stored) fills at most this share of the
    # time: at 5, one that took 0.5 s is followed by the next no sooner than 10 s later. The
    # price is restart time: a crash replays every command since the last snapshot (at ~34k
    # orders/s and 1-1.5 s snapshots, up to 20-30 s of commands); raise it to restart sooner
    snapshot_time_share_max_pct: int = Field(default=5, ge=1, le=100)

    # the split shape (gateway/split/, docs/scale-out.md): `serve` with gateways > 0 runs that
    # many gateway processes in front of `shards` engine processes, over Redis Streams named
    # under wire_prefix in the wire's own Redis (no fsync: nothing there must survive; the
    # journal's Redis when unset, an embedded one when that is embedded too); a process whose
    # liveness key is older than peer_timeout_s is gone
    gateways: int = 0
    shards: int = 1
    wire_redis_url: str | None = None
    wire_prefix: str = "backlay"
    peer_timeout_s: float = 3.0

    # history (statement, cleared orders) from Postgres: how long a request waits for the
    # persister to reach the exchange's seq before it answers READ_MODEL_BEHIND
    statement_wait_ms_max: int = 3_000

    @model_validator(mode="after")
    def _default_currency_first(self) -> "Settings":
        for code in (self.currency, *self.currencies):
            if not CURRENCY_CODE.match(code):
                raise ValueError(f"a currency is three capital letters, not {code!r}")
        self.currencies = list(dict.fromkeys((self.currency, *self.currencies)))
        return self

    def unsupported(self, currency: str) -> str | None:
        """Why `currency` cannot be used here, or None when it is configured."""
        if currency in self.currencies:
            return None
        return (f"currency {currency} is not configured here; this exchange runs "
                f"{', '.join(self.currencies)}")

    def describe(self) -> str:
        hidden = {"jwt_secret", "webhook_secret", "jwt_public_key", "database_url", "redis_url",
                  "wire_redis_url"}
        return "\n".join(f"  {k} = {'***' if k in hidden and v else v}"
                         for k, v in self.model_dump().items())
