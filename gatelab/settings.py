"""The one settings object that the API, the workers, the dashboard and the CLI read.

Every value comes from an environment variable named GATELAB_<FIELD> (for
example GATELAB_DATA_DIR), or from a `.env` file in the working directory.
No other module reads the environment for GateLab settings.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATELAB_", env_file=".env", extra="ignore")

    home: Path = Field(
        Path.home() / ".gatelab",
        description="Folder for the default SQLite database, caches, checkpoints and logs.",
    )
    data_dir: Path | None = Field(
        None,
        description=(
            "Folder that data sets are read from; it may be read-only. Default: HOME/data, "
            "where torchvision downloads go."
        ),
    )
    cache_dir: Path | None = Field(None, description="Folder for decoded-image caches. Default: HOME/cache.")
    artifact_dir: Path | None = Field(
        None, description="Folder for checkpoints and exports. Default: HOME/artifacts."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL. Default: a SQLite file HOME/gatelab.db. Use PostgreSQL beyond one worker.",
    )
    broker_url: str | None = Field(
        None,
        description="Celery broker URL (redis://...). When unset, `gatelab up` starts an embedded Redis.",
    )
    queue: str = Field(
        "gatelab",
        min_length=1,
        max_length=100,
        description="Celery queue that the API sends runs to and that workers read from.",
    )
    api_url: str = Field("http://127.0.0.1:8000", description="Base URL that the dashboard and the CLI call.")
    api_token: SecretStr | None = Field(
        None, description="When set, every write request needs 'Authorization: Bearer <token>'."
    )
    public_reads: bool = Field(
        True, description="When an API token is set, whether read requests are allowed without it."
    )
    device: str = Field("auto", description="Torch device for training: auto (CUDA when present), cpu, cuda or cuda:N.")
    cpu_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description=(
            "CPU threads that torch uses in each worker. Default: every core the process may use; "
            "`gatelab up --workers N` gives each of its workers an equal share."
        ),
    )
    allow_download: bool = Field(
        True, description="Whether torchvision may download CIFAR when the data directory has no copy."
    )
    max_runs_per_sweep: int = Field(1000, ge=1, description="Largest sweep that the API accepts, in runs.")
    max_request_bytes: int = Field(
        2_000_000, ge=1024, description="Largest JSON request body that the API accepts, in bytes."
    )
    max_upload_bytes: int = Field(
        500_000_000, ge=1024, description="Largest checkpoint or CSV upload that the API accepts, in bytes."
    )
    heartbeat_interval: float = Field(5.0, gt=0, description="Seconds between a worker's heartbeats.")
    heartbeat_timeout: float = Field(
        120.0, gt=0, description="Seconds without a heartbeat after which the reaper marks a run lost."
    )
    reaper_interval: float = Field(15.0, gt=0, description="Seconds between the API's checks for lost runs.")
    max_attempts: int = Field(3, ge=1, description="How many times a run is started before a lost run stays lost.")
    broker_visibility_timeout: int = Field(
        3600,
        ge=10,
        description="Seconds before Redis redelivers a task that a worker took but did not acknowledge.",
    )
    worker_name: str | None = Field(None, description="Name that a worker records on the runs it takes.")

    @property
    def resolved_data_dir(self) -> Path:
        return (self.data_dir or self.home / "data").expanduser()

    @property
    def resolved_cache_dir(self) -> Path:
        return (self.cache_dir or self.home / "cache").expanduser()

    @property
    def resolved_artifact_dir(self) -> Path:
        return (self.artifact_dir or self.home / "artifacts").expanduser()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'gatelab.db').expanduser()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per process."""
    return Settings()
