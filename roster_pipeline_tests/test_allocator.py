"""Polars' allocator is tuned before Polars loads, wherever the pipeline runs, unless the operator tuned it."""

from __future__ import annotations

import os
import subprocess
import sys

from roster_pipeline.allocator import POLARS_MALLOC_CONF

SHOW = (
    "import os, sys; import roster_pipeline.definitions; "
    "print(os.environ.get('_RJEM_MALLOC_CONF')); print('polars' in sys.modules)"
)


def allocator_options(env: dict[str, str]) -> str:
    """What Polars' jemalloc read in a new process that loaded the pipeline: Polars puts its defaults first and
    appends what it found, and jemalloc keeps the last value of each option."""
    done = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True)
    options, polars_loaded = done.stdout.split()
    assert polars_loaded == "True"
    return options


def test_the_pipeline_tunes_polars_allocator_before_polars_is_imported():
    env = {key: value for key, value in os.environ.items() if key != "_RJEM_MALLOC_CONF"}
    assert allocator_options(env).endswith("," + POLARS_MALLOC_CONF)


def test_an_operators_own_allocator_options_are_kept():
    options = allocator_options({**os.environ, "_RJEM_MALLOC_CONF": "narenas:4"})
    assert options.endswith(",narenas:4") and POLARS_MALLOC_CONF not in options
