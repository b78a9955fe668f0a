"""Polars' memory allocator, tuned for a sync before Polars loads (imported first by `roster_pipeline`).

Polars allocates with its own jemalloc, which keeps what frames free for reuse: four arenas per CPU, a cache per
thread in each, and pages it has let go still resident until the kernel wants them (muzzy). A sync reads pages on
eight threads at once, so a 20,000-student district's fetch ended ~100 MB above what it used, none of which the
merge that follows (DuckDB, its own allocator) could reuse. One arena without thread caches, handing freed pages
straight back, kept that fetch's peak ~80 MB lower and was no slower (bench/large_district.py, docs/scaling.md).

jemalloc reads its options when Polars first allocates; Polars puts its own defaults first in
`_RJEM_MALLOC_CONF` and appends what it finds there, and jemalloc keeps the last value of each option. So ours
must be in the environment before Polars is imported (in a process that imported it earlier this does nothing),
and an operator's own `_RJEM_MALLOC_CONF` is kept as it is.
"""

from __future__ import annotations

import os

POLARS_MALLOC_CONF = "narenas:1,tcache:false,muzzy_decay_ms:0"

os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_MALLOC_CONF)
