"""The allocators are tuned before anything allocates much, wherever the pipeline runs, unless the operator tuned them:
Polars' jemalloc before Polars loads, and glibc's malloc so that freed large blocks leave the process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

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


# Frees 200 blocks of 512 KiB allocated between small live blocks (glibc's heap cannot give those back) in a
# process that freed a 1 MiB block before it loaded the pipeline (as one that imported Dagster first has: that
# raises glibc's default mmap threshold above 512 KiB); prints how many MiB stayed resident.
FREED_LARGE_BLOCKS = """
import os, sys
first = bytearray(1 << 20)
del first
if sys.argv[1] == "pipeline":
    import roster_pipeline
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = resident()
blocks, live = [], []
for _ in range(200):
    blocks.append(bytearray(512 * 1024))
    live.append(bytearray(1024))
del blocks
print((resident() - before) >> 20)
"""


def mib_kept_after_freeing(env: dict[str, str], *, pipeline: bool) -> int:
    args = [sys.executable, "-c", FREED_LARGE_BLOCKS, "pipeline" if pipeline else "bare"]
    return int(subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout)


GLIBC = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc is what is tuned")
UNTUNED = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"}


@GLIBC
def test_large_blocks_a_loaded_pipeline_frees_leave_the_process():
    assert mib_kept_after_freeing(UNTUNED, pipeline=True) < 10
    assert mib_kept_after_freeing(UNTUNED, pipeline=False) > 50  # glibc's default keeps them


@GLIBC
@pytest.mark.parametrize(
    "setting",
    [{"MALLOC_MMAP_THRESHOLD_": "4194304"}, {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4194304"}],
    ids=["environment variable", "tunable"],
)
def test_an_operators_own_glibc_threshold_is_kept(setting):
    assert mib_kept_after_freeing({**UNTUNED, **setting}, pipeline=True) > 50  # 512 KiB blocks stay below 4 MiB


@GLIBC
def test_other_glibc_malloc_settings_leave_the_thresholds_to_the_pipeline():
    assert mib_kept_after_freeing({**UNTUNED, "MALLOC_ARENA_MAX": "2"}, pipeline=True) < 10
