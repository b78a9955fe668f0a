"""Where the roster lives: the data folder by default, a catalog database and a files URL beyond one machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from roster_pipeline.config.settings import Settings
from roster_pipeline.store.lakehouse import attach_sql, extensions_for


def test_by_default_the_roster_is_a_sqlite_catalog_and_files_in_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROSTER_CATALOG_URL", raising=False)
    monkeypatch.setenv("ROSTER_FILES_URL", "")  # empty counts as unset (compose passes unset variables so)
    settings = Settings.from_env(tmp_path)

    assert settings.catalog_is_local
    assert settings.roster_catalog_spec == f"sqlite:{tmp_path / 'roster' / 'catalog.sqlite'}"
    assert settings.roster_data_path == f"{tmp_path / 'roster' / 'files'}/"
    assert extensions_for(settings) == ("sqlite", "ducklake")


def test_a_catalog_url_and_files_url_move_the_roster_off_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROSTER_CATALOG_URL", "postgres:dbname=roster host=db user=roster")
    monkeypatch.setenv("ROSTER_FILES_URL", "s3://rosters/roster/")
    settings = Settings.from_env(tmp_path)

    assert not settings.catalog_is_local
    assert extensions_for(settings) == ("ducklake", "postgres", "httpfs")
    assert attach_sql(settings, read_only=True) == (
        "ATTACH 'ducklake:postgres:dbname=roster host=db user=roster' AS roster "
        "(DATA_PATH 's3://rosters/roster/', READ_ONLY)"
    )


def test_a_catalog_url_carrying_a_password_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROSTER_CATALOG_URL", "postgres:dbname=roster host=db user=roster password=hunter2")
    with pytest.raises(ValueError, match="PGPASSWORD") as refused:
        Settings.from_env(tmp_path)
    assert "hunter2" not in str(refused.value)


def test_a_districts_merge_has_bounded_memory_which_the_environment_may_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROSTER_WORK_MEMORY_LIMIT", raising=False)
    assert Settings.from_env(tmp_path).work_memory_limit == "96MB"
    monkeypatch.setenv("ROSTER_WORK_MEMORY_LIMIT", "1GiB")
    assert Settings.from_env(tmp_path).work_memory_limit == "1GiB"
    monkeypatch.setenv("ROSTER_WORK_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="ROSTER_WORK_MEMORY_LIMIT must be a size"):
        Settings.from_env(tmp_path)
