"""Resources configured once: where the registry and the data folder are."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from roster_pipeline.lake import Lake
from roster_pipeline.registry import Registry, data_dir, load_registry
from roster_pipeline.warehouse import RosterWarehouse


class RosterSettings(dg.ConfigurableResource):
    """The data folder (landing zone, work and published DuckDB files) and the district registry file.

    Empty values follow ``ROSTER_DATA_DIR`` / ``ROSTER_DISTRICTS_FILE`` (defaults ``data/`` and
    ``<data>/districts.yaml``). District credentials are not here: the registry names one environment
    variable per secret, read only when a fetch needs it.
    """

    data_dir: str = ""
    districts_file: str = ""

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else data_dir()

    def registry(self) -> Registry:
        explicit = self.districts_file or os.environ.get("ROSTER_DISTRICTS_FILE")
        return load_registry(Path(explicit).resolve() if explicit else self.data_path / "districts.yaml")

    def lake(self) -> Lake:
        return Lake(self.data_path / "lake")

    def warehouse(self) -> RosterWarehouse:
        return RosterWarehouse(self.data_path, self.lake())
