"""The ``manifest.csv`` of a OneRoster CSV bundle: which files it holds and whether each is bulk or delta.

The manifest is the bundle's contract (1.1 CSV binding §2.1): a ``propertyName,value`` table with
``manifest.version``, ``oneroster.version`` and one ``file.<name>`` row per file, valued ``bulk``, ``delta``
or ``absent``. A bundle whose manifest cannot be trusted is rejected whole — applying half of it, or applying a
delta as bulk, would tombstone or miss real records.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

FILE_MODES = ("bulk", "delta", "absent")
ONEROSTER_VERSIONS = ("1.0", "1.1", "1.2")
MANIFEST_NAME = "manifest.csv"


class BundleError(ValueError):
    """A bundle (or one of its files) that cannot be imported; the message names the bundle and what to fix."""


class ManifestError(BundleError):
    """A bundle rejected whole because of its manifest; ``problems`` lists every problem found."""

    def __init__(self, bundle: str, problems: list[str]) -> None:
        self.bundle = bundle
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"bundle {bundle}: manifest.csv rejected, the bundle is not imported:\n{lines}")


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: ``files`` maps a file stem (``users``) to ``bulk``/``delta``/``absent``."""

    oneroster_version: str
    files: Mapping[str, str]
    properties: Mapping[str, str] = field(default_factory=dict)

    def mode(self, stem: str) -> str:
        """The mode of a file; a file the manifest does not list is absent."""
        return self.files.get(stem, "absent")

    @property
    def present(self) -> list[str]:
        """Stems of the files the bundle must contain (declared bulk or delta)."""
        return [stem for stem, mode in self.files.items() if mode != "absent"]


def parse_manifest(rows: Iterable[list[str]], bundle: str) -> Manifest:
    """Validate the rows of a manifest (header first) and build the Manifest; raises ManifestError."""
    problems: list[str] = []
    iterator = iter(rows)
    try:
        header = [cell.strip() for cell in next(iterator)]
    except StopIteration:
        raise ManifestError(bundle, ["manifest.csv is empty (expected a propertyName,value header)"]) from None
    except csv.Error as error:
        raise ManifestError(bundle, [f"manifest.csv is not valid CSV: {error}"]) from None
    if [cell.lower() for cell in header[:2]] != ["propertyname", "value"]:
        problems.append(f"header is {','.join(header)!r}, expected 'propertyName,value'")
    properties: dict[str, str] = {}
    files: dict[str, str] = {}
    line = 1
    try:
        for row in iterator:
            line += 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != 2:
                problems.append(f"line {line}: expected 2 fields (propertyName,value), found {len(row)}")
                continue
            name, value = row[0].strip(), row[1].strip()
            if name in properties:
                problems.append(f"line {line}: property {name} is given twice")
                continue
            properties[name] = value
            if name.startswith("file."):
                mode = value.lower()
                if mode not in FILE_MODES:
                    problems.append(f"line {line}: {name} is {value!r}, expected one of bulk, delta, absent")
                files[name.removeprefix("file.")] = mode
    except csv.Error as error:
        problems.append(f"line {line + 1}: not valid CSV ({error})")
    version = properties.get("oneroster.version", "1.1")
    if version not in ONEROSTER_VERSIONS:
        problems.append(f"oneroster.version is {version!r}; this reader handles {', '.join(ONEROSTER_VERSIONS)}")
    if not files and not problems:
        problems.append("no file.<name> rows: the manifest does not say which files the bundle holds")
    if problems:
        raise ManifestError(bundle, problems)
    return Manifest(oneroster_version=version, files=files, properties=properties)
