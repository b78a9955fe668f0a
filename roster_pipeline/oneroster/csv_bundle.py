"""OneRoster CSV bundles on disk: a folder or a zip holding ``manifest.csv`` and one CSV file per collection.

`open_bundle` checks a bundle before anything is read from it: the manifest must be present and valid, every
file it declares bulk or delta must exist, and a zip must be safe to read. File names match in any case, so two
CSV files whose names differ only in case refuse the bundle. Zips are read in place (never
extracted), and a zip whose member names would escape a work folder (``../``, absolute paths, drive letters,
symlinks) is refused anyway, because such a file is hostile or broken, not a roster. Declared sizes are
checked against limits before a byte is inflated; `zipfile` stops inflating a member at its declared size, so
a header that lies cannot make us read more than the limits allow.

Every fault of the bundle itself is a `BundleError`, so the drop folder can refuse the bundle and go on; a fault
of the machine (a file we may not read, a full disk) is left as the OSError it is, to be retried.
"""

from __future__ import annotations

import csv
import io
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TextIO

from roster_pipeline.oneroster.csv_manifest import (
    MANIFEST_NAME,
    BundleError,
    Manifest,
    ManifestError,
    parse_manifest,
)


@dataclass(frozen=True)
class ZipLimits:
    """Limits against zip bombs. CSV compresses about 5-20x; 200x is a bomb, not a roster."""

    max_members: int = 1_000
    max_member_bytes: int = 8 * 1024**3
    max_total_bytes: int = 16 * 1024**3
    max_ratio: float = 200.0


DEFAULT_ZIP_LIMITS = ZipLimits()

# What zipfile raises for a member whose bytes are damaged: a bad CRC, a truncated or garbled deflate stream.
CORRUPT_MEMBER_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error)


class CsvBundle:
    """A bundle's manifest and its files, opened as text streams (UTF-8, a byte-order mark is skipped)."""

    def __init__(self, name: str, manifest: Manifest, files: dict[str, str]) -> None:
        self.name = name
        self.manifest = manifest
        self._files = files  # lower-case file name → name inside the bundle

    def has(self, stem: str) -> bool:
        """Whether the bundle holds ``<stem>.csv`` (names compare case-insensitively, as SIS exports vary)."""
        return f"{stem}.csv".lower() in self._files

    def open_text(self, stem: str) -> TextIO:
        """Open ``<stem>.csv`` for the csv module (``newline=""`` keeps quoted line breaks inside cells)."""
        try:
            member = self._files[f"{stem}.csv".lower()]
        except KeyError:
            raise BundleError(f"bundle {self.name}: no {stem}.csv") from None
        # utf-8-sig drops the byte-order mark Excel and several SIS exports put before the header.
        return io.TextIOWrapper(self._open_binary(member), encoding="utf-8-sig", newline="")

    def size(self, stem: str) -> int:
        """The uncompressed size of ``<stem>.csv`` in bytes (0 when the bundle has no such file)."""
        member = self._files.get(f"{stem}.csv".lower())
        return 0 if member is None else self._member_size(member)

    def _open_binary(self, member: str) -> IO[bytes]:
        raise NotImplementedError

    def _member_size(self, member: str) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release the bundle's file handle (a zip keeps one open)."""

    def __enter__(self) -> CsvBundle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FolderBundle(CsvBundle):
    """A bundle unpacked in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.name = folder.resolve(), folder.name
        files = _by_lower_name(folder.name, [(p.name, p.name) for p in self.folder.iterdir() if p.is_file()])
        super().__init__(folder.name, _read_manifest(folder.name, files, self._open_binary), files)

    def _open_binary(self, member: str) -> IO[bytes]:
        path = (self.folder / member).resolve()
        # A symlinked users.csv pointing elsewhere on the host is not part of the delivered bundle.
        if not path.is_relative_to(self.folder):
            raise BundleError(f"bundle {self.name}: {member} points outside the bundle folder")
        return open(path, "rb")

    def _member_size(self, member: str) -> int:
        return (self.folder / member).stat().st_size


class ZipBundle(CsvBundle):
    """A zipped bundle, with the files at the root or inside one top-level folder."""

    def __init__(self, path: Path, limits: ZipLimits = DEFAULT_ZIP_LIMITS) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile as error:
            raise BundleError(f"bundle {path.name}: not a readable zip file ({error})") from None
        try:
            check_zip_safety(path.name, self._zip, limits)
            files = _zip_files(path.name, self._zip)
            try:
                manifest = _read_manifest(path.name, files, self._open_binary)
            except CORRUPT_MEMBER_ERRORS as error:
                raise BundleError(f"bundle {path.name}: zip member manifest.csv is damaged ({error})") from None
            super().__init__(path.name, manifest, files)
        except BaseException:
            self._zip.close()
            raise

    def _open_binary(self, member: str) -> IO[bytes]:
        return self._zip.open(member)

    def _member_size(self, member: str) -> int:
        return self._zip.getinfo(member).file_size

    def close(self) -> None:
        self._zip.close()


def open_bundle(path: Path, limits: ZipLimits = DEFAULT_ZIP_LIMITS) -> CsvBundle:
    """Open the bundle at ``path`` (a ``.zip`` file or a folder holding ``manifest.csv``).

    Raises BundleError (missing manifest, a declared file missing, an unsafe or damaged zip) or ManifestError;
    a bundle the pipeline may not read raises OSError.
    """
    path = Path(path)
    if path.is_dir():
        return FolderBundle(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return ZipBundle(path, limits)
    raise BundleError(f"{path} is neither a .zip file nor a folder (a OneRoster CSV bundle is one of them)")


def check_zip_safety(name: str, archive: zipfile.ZipFile, limits: ZipLimits) -> None:
    """Refuse a zip with unsafe member names, encrypted or symlinked members, or sizes beyond the limits."""
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise BundleError(f"bundle {name}: {len(members)} files in the zip, more than the limit {limits.max_members}")
    total = 0
    for info in members:
        where = f"bundle {name}: zip member {info.filename!r}"
        if not _safe_member_name(info.filename):
            raise BundleError(f"{where} would be written outside the work folder; the zip is refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BundleError(f"{where} is a symbolic link; the zip is refused")
        if info.flag_bits & 0x1:
            raise BundleError(f"{where} is encrypted; ask the sender for an unencrypted bundle")
        if info.file_size > limits.max_member_bytes:
            raise BundleError(f"{where} inflates to {info.file_size} bytes, over the {limits.max_member_bytes} limit")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > limits.max_ratio:
            raise BundleError(
                f"{where} has a compression ratio of {ratio:.0f}:1 (limit {limits.max_ratio:.0f}:1), "
                "which is a zip bomb, not a roster; the zip is refused"
            )
        total += info.file_size
    if total > limits.max_total_bytes:
        raise BundleError(f"bundle {name}: the zip inflates to {total} bytes, over the {limits.max_total_bytes} limit")


def _safe_member_name(filename: str) -> bool:
    if not filename or "\x00" in filename or filename.startswith(("/", "\\")):
        return False
    posix = PurePosixPath(filename.replace("\\", "/"))
    if ".." in posix.parts:
        return False
    first = posix.parts[0] if posix.parts else ""
    return not (len(first) >= 2 and first[1] == ":")  # C:\... on a Windows-made zip


def _zip_files(name: str, archive: zipfile.ZipFile) -> dict[str, str]:
    """Map lower-case file names to members: the root's files, or those of the one folder holding the manifest.

    Zipping a folder (rather than its contents) is the most common way a bundle gets one level deeper.
    """
    files = [info.filename for info in archive.infolist() if not info.is_dir()]
    root = [(f, f) for f in files if "/" not in f]
    if any(f.lower() == MANIFEST_NAME for f, _ in root):
        return _by_lower_name(name, root)
    folders = {f.rsplit("/", 1)[0] for f in files if f.lower().endswith("/" + MANIFEST_NAME) and f.count("/") == 1}
    if len(folders) == 1:
        folder = folders.pop()
        inside = [(f.split("/", 1)[1], f) for f in files if f.count("/") == 1 and f.startswith(folder + "/")]
        return _by_lower_name(name, inside)
    return _by_lower_name(name, root)


def _by_lower_name(bundle: str, files: list[tuple[str, str]]) -> dict[str, str]:
    """Map each file's lower-case name to where it is read from (``files`` holds (name, member) pairs).

    Names match in any case because SIS exports vary (``userprofiles.csv``, ``Users.csv``). Two CSV files that
    the folding makes one (``users.csv`` and ``Users.csv``, or a zip holding one name twice) leave which one is
    the roster unknowable, so the bundle is refused rather than one of them picked.
    """
    found: dict[str, str] = {}
    for file_name, member in sorted(files):
        key = file_name.lower()
        if key in found and key.endswith(".csv"):
            first = found[key].rsplit("/", 1)[-1]
            held = (
                f"{file_name} twice"
                if first == file_name
                else f"both {first} and {file_name}, whose names differ only in case"
            )
            raise BundleError(
                f"bundle {bundle}: holds {held}; which one is meant is unknowable. "
                "Ask the sender for a bundle with one of them"
            )
        found.setdefault(key, member)
    return found


def _read_manifest(name: str, files: dict[str, str], open_binary: Callable[[str], IO[bytes]]) -> Manifest:
    member = files.get(MANIFEST_NAME)
    if member is None:
        raise BundleError(
            f"bundle {name}: no manifest.csv. A OneRoster CSV bundle must have one saying which files are "
            "bulk, delta or absent (1.1 CSV binding §2.1); ask the sender to include it"
        )
    with io.TextIOWrapper(open_binary(member), encoding="utf-8-sig", newline="") as text:
        try:
            # The names as delivered, so a note can say which file it means ("userprofiles.csv is present").
            names = [member.rsplit("/", 1)[-1] for member in files.values()]
            manifest = parse_manifest(csv.reader(text), name, names)
        except UnicodeDecodeError as error:
            raise ManifestError(name, [f"manifest.csv is not UTF-8 text ({error.reason})"]) from None
    missing = [stem for stem in manifest.present if f"{stem}.csv".lower() not in files]
    if missing:
        raise ManifestError(
            name, [f"file.{stem} is {manifest.mode(stem)} but the bundle has no {stem}.csv" for stem in missing]
        )
    return manifest
