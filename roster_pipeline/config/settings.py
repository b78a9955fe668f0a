"""Where everything lives: the one place that turns the environment into the project's paths.

`ROSTER_DATA_DIR` (default `data/` in the working directory) holds the landing zone (`lake/`), the SFTP inbox,
the work and published roster files, and by default the registry (`districts.yaml`, or `ROSTER_DISTRICTS_FILE`)
and the Dagster instance (`dagster_home/`, or `DAGSTER_HOME`). Everything else asks a `Settings` for its paths.

Beyond one machine, the published roster moves off the data folder: `ROSTER_CATALOG_URL` names its DuckLake catalog
(what follows `ducklake:`, e.g. `postgres:dbname=roster host=db user=roster`; the password comes from libpq's
`PGPASSWORD`, never the URL) and `ROSTER_FILES_URL` where its Parquet files live (a shared folder, or
`s3://bucket/roster/`). Unset or empty, the roster is a SQLite catalog and files under `<data>/roster/`.
`ROSTER_LAKE_URL` (`s3://bucket/lake/`) likewise moves the landing zone and the districts' state to object storage.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The repository's dagster.yaml: the roster_duckdb pool (one DuckDB writer) and the per-provider run limit.
PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"


# A memory size in DuckDB's units (`256MB`, `1GiB`): the number and the unit.
DUCKDB_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|[KMGT]i?B)", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """The data folder and the registry file; every other path is derived from them."""

    data_dir: Path
    districts_file: Path
    catalog_url: str | None = None
    files_url: str | None = None
    lake_url: str | None = None
    # How much memory DuckDB may use for a district's merge before it spills to disk: bounded, so several districts
    # publishing side by side on one host stay within its memory (`ROSTER_WORK_MEMORY_LIMIT`, DuckDB's units).
    # 96 MB: a 20,000-student district's whole sync peaked at 366 MB resident (415 MB under 128 MB) and took as long;
    # 50,000 students merge within it too, since the merge stopped copying each batch into the transaction
    # (merge_batch.sql). A district that outgrows it (not every operator spills) is merged again under four times
    # as much (warehouse.py), so the limit fits the common district.
    work_memory_limit: str = "96MB"

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None, districts_file: str | Path | None = None) -> Settings:
        """Explicit values first, then `ROSTER_DATA_DIR` / `ROSTER_DISTRICTS_FILE`, then the defaults; the roster's
        catalog and files from `ROSTER_CATALOG_URL` / `ROSTER_FILES_URL` (an empty value counts as unset)."""
        folder = Path(data_dir or os.environ.get("ROSTER_DATA_DIR") or "data").resolve()
        registry = districts_file or os.environ.get("ROSTER_DISTRICTS_FILE")
        catalog, files = os.environ.get("ROSTER_CATALOG_URL") or None, os.environ.get("ROSTER_FILES_URL") or None
        if catalog and "password" in catalog.lower():
            raise ValueError("ROSTER_CATALOG_URL must not carry a password (it is shown in errors): set PGPASSWORD")
        memory = os.environ.get("ROSTER_WORK_MEMORY_LIMIT") or cls.work_memory_limit
        if not DUCKDB_SIZE.fullmatch(memory):
            raise ValueError(f"ROSTER_WORK_MEMORY_LIMIT must be a size such as 256MB or 1GiB, not {memory!r}")
        lake = os.environ.get("ROSTER_LAKE_URL") or None
        districts = Path(registry).resolve() if registry else folder / "districts.yaml"
        return cls(folder, districts, catalog, files, lake, memory)

    @property
    def lake_dir(self) -> Path:
        """The landing zone: raw batches per endpoint and district, and per-district state."""
        return self.data_dir / "lake"

    @property
    def lake_root(self) -> Path | str:
        """Where the landing zone is: `ROSTER_LAKE_URL` (an `s3://` bucket and prefix), or `lake_dir`."""
        return self.lake_url or self.lake_dir

    @property
    def inbox_dir(self) -> Path:
        """Where SFTP bundles are mirrored before import, one folder per district."""
        return self.data_dir / "inbox"

    @property
    def work_dir(self) -> Path:
        """The districts' work databases, where each district's batches are merged before it is published."""
        return self.data_dir / "work"

    def work_path(self, district_id: str) -> Path:
        """One district's work database: its merged state, guard baseline and ops records."""
        return self.work_dir / f"district={district_id}.duckdb"

    @property
    def legacy_work_path(self) -> Path:
        """The single work database of versions before the DuckLake store (districts are migrated out of it)."""
        return self.work_dir / "roster-build.duckdb"

    @property
    def roster_dir(self) -> Path:
        """The published roster: a DuckLake catalog and its Parquet files."""
        return self.data_dir / "roster"

    @property
    def roster_catalog(self) -> Path:
        """The roster's DuckLake catalog (SQLite, WAL mode)."""
        return self.roster_dir / "catalog.sqlite"

    @property
    def roster_files_dir(self) -> Path:
        """The roster's Parquet data and delete files (when `ROSTER_FILES_URL` does not put them elsewhere)."""
        return self.roster_dir / "files"

    @property
    def roster_catalog_spec(self) -> str:
        """What follows `ducklake:` when the roster is attached: `ROSTER_CATALOG_URL`, or the SQLite catalog file."""
        return self.catalog_url or f"sqlite:{self.roster_catalog}"

    @property
    def roster_data_path(self) -> str:
        """Where the roster's Parquet files live: `ROSTER_FILES_URL`, or the local files folder."""
        return self.files_url or f"{self.roster_files_dir}/"

    @property
    def catalog_is_local(self) -> bool:
        """The roster's catalog is the SQLite file in the data folder (no `ROSTER_CATALOG_URL`)."""
        return self.catalog_url is None

    @property
    def roster_path(self) -> Path:
        """A self-contained DuckDB copy of the roster, written on request (`roster-pipeline export`, the demo)."""
        return self.data_dir / "roster.duckdb"

    @property
    def dagster_home(self) -> Path:
        """`DAGSTER_HOME`, or `<data>/dagster_home`."""
        return Path(os.environ.get("DAGSTER_HOME") or self.data_dir / "dagster_home").resolve()


def data_dir() -> Path:
    """The data folder: ``ROSTER_DATA_DIR`` or ``data/`` in the working directory."""
    return Settings.from_env().data_dir


def registry_path() -> Path:
    """The registry file: ``ROSTER_DISTRICTS_FILE`` or ``<data folder>/districts.yaml``."""
    return Settings.from_env().districts_file


def project_dagster_yaml() -> Path:
    """The repository's dagster.yaml, or the copy packaged beside this module."""
    return PROJECT_DAGSTER_YAML if PROJECT_DAGSTER_YAML.exists() else Path(__file__).with_name("dagster.yaml")


def instance_class() -> dict[str, Any]:
    """The `instance_class` of the project's dagster.yaml, for a temporary instance such as tests and benchmarks
    make (`dg.instance_for_test(overrides=instance_class())`)."""
    return {"instance_class": yaml.safe_load(project_dagster_yaml().read_text(encoding="utf-8"))["instance_class"]}


def ensure_dagster_home(settings: Settings | None = None) -> Path:
    """DAGSTER_HOME (default `<data>/dagster_home`), created with the project's dagster.yaml if it has none.

    An installed package without the repository around it has no dagster.yaml beside it; it gets the one packaged
    as `config/dagster.yaml`, a copy of the repository's (a test keeps the two identical)."""
    home = (settings or Settings.from_env()).dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(project_dagster_yaml(), config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def scaled_size(size: str, factor: float) -> str:
    """A DuckDB size (``128MB``, ``1.5GiB``) times ``factor``, in the same unit."""
    found = DUCKDB_SIZE.fullmatch(size.strip())
    if found is None:
        raise ValueError(f"not a size such as 256MB: {size!r}")
    return f"{float(found[1]) * factor:g}{found[2]}"
