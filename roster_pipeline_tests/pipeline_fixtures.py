"""Building blocks for end-to-end pipeline tests: a registry pointing at the sandbox, a sync, a snapshot."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml

from roster_pipeline.app.sync import sync_district
from roster_pipeline.app.sync_results import SyncResult
from roster_pipeline.config.settings import Settings
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.defs.run_recovery import HOST_TAG, PID_TAG
from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer
from roster_pipeline.store.catalogue import DERIVED_TABLES, ROSTER_TABLES
from roster_pipeline.store.lakehouse import connect
from roster_pipeline.store.process_owners import machine


@dataclass
class PipelineWorld:
    """A data folder, a registry of sandbox districts and a Dagster instance, all under one tmp dir."""

    server: SandboxServer
    data_dir: Path
    instance: dg.DagsterInstance
    monkeypatch: pytest.MonkeyPatch
    entries: list[dict[str, Any]]

    @property
    def settings(self) -> RosterSettings:
        return RosterSettings(data_dir=str(self.data_dir), districts_file=str(self.data_dir / "districts.yaml"))

    def add_rest_district(
        self,
        district: SyntheticDistrict,
        auth_kind: str = "oauth2",
        *,
        version: str = "1.1",
        district_id: str | None = None,
        provider: str = "generic",
        auth_options: dict[str, Any] | None = None,
        registry_auth: dict[str, Any] | None = None,
        registry_entry: dict[str, Any] | None = None,
        **server_options: Any,
    ) -> None:
        """Serve `district` on the sandbox and register it.

        `version` "1.2" serves and registers it as OneRoster 1.2; `district_id` serves and registers the same
        district under another id (to sync one district twice); `provider` names the registry's provider
        profile; `auth_options` go to the sandbox's DistrictAuth (e.g. `require_scope`), `registry_auth` into
        the entry's `source.auth` (e.g. `scope`) and `registry_entry` into the entry itself (e.g. `endpoints`).
        """
        district_id = district_id or district.spec.district_id
        env_prefix = district_id.upper().replace("-", "_")
        secret = f"{district_id}-secret"
        self.server.add_district(
            district,
            auth=DistrictAuth(
                kind=auth_kind,  # type: ignore[arg-type]
                client_id=f"{district_id}-id",
                client_secret=secret,
                **(auth_options or {}),
            ),
            version=version,
            district_id=district_id,
            **server_options,
        )
        self.monkeypatch.setenv(f"{env_prefix}_ID", f"{district_id}-id")
        self.monkeypatch.setenv(f"{env_prefix}_SECRET", secret)
        auth: dict[str, Any] = {
            "type": auth_kind,
            "client_id_env": f"{env_prefix}_ID",
            "client_secret_env": f"{env_prefix}_SECRET",
            **(registry_auth or {}),
        }
        if auth_kind == "oauth2":
            auth["token_url"] = self.server.token_url(district_id)
        self.entries.append(
            {
                "id": district_id,
                "name": district_id,
                "provider": provider,
                "source": {
                    "kind": "rest",
                    "version": version,
                    "base_url": self.server.base_url(district_id),
                    "auth": auth,
                    "page_size": 50,
                },
                **(registry_entry or {}),
            }
        )
        (self.data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": self.entries}))

    def sync(self, district_id: str, *, full: bool = False) -> SyncResult:
        return sync_district(district_id, full=full, instance=self.instance, settings=self.settings)

    @property
    def paths(self) -> Settings:
        return Settings.from_env(self.data_dir)

    @property
    def published(self) -> Path:
        """The roster's catalog: it exists once a district has published."""
        return self.paths.roster_catalog

    def roster(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the published roster, as an analyst opens it."""
        return connect(self.paths)


BOOKKEEPING = {"batch_id", "snapshot_at", "tombstoned_at"}  # which batch wrote a row, not what the row says


def snapshot(world: PipelineWorld, district_id: str) -> dict[str, list[tuple]]:
    """Every analyst table's rows for a district, sorted, without columns that name the batch they came from."""
    con = world.roster()
    try:
        tables = {}
        # Link history is stamped with publish times, so it differs between any two pipelines by design.
        for table in (*ROSTER_TABLES, *(t for t in DERIVED_TABLES if t != "guardian_link_history")):
            columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall() if row[0] not in BOOKKEEPING]
            select = ", ".join(f'"{c}"' for c in columns)
            rows = con.execute(f"SELECT {select} FROM {table} WHERE district_id = ?", [district_id]).fetchall()
            tables[table] = sorted(rows, key=repr)
        return tables
    finally:
        con.close()


def base_tables(result: SyncResult) -> dict[str, int]:
    """The sync's row counts of the roster tables (the derived ones are checked by their own tests)."""
    return {table: rows for table, rows in result.tables.items() if table in ROSTER_TABLES}


def expected_counts(district: SyntheticDistrict) -> dict[str, int]:
    """Row counts the analyst tables must have for a sandbox district, computed from its records."""
    active = {name: [r for r in district.records(name) if r["status"] == "active"] for name in district.counts()}
    users = active["users"]
    return {
        "orgs": len(active["orgs"]),
        "schools": sum(1 for o in active["orgs"] if o["type"] == "school"),
        "academic_sessions": len(active["academicSessions"]),
        "users": len(users),
        "students": sum(1 for u in users if u["role"] == "student"),
        "teachers": sum(1 for u in users if u["role"] == "teacher"),
        "guardians": sum(1 for u in users if u["role"] in ("parent", "guardian", "relative")),
        "user_orgs": sum(len(u.get("orgs") or []) for u in users),
        "user_agents": sum(len(u.get("agents") or []) for u in users),
        "classes": len(active["classes"]),
        "courses": len(active["courses"]),
        "enrollments": len(active["enrollments"]),
        "demographics": len(active["demographics"]),
    }


def add_abandoned_run(instance: dg.DagsterInstance, job_name: str, **tags: str) -> dg.DagsterRun:
    """A run left STARTED by a process of this machine that no longer exists, as a killed one leaves it."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = dg.DagsterRun(
        job_name=job_name,
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags={PID_TAG: f"{dead.pid}:0", HOST_TAG: machine(), **tags},
    )
    instance.add_run(run)
    return run
