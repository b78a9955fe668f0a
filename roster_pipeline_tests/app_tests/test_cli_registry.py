"""`roster-pipeline registry-schema`, and the commands that take a district id when the registry has no such one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from roster_pipeline.app.cli import main
from roster_pipeline.config.registry import registry_json_schema


@pytest.fixture
def registry_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry with one CSV district, found through the environment as the command finds it."""
    path = tmp_path / "districts.yaml"
    path.write_text(yaml.safe_dump({"districts": [{"id": "oak", "source": {"kind": "csv", "path": str(tmp_path)}}]}))
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ROSTER_DISTRICTS_FILE", str(path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return path


def test_registry_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry-schema"]) == 0
    assert json.loads(capsys.readouterr().out) == registry_json_schema()


def test_registry_schema_writes_a_file_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "districts.schema.json"
    assert main(["registry-schema", "--output", str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8")) == registry_json_schema()
    assert str(target) in capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [["release", "nosuch", "--yes"], ["discard", "nosuch", "--yes"], ["sync", "nosuch"], ["check", "nosuch"]],
)
def test_an_unknown_district_is_one_line_naming_it_and_the_registry(
    command: list[str], registry_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 2
    output = capsys.readouterr()
    assert output.err.strip().splitlines() == [f"no district 'nosuch' in {registry_file} (known: oak)"]
    assert "Traceback" not in output.out + output.err


def test_a_bad_registry_is_reported_by_validate_with_every_problem(
    registry_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry_file.write_text(yaml.safe_dump({"districts": [{"id": "oak", "sourse": {}}], "timezon": "UTC"}))
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "district 'oak', field sourse: unknown key (did you mean 'source'?)" in err
    assert "district 'oak', field source: missing" in err
    assert "timezon: unknown key (did you mean 'timezone'?)" in err
