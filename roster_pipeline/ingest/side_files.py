"""OneRoster 1.2 CSV side files across bundles: every user keeps all of its roles through delta bundles.

A 1.2 user's role and orgs live in ``roles.csv`` (one row per role) and its credentials in
``userProfiles.csv``. A delta bundle carries only changed rows: a changed user comes without its unchanged
roles, and a changed role may belong to a user the bundle does not carry. So the district's side-file rows are
kept in a ledger (``side-files.json`` in the district's state folder, by row sourcedId): a bulk side file replaces
its part, a delta one updates and removes rows. Users of the bundle get their whole role set from the ledger,
and users whose roles changed without a ``users.csv`` row are landed again from their last landed version with
the new roles, dated no earlier than the bundle's delivery, so the merge takes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import polars as pl

from roster_pipeline.oneroster.csv_columns import SIDE_FILES_V1P2
from roster_pipeline.oneroster.csv_reader import SideRow, attach_v1p2
from roster_pipeline.oneroster.flatten import flatten_records, lake_schema
from roster_pipeline.store.district_state import StateFile
from roster_pipeline.store.lake import Lake

# The users columns a user's side-file rows decide.
DERIVED_COLUMNS = ("roles", "role", "org_sourced_ids", "user_profiles")

Items = dict[str, dict[str, list[dict[str, Any]]]]  # side file stem → user sourcedId → items, in row order


class SideFileLedger:
    """The active rows of a district's 1.2 side files, as the bundles applied so far leave them."""

    def __init__(self, stored: StateFile, rows: dict[str, dict[str, list[Any]]]) -> None:
        self.stored = stored
        self.rows = rows  # stem → row sourcedId → [user sourcedId, item]

    @classmethod
    def load(cls, lake: Lake, district_id: str) -> SideFileLedger:
        stored = lake.state(district_id).side_file_ledger
        rows = stored.read() or {}
        return cls(stored, {stem: rows.get(stem, {}) for stem in SIDE_FILES_V1P2})

    def apply(self, stem: str, mode: str, rows: Iterable[SideRow]) -> None:
        """A bulk file replaces the stem's rows; a delta file adds, changes and (tobedeleted) removes rows."""
        current = {} if mode == "bulk" else self.rows[stem]
        for row in rows:
            if row.active:
                current[row.sourced_id] = [row.user_sourced_id, row.item]
            else:
                current.pop(row.sourced_id, None)
        self.rows[stem] = current

    def items(self) -> Items:
        """Each user's items per side file, in the order their rows arrived."""
        grouped: Items = {stem: {} for stem in SIDE_FILES_V1P2}
        for stem, rows in self.rows.items():
            for user, item in rows.values():
                grouped[stem].setdefault(user, []).append(item)
        return grouped

    def save(self) -> None:
        self.stored.write(self.rows)


def changed_users(before: Items, after: Items) -> set[str]:
    """Users whose roles or profiles differ between two states of the ledger."""
    changed = set()
    for stem in SIDE_FILES_V1P2:
        for user in before[stem].keys() | after[stem].keys():
            if before[stem].get(user) != after[stem].get(user):
                changed.add(user)
    return changed


def relanded_users(lake: Lake, district_id: str, user_ids: set[str], items: Items, as_of: datetime) -> pl.DataFrame:
    """The last landed version of each active user in ``user_ids``, with its roles and profiles from ``items``.

    Each is dated ``as_of`` (the bundle's delivery) unless it already carries a later date. Users never landed,
    or last landed as deleted, are left out: there is nothing to give the roles to.
    """
    schema = lake_schema("users")
    batches = lake.batches("users", district_id)
    if not user_ids or not batches:
        return pl.DataFrame(schema=schema)
    wanted = sorted(user_ids)
    landed = pl.concat(
        [
            lake.scan(batch).filter(pl.col("sourced_id").is_in(wanted)).with_columns(_order=pl.lit(order))
            for order, batch in enumerate(batches)
        ]
    ).collect()
    latest = landed.sort("_order").unique("sourced_id", keep="last").drop("_order").filter(pl.col("status") == "active")
    if latest.is_empty():
        return pl.DataFrame(schema=schema)
    stubs = []
    for user in latest["sourced_id"]:
        stub: dict[str, Any] = {"sourcedId": user}
        attach_v1p2(stub, items["roles"].get(user, []), items["userProfiles"].get(user, []))
        stubs.append(stub)
    derived = flatten_records("users", district_id, stubs).select("sourced_id", *DERIVED_COLUMNS)
    stamp = pl.lit(as_of).cast(schema["date_last_modified"])
    return (
        latest.drop(*DERIVED_COLUMNS)
        .join(derived, on="sourced_id", how="left")
        .with_columns(date_last_modified=pl.max_horizontal("date_last_modified", stamp))
        .select(list(schema))
    )
