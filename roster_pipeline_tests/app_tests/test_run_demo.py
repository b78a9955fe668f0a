"""`run_demo` in this process, in a new data folder, as `make demo` runs it: what it publishes and what it prints."""

from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from roster_pipeline.app.demo import make_edits, run_demo
from roster_pipeline.config.settings import ensure_dagster_home
from roster_pipeline.sandbox.demo_districts import DEMO_DISTRICTS, build_demo_server, demo_environment

pytestmark = pytest.mark.e2e  # a full and a delta sync of both demo districts


@dataclass(frozen=True)
class DemoOutcome:
    exit_code: int
    out: str
    err: str
    data_dir: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoOutcome]:
    """The demo run once, with only a new data folder and DAGSTER_HOME set (what `make demo` sets)."""
    root = tmp_path_factory.mktemp("run-demo")
    data_dir = root / "data"
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ROSTER_DATA_DIR", str(data_dir))
        env.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        env.delenv("ROSTER_DISTRICTS_FILE", raising=False)
        for name, value in demo_environment().items():  # the demo sets them; undone after the module
            env.setenv(name, value)
        ensure_dagster_home()  # as `roster-pipeline demo` does before run_demo
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exit_code = run_demo(sandbox_port=free_port())
        yield DemoOutcome(exit_code, out.getvalue(), err.getvalue(), data_dir)


def served_students(district_id: str) -> set[str]:
    """The active students the demo sandbox serves after the demo's edits (the generator is deterministic)."""
    district = build_demo_server(free_port()).district(district_id)
    make_edits(district)
    return {u["sourcedId"] for u in district.records("users") if u["role"] == "student" and u["status"] == "active"}


def test_run_demo_publishes_every_demo_districts_students(demo: DemoOutcome) -> None:
    assert demo.exit_code == 0, demo.out + demo.err
    with duckdb.connect(str(demo.data_dir / "roster.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT district_id, sourced_id FROM students").fetchall()
    published: dict[str, set[str]] = {}
    for district_id, sourced_id in rows:
        published.setdefault(district_id, set()).add(sourced_id)

    assert published == {d.district_id: served_students(d.district_id) for d in DEMO_DISTRICTS}


def test_run_demo_prints_a_short_green_summary(demo: DemoOutcome) -> None:
    lines = demo.out.splitlines()

    assert demo.exit_code == 0 and demo.err == "", demo.out + demo.err
    assert len(lines) < 60, demo.out
    assert "Traceback" not in demo.out
    # Asset warnings print as `warning <district>: …` and errors as `error <district> …`; the demo has neither.
    assert not [line for line in lines if line.lower().startswith(("warning ", "error ")) or "WARN" in line]
    assert "failed" not in demo.out.lower() and "not published" not in demo.out
    for demo_district in DEMO_DISTRICTS:
        rows = [line for line in lines if line.startswith(f"{demo_district.district_id} ") and "published" in line]
        assert len(rows) == 2 and all("passed" in row for row in rows), demo.out  # the full sync, then the delta
    assert lines[-2].startswith("Query it:") and lines[-1].startswith("Watch it:")
