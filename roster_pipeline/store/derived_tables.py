"""Rebuilding a district's link and derived tables from its state tables, inside its publish transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from roster_pipeline.store.sql_files import load_sql, statements, used_params

LINKS_SQL = load_sql("links")
DERIVED_SQL = load_sql("derived")


@dataclass(frozen=True)
class SchoolSettings:
    """The registry's `schools` section for one district: (sourced_id, site_id, enabled) overrides; and its
    `pickup_metadata`: (column, guardian|student, metadata key) triples."""

    default_enabled: bool = True
    sites: tuple[tuple[str, str, bool], ...] = ()
    pickup: tuple[tuple[str, str, str], ...] = ()

    def pickup_params(self) -> dict[str, str | None]:
        """The guardian links statement's pickup parameters: whose metadata and which JSON path, per column."""
        mapped = {column: (user, key) for column, user, key in self.pickup}
        params: dict[str, str | None] = {}
        for column in ("pickup_allowed", "do_not_release", "custody_note", "valid_until"):
            user, key = mapped.get(column, ("guardian", None))
            params[f"{column}_user"] = user
            params[f"{column}_path"] = "$." + ".".join(f'"{part}"' for part in key.split(".")) if key else None
        return params


def rebuild_links(con: duckdb.DuckDBPyConnection, district_id: str) -> None:
    """Unnest the district's list columns into the link tables (user_orgs, user_agents, class_terms)."""
    for block in LINKS_SQL.values():
        for statement in statements(block):
            con.execute(statement, {"district": district_id})


def rebuild_derived(con: duckdb.DuckDBPyConnection, district_id: str, schools: SchoolSettings) -> None:
    """Copy in the district's school settings, then rebuild its guardian links and their history."""
    params = {"district": district_id, "default_enabled": schools.default_enabled}
    for statement in statements(DERIVED_SQL["school_settings"]):
        con.execute(statement, used_params(statement, params))
    for sourced_id, site_id, enabled in schools.sites:
        con.execute(
            DERIVED_SQL["insert_school_setting"],
            {"district": district_id, "sourced_id": sourced_id, "site_id": site_id, "enabled": enabled},
        )
    published_at = {"district": district_id, "published_at": datetime.now(UTC), **schools.pickup_params()}
    for name in ("guardian_student_links", "guardian_link_history"):
        for statement in statements(DERIVED_SQL[name]):
            con.execute(statement, used_params(statement, published_at))
