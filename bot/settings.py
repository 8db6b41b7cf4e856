"""Settings from the environment (and an optional `.env` file), with embedded defaults.

With nothing set, Atelier runs on a local Triton, a SQLite file and the local Discord
stand-in. The Discord token is a SecretStr: it prints as '**********' and is never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.sharding import group_number, shard_options


def _env(name: str) -> AliasChoices:
    """Accept both NAME and ATELIER_NAME."""
    return AliasChoices(name, f"ATELIER_{name}")


class Settings(BaseSettings):
    """Everything Atelier reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="ATELIER_", env_file=".env", extra="ignore")

    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN"))
    triton_url: str | None = Field(
        None, validation_alias=_env("TRITON_URL"), description="gRPC host:port; unset = local"
    )
    database_url: str | None = Field(
        None, validation_alias=_env("DATABASE_URL"), description="unset = SQLite in state_dir"
    )
    state_dir: Path = Path(".atelier")
    model_repository: Path = Path("model_repository")
    inference_timeout_s: float = Field(30.0, gt=0, description="end-to-end limit of one call")
    status_timeout_s: float = Field(2.0, gt=0)
    style_max_side: int = Field(1024, ge=16, description="longest side of /style results")
    max_upload_bytes: int = Field(25 * 2**20, gt=0, description="largest image read from users")
    sync_guild_id: int | None = Field(None, description="sync commands to one guild (instant)")
    log_level: str = "INFO"
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="port of the bot's Prometheus /metrics; 0 = off"
    )
    metrics_host: str = Field("127.0.0.1", description="address /metrics listens on")
    admin_user_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="may use /admin without Manage Server (comma-separated)"
    )
    triton_urls: str | None = Field(
        None,
        description="every Triton serving the repository (comma-separated); /admin loads "
        "models on each. Unset: TRITON_URL alone",
    )

    triton_repository_key: SecretStr | None = Field(
        None, description="key=value unlocking Triton's repository API (/admin); never logged"
    )
    retrain_quality_images: int = Field(
        128, ge=1, description="held-out images for the quality check of /admin retrain"
    )
    shard_count: int | None = Field(None, ge=1, description="Discord shards in all; unset = one")
    shards_per_group: int | None = Field(None, ge=1, description="shards one process runs")
    shard_group: int | None = Field(
        None, ge=0, description="this process's group: a number or a pod name ending in -N"
    )

    @field_validator("shard_group", mode="before")
    @classmethod
    def _pod_ordinal(cls, value: object) -> object:
        return group_number(value) if isinstance(value, str) and value.strip() else value

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @property
    def sharding(self) -> dict[str, int | list[int]]:
        """discord.py's shard_count/shard_ids for this process; empty when unsharded."""
        return shard_options(self.shard_count, self.shards_per_group, self.shard_group)

    @property
    def deploy_urls(self) -> list[str]:
        """The Tritons that /admin asks to load or roll back models."""
        urls = [url.strip() for url in (self.triton_urls or "").split(",") if url.strip()]
        return urls or ([self.triton_url] if self.triton_url else [])

    @property
    def sqlite_path(self) -> Path:
        return self.state_dir / "atelier.db"

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL: DATABASE_URL, or a SQLite file in the state folder."""
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"
