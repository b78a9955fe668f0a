"""What a data engineer sees in the Dagster UI, read through the webserver's GraphQL API."""

from __future__ import annotations

import pytest

from roster_pipeline.defs.asset_checks import DATA_CHECKS
from roster_pipeline_tests.defs_tests.ui_tests.conftest import DagsterUI

pytestmark = pytest.mark.e2e  # a real dagster webserver

ASSET_NODES = """
{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name blocking } }
      ... on Error { message }
    }
  }
}
"""

AUTOMATION = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        schedules { name defaultStatus scheduleState { status } }
        sensors { name defaultStatus sensorState { status } }
      }
    }
    ... on PythonError { message }
  }
}
"""


def asset_nodes(ui: DagsterUI) -> dict[str, dict]:
    return {"/".join(node["assetKey"]["path"]): node for node in ui.graphql(ASSET_NODES)["assetNodes"]}


def upstream(node: dict) -> set[str]:
    return {"/".join(key["path"]) for key in node["dependencyKeys"]}


def test_asset_graph_holds_fetch_roster_derived_lineage(dagster_ui: DagsterUI) -> None:
    nodes = asset_nodes(dagster_ui)

    assert nodes["oneroster/users"]["groupName"] == "oneroster"
    assert upstream(nodes["oneroster/users"]) == set()
    assert nodes["roster/users"]["groupName"] == "roster"
    assert "oneroster/users" in upstream(nodes["roster/users"])
    assert nodes["roster/guardian_student_links"]["groupName"] == "derived"
    assert {"roster/users", "roster/user_agents"} <= upstream(nodes["roster/guardian_student_links"])

    groups = {key: node["groupName"] for key, node in nodes.items()}
    for key, node in nodes.items():
        upstream_groups = {groups[dep] for dep in upstream(node)}
        if groups[key] == "oneroster":
            assert key.startswith("oneroster/") and not upstream_groups, key
        elif groups[key] == "roster":
            assert upstream_groups == {"oneroster"}, key
        elif groups[key] == "roster_store":  # the store's upkeep, on its own schedule
            assert key == "roster_store/maintenance" and not upstream_groups, key
        else:
            assert groups[key] == "derived" and upstream_groups <= {"roster", "derived"}, key


def test_schedules_and_registry_sensor_start_running(dagster_ui: DagsterUI) -> None:
    (repository,) = dagster_ui.graphql(AUTOMATION)["repositoriesOrError"]["nodes"]
    schedules = {s["name"]: (s["defaultStatus"], s["scheduleState"]["status"]) for s in repository["schedules"]}
    sensors = {s["name"]: (s["defaultStatus"], s["sensorState"]["status"]) for s in repository["sensors"]}

    for name in ("nightly_delta_sync", "weekly_full_reconciliation", "freshness_check_schedule"):
        assert schedules.get(name) == ("RUNNING", "RUNNING"), f"schedule {name}: {schedules.get(name)}"
    assert sensors.get("district_registry_sensor") == ("RUNNING", "RUNNING"), sensors


def test_asset_checks_are_shown_on_their_assets(dagster_ui: DagsterUI) -> None:
    checks: dict[tuple[str, str], bool] = {}
    for key, node in asset_nodes(dagster_ui).items():
        result = node["assetChecksOrError"]
        assert result["__typename"] == "AssetChecks", f"{key}: {result}"
        checks.update({(key, check["name"]): check["blocking"] for check in result["checks"]})

    assert checks.get(("roster/students", "mass_deletion_guard")) is True, "the guard must block the publish"
    assert ("roster/students", "districts_fresh") in checks
    for data_check in DATA_CHECKS:
        assert (f"roster/{data_check.table}", data_check.name) in checks, data_check.name
