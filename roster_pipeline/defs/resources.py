"""Resources configured once: where the registry and the data folder are."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from roster_pipeline.config.registry import Registry, load_registry
from roster_pipeline.config.settings import Settings
from roster_pipeline.store.lake import Lake
from roster_pipeline.store.warehouse import RosterWarehouse


class RosterSettings(dg.ConfigurableResource):
    """The data folder (landing zone, work and published DuckDB files) and the district registry file.

    Empty values follow ``ROSTER_DATA_DIR`` / ``ROSTER_DISTRICTS_FILE`` (defaults ``data/`` and
    ``<data>/districts.yaml``). District credentials are not here: the registry names one environment
    variable per secret, read only when a fetch needs it.
    """

    data_dir: str = ""
    districts_file: str = ""

    @property
    def paths(self) -> Settings:
        """Every path of the project, from these values and the environment (see `config.settings`)."""
        return Settings.from_env(self.data_dir or None, self.districts_file or None)

    @property
    def data_path(self) -> Path:
        return self.paths.data_dir

    def registry(self) -> Registry:
        return load_registry(self.paths.districts_file)

    def lake(self) -> Lake:
        return Lake(self.paths.lake_root)

    def warehouse(self) -> RosterWarehouse:
        return RosterWarehouse(self.paths.data_dir, self.lake())
