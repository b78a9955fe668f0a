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
so every file is replaced whole: written to a dot-named temporary file beside it, flushed to disk, then renamed
over it. A reader sees the old document or the new one, never part of either; a writer killed half-way leaves
the old document, and a temporary file that no reader looks at.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

STATE_FOLDER = "_state"


class UnreadableStateFile(ValueError):
    """A state file holds something that is not JSON (written by hand, or damaged on disk)."""


@dataclass(frozen=True)
class StateFile:
    """One JSON document in a district's state folder."""

    path: Path

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> Any:
        """The document, or None when there is none. A damaged file is an error, never taken for an absent one:
        a quarantine or a watermark silently forgotten would publish what the guard refused, or skip changes."""
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as error:
            raise UnreadableStateFile(
                f"state file {self.path} is not readable JSON ({error}); repair it from a backup, or delete it "
                "if losing what it records is acceptable"
            ) from None

    def write(self, document: Any, *, indent: bool = False) -> None:
        """Replace the document atomically (``indent`` for files people read)."""
        write_atomic(self.path, orjson.dumps(document, option=orjson.OPT_INDENT_2 if indent else None))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class DistrictState:
    """The state folder of one district under a lake root; each named file is a `StateFile`."""

    def __init__(self, lake_root: Path, district_id: str) -> None:
        self.district_id = district_id
        self.path = Path(lake_root) / STATE_FOLDER / f"district={district_id}"

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
        return StateFile(self.path.joinpath(*parts))

    def _documents(self, *folder: str) -> Iterator[tuple[str, Any]]:
        where = self.path.joinpath(*folder)
        if not where.is_dir():
            return
        for path in sorted(where.glob("*.json")):  # a temporary file ends in .tmp, so it is never listed
            document = StateFile(path).read()
            if document is not None:
                yield path.name, document


def write_atomic(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` whole, durably: a crash leaves the old content or the new, never a mix.

    The temporary file is flushed to disk before the rename, and the folder after it: without the first, a power
    cut can leave the renamed file empty; without the second, the rename itself may be lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
