"""The Dagster instance roster_pipeline runs against: `DAGSTER_HOME`, created with our dagster.yaml if missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from roster_pipeline.registry import data_dir

# The repository's dagster.yaml: the roster_duckdb pool (one DuckDB writer) and the per-provider run limit.
PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
FALLBACK_DAGSTER_YAML = """\
concurrency:
  pools:
    default_limit: 1
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 60
telemetry:
  enabled: false
"""


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME (default `<data>/dagster_home`), created with the project's dagster.yaml if it has none."""
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        if PROJECT_DAGSTER_YAML.exists():
            shutil.copyfile(PROJECT_DAGSTER_YAML, config)
        else:  # an installed package without the repository around it
            config.write_text(FALLBACK_DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home
