"""`roster-pipeline demo` as a user meets it: a subprocess in a new data folder, its output read line by line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from roster_pipeline.app.demo import demo_registry_yaml
from roster_pipeline.app.progress import RunLog, SyncBoard
from roster_pipeline.config.registry import parse_registry
from roster_pipeline.defs.asset_checks import DATA_CHECKS
from roster_pipeline.sandbox.demo_districts import DEMO_DISTRICTS, demo_environment

REPO_ROOT = Path(__file__).resolve().parents[2]
ROSTER_PIPELINE = Path(sys.executable).with_name("roster-pipeline")
# `make demo` used to print ~380 lines; what is left is the progress tables, the summary and the findings.
MAX_LINES = 60


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    output: str
    data_dir: Path

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_demo(data_dir: Path, *args: str) -> DemoRun:
    """`roster-pipeline demo ARGS` with only the data folder and DAGSTER_HOME set (no demo credentials)."""
    env = {k: v for k, v in os.environ.items() if k not in demo_environment() and k != "ROSTER_DISTRICTS_FILE"}
    env.pop("COLUMNS", None)
    env.update(ROSTER_DATA_DIR=str(data_dir), DAGSTER_HOME=str(data_dir.parent / "dagster_home"))
    done = subprocess.run(
        [str(ROSTER_PIPELINE), "demo", *args],
        cwd=data_dir.parent,  # not the repository: its data/districts.yaml must not be needed
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return DemoRun(done.returncode, done.stdout + done.stderr, data_dir)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo run once in a data folder that does not exist yet."""
    root = tmp_path_factory.mktemp("demo")
    return run_demo(root / "new-data", "--sandbox-port", str(free_port()))


@pytest.mark.e2e
def test_demo_in_a_new_data_folder_brings_its_own_districts(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.output
    registry = demo.data_dir / "districts.yaml"
    assert f"Wrote the demo districts to {registry}" in demo.output
    assert {d["id"] for d in yaml.safe_load(registry.read_text())["districts"]} == {"demo-oak", "demo-elm"}


@pytest.mark.e2e
def test_demo_output_is_a_short_summary_without_dagster_event_lines(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.output
    assert len(demo.lines) < MAX_LINES, demo.output
    assert not [line for line in demo.lines if " - dagster - " in line], demo.output
    for title in ("Full sync", "Delta sync", "Published in"):
        assert any(line.startswith(title) for line in demo.lines), f"no {title!r} table:\n{demo.output}"
    # One row per district in each sync table: published, with its checks counted.
    for district_id in ("demo-oak", "demo-elm"):
        rows = [line for line in demo.lines if line.startswith(f"{district_id} ") and "published" in line]
        assert len(rows) == 2, demo.output
        assert all("passed" in row for row in rows), demo.output


@pytest.mark.e2e
def test_demo_findings_are_warnings_and_the_demo_still_succeeds(demo: DemoRun) -> None:
    # The delta sync removes a student whose enrollments and guardians still name them: what real exports carry.
    assert demo.returncode == 0, demo.output
    assert "warnings" in demo.output and "Warnings: data-quality findings" in demo.output
    assert "failed" not in demo.output.lower(), demo.output
    assert "users naming an agent the district does not have" in demo.output


@pytest.mark.e2e
def test_demo_never_prints_the_demo_credentials(demo: DemoRun) -> None:
    for secret in (d.default_client_secret for d in DEMO_DISTRICTS):
        assert secret not in demo.output


@pytest.mark.e2e
def test_demo_leaves_a_queryable_roster_with_both_districts(demo: DemoRun) -> None:
    with duckdb.connect(str(demo.data_dir / "roster.duckdb"), read_only=True) as con:
        students = dict(con.execute("SELECT district_id, count(*) FROM students GROUP BY ALL").fetchall())
    assert set(students) == {"demo-oak", "demo-elm"}
    assert all(count >= 100 for count in students.values()), students


@pytest.mark.e2e
def test_verbose_demo_shows_dagster_event_lines(demo: DemoRun) -> None:
    again = run_demo(demo.data_dir, "--verbose")  # the folder now has its registry: the demo runs from it

    assert again.returncode == 0, again.output
    assert "Wrote the demo districts" not in again.output
    assert [line for line in again.lines if " - dagster - INFO - " in line], again.output
    assert any(line.startswith("demo-oak ") and "published" in line for line in again.lines)


@pytest.mark.e2e
def test_demo_says_which_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_demo(tmp_path / "data", "--sandbox-port", str(port))

    assert run.returncode == 2
    assert f"port {port} is in use" in run.output and "--sandbox-port" in run.output


@pytest.mark.e2e
def test_demo_refuses_a_registry_without_demo_districts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    registry = yaml.safe_load(demo_registry_yaml(8765))
    for district in registry["districts"]:
        district["enabled"] = False
    (data / "districts.yaml").write_text(yaml.safe_dump(registry))

    run = run_demo(data)

    assert run.returncode == 2
    assert "no enabled demo district" in run.output and "ROSTER_DATA_DIR" in run.output


def test_written_registry_holds_the_repository_demo_districts() -> None:
    written = parse_registry(yaml.safe_load(demo_registry_yaml(8765)), source="demo")
    repository = parse_registry(yaml.safe_load((REPO_ROOT / "data" / "districts.yaml").read_text()), source="data")

    def contract(registry):  # what reaching and authenticating each district depends on
        return {
            d.id: (d.enabled, d.source.kind, d.source.base_url, d.source.auth.type, d.source.auth.client_id_env)
            for d in registry.districts
        }

    assert contract(written) == contract(repository)


def test_only_a_wrong_roster_fails_a_data_check_dangling_references_warn() -> None:
    errors = {check.name for check in DATA_CHECKS if check.severity == dg.AssetCheckSeverity.ERROR}
    assert errors == {"unique_sourced_ids"}


def test_board_shows_the_running_count_of_a_long_endpoint() -> None:
    board = SyncBoard("Full sync", ["big-usd"])
    board.listener("big-usd")(RunLog(20, "oneroster__users", None, "big-usd users: 20000 records, 20 pages"))

    cell = board.rows["big-usd"].cells["users"]
    assert "20,000" in str(cell.text)  # type: ignore[union-attr]
