"""Settings: where the store is, and the few knobs an operator may turn.

Resolution order for the database URL: an explicit value (the CLI's ``--db``), then the
``CXLOOP_DATABASE_URL`` environment variable, then ``./cxloop.duckdb``. Nothing is read at import
time; call :func:`load_settings` when you need them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE = "cxloop.duckdb"


class Settings(BaseSettings):
    """Typed settings, read from ``CXLOOP_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CXLOOP_", extra="ignore")

    database_url: str = Field(default=DEFAULT_DATABASE, description="SQLAlchemy URL or a path")
    timezone: str = Field(default="UTC", description="Business time zone for naive timestamps")
    import_memory_limit: str = Field(
        default="1GB", description="DuckDB memory limit while importing; larger work spills to disk"
    )
    kpis_file: Path | None = Field(
        default=None, description="A TOML file of the business's own KPIs (docs/metrics.md)"
    )
    max_field_bytes: int = Field(
        default=1_000_000, description="Longest accepted text field; longer values are rejected"
    )


def load_settings(database_url: str | None = None) -> Settings:
    """Return settings, letting an explicit ``database_url`` win over the environment."""
    settings = Settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def normalise_database_url(value: str) -> str:
    """Turn a bare path into a DuckDB URL; leave real URLs alone.

    ``cxloop.duckdb`` -> ``duckdb:///cxloop.duckdb``; ``postgresql://...`` is returned with the
    psycopg 3 driver named, since SQLAlchemy would otherwise look for psycopg2.
    """
    if "://" not in value:
        return f"duckdb:///{Path(value).expanduser()}"
    if value.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    return value
