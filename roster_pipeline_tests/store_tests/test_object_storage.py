"""The roster's files on S3-compatible object storage (`ROSTER_FILES_URL=s3://…`), credentials from the AWS variables.

moto's S3 server answers over real HTTP on loopback and checks every request's signature against an IAM user's key;
the districts' rows go through the store's normal publish into a real DuckLake with a local SQLite catalog.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from roster_pipeline.config.settings import Settings
from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline.oneroster.normalize import normalize_record
from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline.store.lake import Lake
from roster_pipeline.store.lakehouse import connect, extensions_for
from roster_pipeline.store.object_storage import (
    ObjectStorageCredentialsMissing,
    endpoint_options,
    s3_secret_options,
    shell_secret_sql,
)
from roster_pipeline.store.warehouse import RosterWarehouse
from roster_pipeline_tests.s3_server import Bucket

ENDPOINTS = ("academicSessions", "orgs", "users", "courses", "classes", "enrollments", "demographics")


@pytest.fixture
def warehouse(bucket: Bucket, tmp_path: Path) -> RosterWarehouse:
    return RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))


@pytest.fixture
def districts(small_district: Callable[..., SyntheticDistrict]) -> list[SyntheticDistrict]:
    shape = {"schools": 1, "students_per_school": 12, "classes_per_school": 2, "teachers_per_school": 1}
    return [small_district("oak-usd", seed=1, **shape), small_district("elm-usd", seed=2, **shape)]


def land_full_sync(warehouse: RosterWarehouse, district: SyntheticDistrict) -> None:
    """What a full sync lands: every endpoint's records, normalised and flattened, as one full batch each."""
    for endpoint in ENDPOINTS:
        writer = warehouse.lake.new_batch(endpoint, district.district_id)
        records = [normalize_record(endpoint, record) for record in district.records(endpoint)]
        writer.append(flatten_records(endpoint, district.district_id, records))
        writer.commit("full", None, district.spec.base_time)


def publish_full_syncs(warehouse: RosterWarehouse, districts: list[SyntheticDistrict]) -> None:
    for district in districts:
        land_full_sync(warehouse, district)
        warehouse.publish_district(district.district_id)


def files_holding(folder: Path, text: str) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()]


def test_districts_published_to_object_storage_are_read_back_by_analysts(
    warehouse: RosterWarehouse, bucket: Bucket, districts: list[SyntheticDistrict], tmp_path: Path
) -> None:
    publish_full_syncs(warehouse, districts)

    with connect(Settings.from_env(tmp_path)) as con:
        users = dict(con.execute("SELECT district_id, count(*) FROM users_all GROUP BY ALL").fetchall())
        [(listed,)] = con.execute("SELECT secret_string FROM duckdb_secrets() WHERE name = 'roster_files'").fetchall()
    assert users == {district.district_id: district.size("users") for district in districts}
    assert "secret=redacted" in listed and bucket.secret not in listed

    assert len(bucket.parquet_files("roster/main/users_all/")) == len(districts)  # a file of users per publish
    assert not (tmp_path / "roster" / "files").exists()
    assert (tmp_path / "roster" / "catalog.sqlite").exists()  # the catalog stays local: only the files moved
    assert files_holding(tmp_path, bucket.secret) == []


def test_a_wrong_secret_key_fails_the_publish_without_echoing_it(
    warehouse: RosterWarehouse,
    bucket: Bucket,
    districts: list[SyntheticDistrict],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "wrong" + bucket.secret[5:]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    land_full_sync(warehouse, districts[0])

    with pytest.raises(duckdb.Error) as refused:
        warehouse.publish_district(districts[0].district_id)

    assert "403" in str(refused.value) or "Forbidden" in str(refused.value), refused.value
    assert wrong not in str(refused.value) and bucket.secret not in str(refused.value)
    assert bucket.parquet_files() == []
    assert files_holding(tmp_path, wrong) == []


def test_files_on_object_storage_need_httpfs() -> None:
    settings = Settings(Path("/srv/data"), Path("/srv/data/districts.yaml"), files_url="s3://rosters/roster/")
    assert extensions_for(settings) == ("sqlite", "ducklake", "httpfs")
    on_postgres = Settings(settings.data_dir, settings.districts_file, "postgres:dbname=roster", settings.files_url)
    assert extensions_for(on_postgres) == ("ducklake", "postgres", "httpfs")


def test_a_missing_credential_is_named_before_anything_is_attached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROSTER_FILES_URL", "s3://rosters/roster/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAROSTER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "")  # empty counts as unset
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    with pytest.raises(ObjectStorageCredentialsMissing, match=r"s3://rosters/roster/.* but AWS_SECRET_ACCESS_KEY is"):
        connect(Settings.from_env(tmp_path))


def test_the_region_may_come_from_aws_default_region_and_both_are_named_when_neither_is_set() -> None:
    environ = {"AWS_ACCESS_KEY_ID": "AKIAROSTER", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert s3_secret_options("s3://rosters/", environ)["REGION"] == "eu-west-1"

    with pytest.raises(ObjectStorageCredentialsMissing) as missing:
        s3_secret_options("s3://rosters/", {**environ, "AWS_DEFAULT_REGION": ""})
    assert "AWS_REGION (or AWS_DEFAULT_REGION) is not set" in str(missing.value)
    assert "s3cr3t" not in str(missing.value)


def test_an_endpoint_url_becomes_host_and_port_with_path_style_urls() -> None:
    assert endpoint_options("http://minio:9000") == {"ENDPOINT": "minio:9000", "USE_SSL": False, "URL_STYLE": "path"}
    assert endpoint_options("https://acct.r2.cloudflarestorage.com/") == {
        "ENDPOINT": "acct.r2.cloudflarestorage.com",
        "USE_SSL": True,
        "URL_STYLE": "path",
    }
    with pytest.raises(ValueError) as refused:
        endpoint_options("http://key:hunter2@minio:9000")
    assert "hunter2" not in str(refused.value)


def test_the_analysts_shell_reads_the_files_with_credentials_it_reads_from_its_own_environment(
    warehouse: RosterWarehouse, bucket: Bucket, districts: list[SyntheticDistrict], tmp_path: Path
) -> None:
    publish_full_syncs(warehouse, districts)
    opening = shell_secret_sql(Settings.from_env(tmp_path).roster_data_path)
    assert "getenv('AWS_SECRET_ACCESS_KEY')" in opening and bucket.secret not in opening  # nothing for `ps` to show

    shell = Path(sys.executable).parent / "roster-pipeline"
    done = subprocess.run(
        [str(shell), "sql", "-csv", "-c", "SELECT count(*) FROM users_all"],
        env={**os.environ, "ROSTER_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == str(sum(district.size("users") for district in districts))
    assert bucket.secret not in done.stdout + done.stderr
