"""The code location Dagster loads (`workspace.yaml`, `[tool.dagster]`): the definitions assembled in `defs/`."""

from roster_pipeline.defs.assembly import defs

__all__ = ["defs"]
