"""The roster's tables and what feeds each, read from the endpoint table and the SQL that builds them.

Each endpoint has a state table, ``<endpoint in snake case>_all``, holding every record ever seen with the merge's
bookkeeping. The analyst tables are the views of ``sql/views.sql`` that name their endpoints in a
``-- sources:`` line; the derived tables are the blocks of ``sql/derived.sql`` and ``sql/derived_views.sql``
that name their source tables the same way, in dependency order (a multi-asset yields its outputs
topologically).
"""

from __future__ import annotations

import re

from roster_pipeline.oneroster.endpoints import ENDPOINT_NAMES
from roster_pipeline.store.sql_files import declared_sources


def state_table(endpoint: str) -> str:
    """The state table of an endpoint: ``academicSessions`` → ``academic_sessions_all``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", endpoint).lower() + "_all"


# Endpoint → state table. The analyst-facing view of each is the name without `_all` (see sql/views.sql).
STATE_TABLES: dict[str, str] = {endpoint: state_table(endpoint) for endpoint in ENDPOINT_NAMES}

# The analyst-facing tables of DESIGN.md, each a view over a state table, and the endpoints that feed it.
TABLE_SOURCES: dict[str, tuple[str, ...]] = declared_sources("views")
ROSTER_TABLES: tuple[str, ...] = tuple(TABLE_SOURCES)

# Derived analyst tables (DESIGN.md), computed from the roster tables in the same publish transaction, and the
# roster (or earlier derived) tables each is computed from.
DERIVED_SOURCES: dict[str, tuple[str, ...]] = declared_sources("derived", "derived_views")
DERIVED_TABLES: tuple[str, ...] = tuple(DERIVED_SOURCES)
