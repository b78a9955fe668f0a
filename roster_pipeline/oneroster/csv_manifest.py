"""The ``manifest.csv`` of a OneRoster CSV bundle: which files it holds and whether each is bulk or delta.

The manifest is the bundle's contract (1.1 CSV binding §2.1): a ``propertyName,value`` table with
``manifest.version``, ``oneroster.version`` and one ``file.<name>`` row per file, valued ``bulk``, ``delta``
or ``absent``. A bundle whose manifest cannot be trusted is rejected whole — applying half of it, or applying a
delta as bulk, would tombstone or miss real records. Real exports are untidier than the binding (blank values,
names in another case); what can be read only one way is read, with a note saying how, and the rest refused.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Mapping
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
    """A parsed manifest: ``files`` maps a file stem (``users``) to ``bulk``/``delta``/``absent``.

    ``notes`` (file stem → one line) say how the manifest was read where it left something to judge, such as a
    blank value; a run that reads the file repeats them, so an operator sees what was assumed.
    """

    oneroster_version: str
    files: Mapping[str, str]
    properties: Mapping[str, str] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)

    def mode(self, stem: str) -> str:
        """The mode of a file (its name in any case); a file the manifest does not list is absent."""
        wanted = stem.lower()
        return next((mode for name, mode in self.files.items() if name.lower() == wanted), "absent")

    def notes_on(self, stems: Iterable[str]) -> list[str]:
        """The notes on these files (names in any case), in manifest order."""
        wanted = {stem.lower() for stem in stems}
        return [note for stem, note in self.notes.items() if stem.lower() in wanted]

    @property
    def present(self) -> list[str]:
        """Stems of the files the bundle must contain (declared bulk or delta)."""
        return [stem for stem, mode in self.files.items() if mode != "absent"]


@dataclass(frozen=True)
class _Property:
    """One ``propertyName,value`` row and the line it is on."""

    line: int
    name: str
    value: str

    @property
    def stem(self) -> str | None:
        """The file a ``file.<stem>`` row is about; None for the other properties."""
        return self.name[len("file.") :] if self.name.lower().startswith("file.") else None

    @property
    def meaning(self) -> str:
        """The value as compared with a repeat of the row: a file's mode is read in any case."""
        return self.value if self.stem is None else self.value.lower()


def parse_manifest(rows: Iterable[list[str]], bundle: str, file_names: Collection[str]) -> Manifest:
    """Validate the rows of a manifest (header first) and build the Manifest; raises ManifestError.

    ``file_names`` are the bundle's files. Property names and file names match in any case, as SIS exports
    vary. A blank ``file.<name>`` value, which real exports write (the Moodle OneRoster plugin leaves
    ``file.userProfiles,`` blank beside a ``userprofiles.csv``), is read by what the bundle holds: bulk when
    ``<name>.csv`` is there, absent when it is not, and a note says so. What cannot be read one way only (a
    property given twice with different values, a mode that is not bulk, delta or absent) rejects the bundle.
    """
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
    given: dict[str, _Property] = {}  # by lower-case name
    line = 1
    try:
        for row in iterator:
            line += 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != 2:
                problems.append(f"line {line}: expected 2 fields (propertyName,value), found {len(row)}")
                continue
            current = _Property(line, row[0].strip(), row[1].strip())
            earlier = given.setdefault(current.name.lower(), current)
            if earlier is not current:
                if earlier.meaning != current.meaning:
                    problems.append(
                        f"line {line}: {current.name} is given twice, {_shown(current.value)} here and "
                        f"{_shown(earlier.value)} on line {earlier.line}; which one is meant is unknowable"
                    )
            elif current.stem is not None and current.meaning not in (*FILE_MODES, ""):
                problems.append(
                    f"line {line}: {current.name} is {current.value!r}, expected one of bulk, delta, absent"
                )
    except csv.Error as error:
        problems.append(f"line {line + 1}: not valid CSV ({error})")
    in_bundle = {name.lower(): name for name in file_names}
    delta = next((p for p in given.values() if p.stem is not None and p.meaning == "delta"), None)
    files: dict[str, str] = {}
    notes: dict[str, str] = {}
    for prop in given.values():
        if prop.stem is None:
            continue
        stem, mode = prop.stem, prop.meaning
        if not mode:
            blank = f"line {prop.line}: {prop.name} is blank"
            delivered = in_bundle.get(f"{stem}.csv".lower())
            if delivered is None:
                mode = "absent"
                notes[stem] = f"manifest.csv {blank} and no {stem}.csv is present, read as absent"
            elif delta is None:
                mode = "bulk"
                notes[stem] = f"manifest.csv {blank}; {delivered} is present, read as bulk"
            else:
                # Beside delta files a blank could mean either, and a delta read as bulk tombstones what it left out.
                problems.append(
                    f"{blank} and {delivered} is present, but {delta.name} is delta on line {delta.line}; "
                    f"whether {delivered} is bulk or delta is unknowable"
                )
        files[stem] = mode
    version = given["oneroster.version"].value if "oneroster.version" in given else "1.1"
    if version not in ONEROSTER_VERSIONS:
        problems.append(f"oneroster.version is {version!r}; this reader handles {', '.join(ONEROSTER_VERSIONS)}")
    if not files and not problems:
        problems.append("no file.<name> rows: the manifest does not say which files the bundle holds")
    if problems:
        raise ManifestError(bundle, problems)
    properties = {prop.name: prop.value for prop in given.values()}
    return Manifest(oneroster_version=version, files=files, properties=properties, notes=notes)


def _shown(value: str) -> str:
    return repr(value) if value else "blank"
