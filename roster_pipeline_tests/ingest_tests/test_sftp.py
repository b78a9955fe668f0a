"""CSV bundles over SFTP: a real asyncssh server on 127.0.0.1, password and key auth, host keys checked."""

from __future__ import annotations

import asyncssh
import pytest

from roster_pipeline.config.settings import Settings
from roster_pipeline.ingest.csv_drops import default_inbox, fetch_csv_endpoint
from roster_pipeline.ingest.sftp_inbox import SftpError
from roster_pipeline.oneroster.csv_manifest import BundleError
from roster_pipeline.sandbox.csv_export import write_csv_bundle
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline_tests.ingest_tests.conftest import csv_district, set_mtime


@pytest.fixture
def synthetic():
    return generate_district(DistrictSpec("cedar", seed=4, schools=1, students_per_school=8))


def sftp_source(server, **auth):
    return {
        "sftp": {
            "host": server.host,
            "port": server.port,
            "username": server.username,
            "remote_path": "/drop",
            **auth,
        }
    }


def fetch(district, endpoint, lake, logs=None):
    log = logs.append if logs is not None else (lambda message: None)
    return fetch_csv_endpoint(district, endpoint, lake, run_id="run-1", log=log)


def test_password_auth_with_known_hosts_entry_downloads_and_lands_a_bulk_bundle(
    sftp_server, lake, synthetic, monkeypatch
):
    monkeypatch.setenv("CEDAR_SFTP_PASSWORD", sftp_server.password)
    set_mtime(write_csv_bundle(synthetic, sftp_server.root / "drop" / "cedar-1.zip", as_zip=True), 1_000)
    district = csv_district(
        "cedar",
        sftp_source(sftp_server, password_env="CEDAR_SFTP_PASSWORD", known_hosts=sftp_server.known_hosts_line()),
    )
    outcome = fetch(district, "orgs", lake)
    assert (outcome.mode, outcome.records) == ("full", len(synthetic.records("orgs")))
    inbox = lake.root.parent / "inbox" / "cedar"
    assert sorted(p.name for p in inbox.iterdir() if not p.name.startswith(".")) == ["cedar-1.zip"]
    assert (inbox / "cedar-1.zip").stat().st_mtime == 1_000  # the server's time, which orders bundles


def test_the_inbox_is_the_settings_one_when_a_caller_passes_it(sftp_server, lake, synthetic, monkeypatch, tmp_path):
    monkeypatch.setenv("CEDAR_SFTP_PASSWORD", sftp_server.password)
    set_mtime(write_csv_bundle(synthetic, sftp_server.root / "drop" / "cedar-1.zip", as_zip=True), 1_000)
    district = csv_district(
        "cedar",
        sftp_source(sftp_server, password_env="CEDAR_SFTP_PASSWORD", known_hosts=sftp_server.known_hosts_line()),
    )
    settings = Settings.from_env(tmp_path / "elsewhere")
    fetch_csv_endpoint(district, "orgs", lake, run_id="run-1", inbox=settings.inbox_dir)
    assert (settings.inbox_dir / "cedar" / "cedar-1.zip").exists()
    assert not (lake.root.parent / "inbox").exists()
    assert default_inbox(lake) == Settings.from_env(lake.root.parent).inbox_dir == lake.root.parent / "inbox"


def test_key_auth_with_pinned_fingerprint_applies_bulk_then_delta_and_skips_seen_bundles(sftp_server, lake, synthetic):
    drop = sftp_server.root / "drop"
    set_mtime(write_csv_bundle(synthetic, drop / "cedar-1.zip", as_zip=True), 1_000)
    district = csv_district(
        "cedar",
        sftp_source(
            sftp_server, key_path=str(sftp_server.client_key_path), host_key_fingerprint=sftp_server.fingerprint
        ),
    )
    logs: list[str] = []
    assert fetch(district, "users", lake, logs).mode == "full"
    assert any("downloading cedar-1.zip" in line for line in logs)

    student = next(u for u in synthetic.records("users") if u["role"] == "student")
    synthetic.mark_tobedeleted("users", student["sourcedId"])
    set_mtime(write_csv_bundle(synthetic, drop / "cedar-2", since=synthetic.spec.base_time), 2_000)
    logs.clear()
    delta = fetch(district, "users", lake, logs)
    assert (delta.mode, delta.records, delta.mode_reason) == ("delta", 1, "bundles applied: cedar-2 (delta)")
    assert [line for line in logs if "downloading" in line] == ["cedar: downloading cedar-2 from 127.0.0.1"]
    assert [b.mode for b in lake.batches("users", "cedar")] == ["full", "delta"]

    logs.clear()
    again = fetch(district, "users", lake, logs)
    assert (again.mode, again.records) == ("none", 0)
    assert not [line for line in logs if "downloading" in line]
    assert len(lake.batches("users", "cedar")) == 2


def test_wrong_pinned_fingerprint_is_refused_with_a_clear_error(sftp_server, lake, monkeypatch):
    monkeypatch.setenv("CEDAR_SFTP_PASSWORD", sftp_server.password)
    (sftp_server.root / "drop").mkdir()
    other = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    district = csv_district(
        "cedar", sftp_source(sftp_server, password_env="CEDAR_SFTP_PASSWORD", host_key_fingerprint=other)
    )
    with pytest.raises(SftpError) as raised:
        fetch(district, "orgs", lake)
    message = str(raised.value)
    assert f"presented host key {sftp_server.fingerprint}, which does not match the pinned" in message
    assert "refusing to connect" in message
    assert not list(lake.batches("orgs", "cedar"))


def test_known_hosts_entry_for_another_key_is_refused(sftp_server, lake, monkeypatch):
    monkeypatch.setenv("CEDAR_SFTP_PASSWORD", sftp_server.password)
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    entry = f"[{sftp_server.host}]:{sftp_server.port} {other}"
    district = csv_district("cedar", sftp_source(sftp_server, password_env="CEDAR_SFTP_PASSWORD", known_hosts=entry))
    with pytest.raises(SftpError, match="does not match the registry's known_hosts entry; refusing to connect"):
        fetch(district, "orgs", lake)


def test_host_key_is_never_accepted_unchecked(sftp_server, lake, monkeypatch):
    monkeypatch.setenv("CEDAR_SFTP_PASSWORD", sftp_server.password)
    district = csv_district("cedar", sftp_source(sftp_server, password_env="CEDAR_SFTP_PASSWORD"))
    with pytest.raises(SftpError, match="needs known_hosts or host_key_fingerprint"):
        fetch(district, "orgs", lake)


def test_wrong_password_names_the_variable_to_check(sftp_server, lake, monkeypatch):
    monkeypatch.setenv("CEDAR_SFTP_PASSWORD", "not-it")
    district = csv_district(
        "cedar",
        sftp_source(sftp_server, password_env="CEDAR_SFTP_PASSWORD", host_key_fingerprint=sftp_server.fingerprint),
    )
    with pytest.raises(SftpError, match="user district-sftp was refused; check password_env CEDAR_SFTP_PASSWORD"):
        fetch(district, "orgs", lake)


def test_a_refused_bundle_stays_on_the_server_is_downloaded_once_and_a_newer_bulk_supersedes_it(
    sftp_server, lake, synthetic
):
    drop = sftp_server.root / "drop"
    set_mtime(write_csv_bundle(synthetic, drop / "cedar-1.zip", as_zip=True), 1_000)
    district = csv_district(
        "cedar",
        sftp_source(
            sftp_server, key_path=str(sftp_server.client_key_path), host_key_fingerprint=sftp_server.fingerprint
        ),
    )
    fetch(district, "orgs", lake)
    (drop / "cedar-2.zip").write_bytes(b"PK\x03\x04 the first bytes of a zip, and then the upload stopped")
    set_mtime(drop / "cedar-2.zip", 2_000)
    with pytest.raises(BundleError, match=r"district 'cedar', endpoint orgs: bundle cedar-2.zip: not a readable zip"):
        fetch(district, "orgs", lake)

    logs: list[str] = []
    later = fetch_csv_endpoint(district, "orgs", lake, run_id="run-2", log=logs.append)
    assert later.note and later.note.startswith("cedar-2.zip was refused on ")
    assert not [line for line in logs if "downloading" in line]

    set_mtime(write_csv_bundle(synthetic, drop / "cedar-3", since=synthetic.spec.base_time), 3_000)
    inbox = lake.root.parent / "inbox" / "cedar"
    with pytest.raises(BundleError) as held:
        fetch_csv_endpoint(district, "orgs", lake, run_id="run-3")
    assert str(held.value).startswith("district 'cedar', endpoint orgs: cedar-3 held, not applied, because cedar-2.zip")
    assert f"delete it from 127.0.0.1:/drop and from the inbox {inbox}.\n" in str(held.value)

    set_mtime(write_csv_bundle(synthetic, drop / "cedar-4.zip", as_zip=True), 4_000)
    assert (
        fetch_csv_endpoint(district, "orgs", lake, run_id="run-4").mode_reason == "bundles applied: cedar-4.zip (bulk)"
    )
    assert (drop / "cedar-2.zip").exists()  # files on the sender's server are theirs; the refusal is recorded here
