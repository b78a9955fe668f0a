"""The process's memory allocators, tuned for a sync before anything allocates much (imported first by
`roster_pipeline`): Polars' jemalloc, and glibc's malloc, which DuckDB, httpx and Python's large objects use.

Polars allocates with its own jemalloc, which keeps what frames free for reuse: four arenas per CPU, a cache per
thread in each, and pages it has let go still resident until the kernel wants them (muzzy). A sync reads pages on
eight threads at once, so a 20,000-student district's fetch ended ~100 MB above what it used, none of which the
merge that follows (DuckDB, on glibc's malloc) could reuse. One arena without thread caches, handing freed pages
straight back, kept that fetch's peak ~80 MB lower and was no slower (bench/large_district.py, docs/scaling.md).

jemalloc reads its options when Polars first allocates; Polars puts its own defaults first in
`_RJEM_MALLOC_CONF` and appends what it finds there, and jemalloc keeps the last value of each option. So ours
must be in the environment before Polars is imported (in a process that imported it earlier this does nothing),
and an operator's own `_RJEM_MALLOC_CONF` is kept as it is.

glibc serves a block above its mmap threshold with a mapping of its own, returned whole when freed; but the
threshold starts at 128 KiB and rises to the largest block freed so far. After the first response body or DuckDB
buffer (256 KiB) is freed, such blocks come from the heap instead, where what is freed between live blocks stays
resident. Fixed thresholds keep them mapped and give the heap's free top back: a 20,000-student district's run
peaked ~20 MB lower, no slower (bench/large_district.py, docs/scaling.md). An operator's own thresholds are kept
as they are.
"""

from __future__ import annotations

import ctypes
import os
import platform

POLARS_MALLOC_CONF = "narenas:1,tcache:false,muzzy_decay_ms:0"
GLIBC_MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD = -1


def tune_glibc_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds, unless this is not glibc or the operator set either threshold (with
    `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or a `glibc.malloc` tunable)."""
    if platform.libc_ver()[0] != "glibc" or _operator_tuned():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    # Both, since a process that freed a large block before this ran had both raised (the trim threshold to twice
    # the mmap threshold): the heap's free top would otherwise stay resident up to that much.
    fixed = mallopt(_M_MMAP_THRESHOLD, GLIBC_MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, 2 * GLIBC_MMAP_THRESHOLD)
    return bool(fixed)


def _operator_tuned() -> bool:
    named = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ)
    return bool(named) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_MALLOC_CONF)
tune_glibc_malloc()
