"""Server settings, read from ``PITSTOP_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url(file_name: str = "pitstop.db") -> str:
    data = Path(platformdirs.user_data_dir("pitstop", appauthor=False))
    return f"sqlite+aiosqlite:///{data / file_name}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PITSTOP_", extra="ignore")

    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy URL; sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    bootstrap_token: str | None = Field(
        default=None, description="Admin token to create on first start instead of a random one"
    )
    host: str = "127.0.0.1"
    port: int = 8080
    sqlite_busy_timeout_ms: int = 5000
    page_size_max: int = 500
    # Limits on what one request may ask of the server (docs/limits.md).
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body, except imports"
    )
    max_import_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest inventory import body"
    )
    max_import_rows: int = Field(
        default=5000, ge=1, description="Most devices (and groups) one inventory import holds"
    )
    workers: int = Field(default=1, ge=0, description="Job workers inside `serve`")
    worker_concurrency: int = Field(default=8, ge=1, description="Jobs each worker runs at once")
    lease_ttl_s: float = Field(
        default=15.0, gt=0, description="A dead worker's jobs move on after this"
    )
    max_running: int | None = Field(default=None, ge=1, description="Running jobs, all fabrics")
    max_running_per_fabric: int | None = Field(default=None, ge=1)
    sim_state_dir: Path | None = Field(
        default=None, description="Where simulated devices keep their state (in memory if unset)"
    )

    # Fleet: the epoch-versioned map and the maintenance watchdog (both run inside `serve`).
    epoch_interval_s: float = Field(
        default=30.0, gt=0, description="How often each fabric's fleet map gets a new epoch"
    )
    map_epochs_kept: int = Field(default=1000, ge=1, description="Published maps kept per fabric")
    watchdog_interval_s: float = Field(
        default=30.0, gt=0, description="How often overrun maintenance is looked for"
    )
    campaign_poll_interval_s: float = Field(
        default=0.5, gt=0, description="How often the campaign driver moves campaigns forward"
    )
    auth_failures_per_minute: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Failed authentications a client address may make in a minute (then 429)",
    )
    public_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="The URL users reach pitstop at; https:// marks the session cookie Secure",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated proxy addresses whose X-Forwarded-For/-Proto are believed",
    )
    web_session_secret: str = Field(
        default="",
        description="Mixed into the key that signs web sessions; the same on every replica",
    )
