"""Python's cycle collector, relaxed while a step turns pages of records into frames.

A fetch step allocates a dict per record and a list per nested field; at the default threshold (a young-generation
collection every 700 new containers) CPython collected ~1,600 times in one 20,000-student district's fetch, and
every oldest-generation pass walked the millions of objects Dagster and our imports left behind: 2.9 s of a 14 s
run (bench/large_district.py). Records are not cyclic; they are freed by reference counting as each page is written.
So, for the step: objects that exist when it starts are moved out of the collector's sight (`gc.freeze`), and a
young collection waits for many more new containers. Both are undone when the step ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# New container objects between young-generation collections while relaxed (CPython's default is 700).
RELAXED_THRESHOLD = 50_000


@contextmanager
def relaxed_gc() -> Iterator[None]:
    """Collect cycles rarely, and never among the objects alive on entry, until the block ends."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(RELAXED_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
