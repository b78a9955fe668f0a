"""A district's state folder, ``<lake>/_state/district=<id>/``: the one owner of its layout and of how it is written.

What the pipeline remembers about a district between runs, apart from the landed batches:

- ``watermarks/<endpoint>.json``: where the endpoint's next delta sync starts (`Lake`);
- ``runs/<started>-<endpoint>-<nonce>.json``: one record per fetch attempt, for ``ops.sync_runs`` (`Lake`);
- ``capabilities.json``: what ``roster-pipeline check`` found (`ingest.probe`);
- ``quarantine.json``, ``release.json``, ``resync.json``: the mass-deletion guard's markers (`store.guard`);
- ``bundles/<endpoint>.json`` and ``bundles/refused/<bundle key>[.<endpoint>].json``: the CSV import log and
  the refused bundles (`ingest.csv_drops`);
- ``side-files.json``: the OneRoster 1.2 side-file ledger (`ingest.side_files`).

The fetches of a district's endpoints run in parallel, and a publish reads the guard's markers at any moment,
so every file is replaced whole (`LakeStore.write`: in a folder, a dot-named temporary file renamed over it; on a
bucket, one PUT). A reader sees the old document or the new one, never part of either; a writer killed half-way
leaves the old document.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from roster_pipeline.store.lake_store import LakeFolder, LakeStore

STATE_FOLDER = "_state"


class UnreadableStateFile(ValueError):
    """A state file holds something that is not JSON (written by hand, or damaged on disk)."""


@dataclass(frozen=True)
class StateFile:
    """One JSON document in a district's state folder."""

    store: LakeStore
    key: str

    @property
    def location(self) -> str:
        """Where the document is (a path, or an `s3://` URL), for messages."""
        return self.store.location(self.key)

    @property
    def path(self) -> Path:
        """The document's file, when the lake is a folder."""
        assert isinstance(self.store, LakeFolder), "a lake on object storage has no file paths"
        return self.store.path(self.key)

    def exists(self) -> bool:
        return self.store.read(self.key) is not None

    def read(self) -> Any:
        """The document, or None when there is none. A damaged file is an error, never taken for an absent one:
        a quarantine or a watermark silently forgotten would publish what the guard refused, or skip changes."""
        content = self.store.read(self.key)
        if content is None:
            return None
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as error:
            raise UnreadableStateFile(
                f"state file {self.location} is not readable JSON ({error}); repair it from a backup, or delete it "
                "if losing what it records is acceptable"
            ) from None

    def write(self, document: Any, *, indent: bool = False) -> None:
        """Replace the document atomically (``indent`` for files people read)."""
        self.store.write(self.key, orjson.dumps(document, option=orjson.OPT_INDENT_2 if indent else None))

    def remove(self) -> None:
        self.store.delete([self.key])


class DistrictState:
    """The state folder of one district in a lake; each named file is a `StateFile`."""

    def __init__(self, store: LakeStore, district_id: str) -> None:
        self.store, self.district_id = store, district_id
        self.prefix = f"{STATE_FOLDER}/district={district_id}/"

    @property
    def path(self) -> Path:
        """The state folder, when the lake is a folder."""
        assert isinstance(self.store, LakeFolder), "a lake on object storage has no file paths"
        return self.store.path(self.prefix)

    def watermark(self, endpoint: str) -> StateFile:
        # Watermarks have their own folder so that listing them never meets the district's other files.
        return self._file("watermarks", f"{endpoint}.json")

    def watermarks(self) -> dict[str, Any]:
        """Every endpoint's watermark document, by endpoint."""
        return {name.removesuffix(".json"): document for name, document in self._documents("watermarks")}

    def new_run_record(self, started_at: str, endpoint: str) -> StateFile:
        """A file for one fetch attempt's record, named to sort by start; parallel fetches never share one."""
        return self._file("runs", f"{started_at.replace(':', '')}-{endpoint}-{uuid.uuid4().hex[:8]}.json")

    def run_records(self) -> Iterator[tuple[str, Any]]:
        """(file name, record) of every fetch attempt, oldest first."""
        return self._documents("runs")

    @property
    def capabilities(self) -> StateFile:
        return self._file("capabilities.json")

    @property
    def quarantine(self) -> StateFile:
        return self._file("quarantine.json")

    @property
    def release(self) -> StateFile:
        return self._file("release.json")

    @property
    def resync(self) -> StateFile:
        return self._file("resync.json")

    def import_log(self, endpoint: str) -> StateFile:
        return self._file("bundles", f"{endpoint}.json")

    def refusal(self, name: str) -> StateFile:
        return self._file("bundles", "refused", f"{name}.json")

    def refusals(self) -> list[Any]:
        return [document for _, document in self._documents("bundles", "refused")]

    @property
    def side_file_ledger(self) -> StateFile:
        return self._file("side-files.json")

    def _file(self, *parts: str) -> StateFile:
        return StateFile(self.store, self.prefix + "/".join(parts))

    def _documents(self, *folder: str) -> Iterator[tuple[str, Any]]:
        """The documents directly in `folder` (a temporary file ends in .tmp, so it is never listed)."""
        where = self.prefix + "".join(f"{part}/" for part in folder)
        for key in self.store.keys(where):
            name = key[len(where) :]
            if "/" in name or not name.endswith(".json"):
                continue
            document = StateFile(self.store, key).read()
            if document is not None:
                yield name, document
