"""Writing a synthetic district as a OneRoster 1.1 CSV bundle, so one district can be synced as REST and as CSV.

A bulk bundle holds every record (tombstoned ones with status ``tobedeleted``, as a full REST read returns
them); a delta bundle only the records modified after an instant. Orgs and academic sessions are written parents
first, each parent's children in its ``children`` order: the CSV binding has no children column, and a reader
rebuilding the lists from ``parentSourcedId`` then gets them in the order the REST API sends.
"""

from __future__ import annotations

import csv
import os
import shutil
import uuid
import zipfile
from datetime import datetime
from pathlib import Path

from roster_pipeline.oneroster.csv_columns import HEADERS_V1P1, record_to_cells
from roster_pipeline.sandbox.generator import COLLECTIONS, SyntheticDistrict

# 1.1 files the sandbox never produces; the manifest still lists them, as the binding asks for every file.
ABSENT_FILES = ("categories", "classResources", "courseResources", "lineItems", "resources", "results")


def write_csv_bundle(
    district: SyntheticDistrict, target: Path, *, since: str | None = None, as_zip: bool = False
) -> Path:
    """Write the district as a bundle at ``target`` (a folder, or a ``.zip`` with ``as_zip``) and return it.

    ``since`` (an ISO-8601 instant) makes a delta bundle of the records whose ``dateLastModified`` is after it.
    The bundle appears at ``target`` in one rename, so a drop-folder scan never sees half of it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        _write_files(district, staging, since)
        if as_zip:
            archive = staging.with_suffix(".zip")
            with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
                for path in sorted(staging.iterdir()):
                    zipped.write(path, path.name)
            os.replace(archive, target)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_files(district: SyntheticDistrict, folder: Path, since: str | None) -> None:
    after = datetime.fromisoformat(since) if since else None
    mode = "delta" if since else "bulk"
    rows = [("manifest.version", "1.0"), ("oneroster.version", "1.1")]
    rows += [(f"file.{name}", mode) for name in COLLECTIONS]
    rows += [(f"file.{name}", "absent") for name in ABSENT_FILES]
    rows += [("source.systemName", "roster_pipeline sandbox"), ("source.systemCode", district.district_id)]
    _write_csv(folder / "manifest.csv", ("propertyName", "value"), rows)
    for collection in COLLECTIONS:
        records = _in_hierarchy_order(district.records(collection))
        if after is not None:
            records = [r for r in records if datetime.fromisoformat(r["dateLastModified"]) > after]
        headers = HEADERS_V1P1[collection]
        _write_csv(folder / f"{collection}.csv", headers, (record_to_cells(collection, r, headers) for r in records))


def _write_csv(path: Path, header: tuple[str, ...], rows: object) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")  # RFC 4180 line endings, as the binding asks
        writer.writerow(header)
        writer.writerows(rows)  # type: ignore[arg-type]


def _in_hierarchy_order(records: list[dict]) -> list[dict]:
    """Parents before children, children in their parent's ``children`` order; others keep their order."""
    if not any("parent" in r for r in records):
        return records
    by_id = {r["sourcedId"]: r for r in records}
    ordered: list[dict] = []
    placed: set[str] = set()

    def place(record: dict) -> None:
        if record["sourcedId"] in placed:
            return
        placed.add(record["sourcedId"])
        ordered.append(record)
        for child in record.get("children") or []:
            if child["sourcedId"] in by_id:
                place(by_id[child["sourcedId"]])

    for record in records:
        if not record.get("parent"):
            place(record)
    for record in records:
        place(record)
    return ordered
