"""Bundles that must be refused whole: no or bad manifest, missing files, unsafe zips."""

from __future__ import annotations

import re
import zipfile

import pytest

from roster_pipeline.oneroster.csv_bundle import ZipLimits, open_bundle
from roster_pipeline.oneroster.csv_manifest import BundleError, ManifestError
from roster_pipeline.oneroster.csv_reader import CsvFileReader
from roster_pipeline_tests.ingest_tests.conftest import write_bundle

ORGS = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\r\nd1,,,District,district,,\r\n"


def test_bundle_without_manifest_is_refused_with_a_clear_error(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "orgs.csv").write_text(ORGS)
    with pytest.raises(BundleError, match=r"bundle b: no manifest.csv\. A OneRoster CSV bundle must have one"):
        open_bundle(folder)


def test_bad_manifest_lists_every_problem_and_rejects_the_bundle(tmp_path):
    manifest = (
        "propertyName,value\r\noneroster.version,1.1\r\nfile.orgs,bulky\r\nfile.users,delta\r\n"
        "file.users,bulk\r\nfile.classes\r\n"
    )
    path = write_bundle(tmp_path / "b", {"orgs": ORGS}, manifest=manifest)
    with pytest.raises(ManifestError) as raised:
        open_bundle(path)
    assert raised.value.problems == [
        "line 3: file.orgs is 'bulky', expected one of bulk, delta, absent",
        "line 5: file.users is given twice, 'bulk' here and 'delta' on line 4; which one is meant is unknowable",
        "line 6: expected 2 fields (propertyName,value), found 1",
    ]
    assert "manifest.csv rejected, the bundle is not imported" in str(raised.value)


def test_manifest_declaring_a_file_the_bundle_lacks_is_rejected(tmp_path):
    path = write_bundle(tmp_path / "b", {"orgs": ORGS}, modes={"orgs": "bulk"})
    (path / "manifest.csv").write_text(
        (path / "manifest.csv").read_text().replace("file.users,absent", "file.users,delta")
    )
    with pytest.raises(ManifestError, match=r"file.users is delta but the bundle has no users.csv"):
        open_bundle(path)


def test_manifest_with_wrong_header_or_version_is_rejected(tmp_path):
    path = write_bundle(tmp_path / "b", {"orgs": ORGS}, manifest="name,val\r\noneroster.version,3.0\r\nfile.orgs,bulk")
    with pytest.raises(ManifestError) as raised:
        open_bundle(path)
    assert raised.value.problems == [
        "header is 'name,val', expected 'propertyName,value'",
        "oneroster.version is '3.0'; this reader handles 1.0, 1.1, 1.2",
    ]


def test_file_header_without_sourced_id_is_refused(tmp_path):
    path = write_bundle(tmp_path / "b", {"orgs": "id,name\r\n1,x\r\n"})
    with open_bundle(path) as bundle, pytest.raises(BundleError, match=r"b/orgs.csv: the header has no sourcedId"):
        list(CsvFileReader(bundle, "orgs").batches())


def test_zip_with_the_bundle_inside_one_folder_is_read(tmp_path):
    folder = write_bundle(tmp_path / "export", {"orgs": ORGS})
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in folder.iterdir():
            zipped.write(path, f"export/{path.name}")
    with open_bundle(archive) as bundle:
        assert bundle.manifest.mode("orgs") == "bulk"
        assert [r["sourcedId"] for batch in CsvFileReader(bundle, "orgs").batches() for r in batch] == ["d1"]


@pytest.mark.parametrize("member", ["../escape.csv", "/etc/cron.d/evil", "ok/../../escape.csv", "C:\\evil.csv"])
def test_zip_with_a_path_escaping_the_work_folder_is_refused(tmp_path, member):
    folder = write_bundle(tmp_path / "b", {"orgs": ORGS})
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in folder.iterdir():
            zipped.write(path, path.name)
        zipped.writestr(member, "x")
    with pytest.raises(BundleError, match="would be written outside the work folder; the zip is refused"):
        open_bundle(archive)


def test_zip_bomb_is_refused_before_anything_is_inflated(tmp_path):
    folder = write_bundle(tmp_path / "b", {"orgs": ORGS})
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in folder.iterdir():
            zipped.write(path, path.name)
        zipped.writestr("users.csv", b"0" * (20 * 1024 * 1024))  # ~1000:1
    with pytest.raises(BundleError, match=r"compression ratio of \d+:1 \(limit 200:1\).*zip bomb"):
        open_bundle(archive)


def test_zip_over_the_size_limit_is_refused(tmp_path):
    folder = write_bundle(tmp_path / "b", {"orgs": ORGS})
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        for path in folder.iterdir():
            zipped.write(path, path.name)
    with pytest.raises(BundleError, match=r"inflates to .* bytes, over the 100 limit"):
        open_bundle(archive, ZipLimits(max_total_bytes=100))


def damage(archive, member: str) -> None:
    """Garble a stretch of a zip member's compressed bytes, as a bad disk or a broken transfer would."""
    with zipfile.ZipFile(archive) as zipped:
        info = zipped.getinfo(member)
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    for offset in range(start, start + 8):
        data[offset] ^= 0xFF
    archive.write_bytes(bytes(data))


def zipped_bundle(tmp_path, files: dict[str, str]):
    folder = write_bundle(tmp_path / "b", files)
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.iterdir()):
            zipped.write(path, path.name)
    return archive


def test_zip_with_a_damaged_manifest_is_refused_as_damaged(tmp_path):
    archive = zipped_bundle(tmp_path, {"orgs": ORGS})
    damage(archive, "manifest.csv")
    with pytest.raises(BundleError, match=r"bundle damaged.zip: zip member manifest.csv is damaged"):
        open_bundle(archive)


def test_zip_with_a_damaged_file_is_refused_naming_the_file_and_line(tmp_path):
    schools = "".join(f"s{n},,,School {n * 7919 % 1000},school,,d1\r\n" for n in range(3_000))
    archive = zipped_bundle(tmp_path, {"orgs": ORGS + schools})
    damage(archive, "orgs.csv")
    with open_bundle(archive) as bundle, pytest.raises(BundleError) as raised:
        list(CsvFileReader(bundle, "orgs").batches())
    assert re.match(r"damaged.zip/orgs.csv, near line \d+: the zip member is damaged \(", str(raised.value))


def test_manifest_that_is_not_utf8_is_rejected_like_any_bad_manifest(tmp_path):
    path = write_bundle(tmp_path / "b", {"orgs": ORGS})
    (path / "manifest.csv").write_bytes("propertyName,value\r\nsource.systemName,Écoles\r\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"manifest.csv is not UTF-8 text \(invalid continuation byte\)"):
        open_bundle(path)
