"""The one settings object, built at start-up and passed down.

Nothing else in hotline reads the environment: the CLI and the app factory call :func:`load_settings` once and
hand the result to whatever needs it.
"""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./hotline.db"
_PBX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class PbxSettings(BaseModel):
    """One Asterisk Manager Interface endpoint; several may feed one database (``Settings.extra_pbxs``)."""

    id: str = "pbx1"
    host: str | None = None
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "hotline"
    secret: SecretStr = SecretStr("")
    dialplan_dir: Path | None = Field(
        default=None,
        description="where this PBX's rendered dialplan files go (its Asterisk must read them); default: "
        "HOTLINE_DIALPLAN_DIR for the first PBX, HOTLINE_DIALPLAN_DIR/<id> for the others",
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _PBX_ID.match(value):
            raise ValueError("PBX id must be 1-40 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @property
    def simulated(self) -> bool:
        """No host configured: the built-in PBX simulator stands in for Asterisk."""
        return not self.host


class Settings(BaseSettings):
    """hotline's configuration; every field can be set as ``HOTLINE_<NAME>`` (nested: ``HOTLINE_AMI__HOST``)."""

    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
    )

    database_url: str = DEFAULT_DATABASE_URL
    auto_migrate: bool | None = Field(
        default=None,
        description="Upgrade the schema at start-up. Default: on for SQLite files, off for PostgreSQL.",
    )
    ami: PbxSettings = Field(default_factory=PbxSettings)
    extra_pbxs: list[PbxSettings] = Field(
        default_factory=list,
        description='More PBXs feeding the same database, as JSON: [{"id": "pbx2", "host": "...", "secret": "..."}]',
    )
    leader_poll_s: float = Field(default=2.0, gt=0, le=60, description="how often a standby process tries to lead")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(
        default=1, ge=1, le=64, description="API processes `hotline serve` starts; more than 1 needs PostgreSQL"
    )
    timezone: str = "UTC"
    dialplan_dir: Path = Path("var/dialplan")
    recordings_dir: Path = Path("var/recordings")
    log_level: str = "INFO"
    wrapup_limit_s: float = Field(
        default=60.0, gt=0, le=3600, description="how long an operator may stay in wrap-up before being made available"
    )
    push_redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0 to share live console push between several hotline processes",
    )
    token_ttl_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    auth_cache_s: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="how long a process remembers a checked token (0: look it up on every request); a token "
        "revoked by another process is refused here at most this much later",
    )
    report_refresh_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="how often finished hours' report sums are stored (reports read them instead of every call)",
    )
    simulator_calls_per_hour: float = Field(default=120.0, gt=0, le=100_000)

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        if not (value.startswith("sqlite+aiosqlite://") or value.startswith("postgresql+asyncpg://")):
            raise ValueError(
                "database_url must start with 'sqlite+aiosqlite://' (embedded) or "
                "'postgresql+asyncpg://' (PostgreSQL), e.g. postgresql+asyncpg://user@127.0.0.1:5432/hotline"
            )
        return value

    @field_validator("push_redis_url")
    @classmethod
    def _valid_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("push_redis_url must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Bucharest'") from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _valid_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @model_validator(mode="after")
    def _default_auto_migrate(self) -> Settings:
        if self.auto_migrate is None:
            self.auto_migrate = self.is_sqlite
        return self

    @model_validator(mode="after")
    def _unique_pbx_ids(self) -> Settings:
        ids = self.pbx_ids
        if len(set(ids)) != len(ids):
            raise ValueError(f"PBX ids must be unique, got {ids}")
        if any(p.simulated for p in self.extra_pbxs):
            raise ValueError("every entry of extra_pbxs needs a host")
        return self

    @model_validator(mode="after")
    def _separate_dialplan_dirs(self) -> Settings:
        dirs = [self.dialplan_dir_of(pbx_id).resolve() for pbx_id in self.pbx_ids]
        if len(set(dirs)) != len(dirs):
            raise ValueError(
                "each PBX needs its own dialplan directory (each gets the files of its own lines), got "
                + ", ".join(f"{pbx_id}: {d}" for pbx_id, d in zip(self.pbx_ids, dirs, strict=True))
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def pbx_ids(self) -> list[str]:
        """Every configured PBX's id, the first (``ami``) first."""
        return [self.ami.id, *(p.id for p in self.extra_pbxs)]

    def dialplan_dir_of(self, pbx_id: str) -> Path:
        """The directory of one PBX's rendered files: its own ``dialplan_dir`` if set, else ``dialplan_dir`` for
        the first PBX (where a one-PBX hotline always wrote them) and ``dialplan_dir/<id>`` for the others."""
        for pbx in (self.ami, *self.extra_pbxs):
            if pbx.id == pbx_id:
                if pbx.dialplan_dir is not None:
                    return pbx.dialplan_dir
                return self.dialplan_dir if pbx is self.ami else self.dialplan_dir / pbx.id
        raise KeyError(pbx_id)


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and ``.env``), with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
