"""Bundles that must be refused whole: no or bad manifest, missing files, unsafe zips."""

from __future__ import annotations

import zipfile

import pytest

from roster_pipeline.oneroster.csv_bundle import ZipLimits, open_bundle
from roster_pipeline.oneroster.csv_manifest import BundleError, ManifestError
from roster_pipeline.oneroster.csv_reader import CsvFileReader
from roster_pipeline_tests.csv_tests.conftest import write_bundle

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
        "line 5: property file.users is given twice",
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
