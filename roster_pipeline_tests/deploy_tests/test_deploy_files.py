"""The deployment files say what a production install needs and agree with the repository: the run limits are
dagster.yaml's, secrets are only referenced, the image installs the project the README's way, and every command
is one the installed Dagster accepts.

Nothing here starts Docker, Kubernetes or PostgreSQL: the files are parsed, instance configs are validated against
the installed Dagster's own schema, and commands are parsed by Dagster's own command-line definitions.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import dagster as dg
import pytest
import yaml
from dagster._cli.code_server import start_command
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._daemon.cli import run_command as daemon_run_command
from dagster_webserver.cli import cli as webserver_cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
REPO_INSTANCE = ROOT / "dagster.yaml"
DEPLOY_INSTANCE = DEPLOY / "dagster.yaml"
COMPOSE = DEPLOY / "docker-compose.yaml"
WORKSPACE = DEPLOY / "workspace.yaml"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
HELM_SCHEMA = DEPLOY / "helm" / "values.schema.excerpt.json"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

CODE_LOCATION_MODULE = "roster_pipeline.definitions"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|WEBHOOK", re.IGNORECASE)
REFERENCE = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$")  # ${VAR}, ${VAR:-default}, ${VAR:?message}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def validated_instance(config: dict[str, Any] | Path, folder: Path) -> dict[str, Any]:
    """The instance config as the installed Dagster validates it (as `DAGSTER_HOME/dagster.yaml` is read)."""
    target = folder / "dagster.yaml"
    if isinstance(config, Path):
        shutil.copyfile(config, target)
    else:
        target.write_text(yaml.safe_dump(config), encoding="utf-8")
    value, _ = dagster_instance_config(str(folder))
    return dict(value)


def repo_run_limits() -> dict[str, Any]:
    return load(REPO_INSTANCE)["concurrency"]["runs"]


# --- the production instance (deploy/dagster.yaml) ---------------------------------------------------------------


def test_deploy_instance_config_validates_against_the_installed_dagster_schema(tmp_path: Path) -> None:
    config = validated_instance(DEPLOY_INSTANCE, tmp_path)

    assert set(config["storage"]) == {"postgres"}
    ref = InstanceRef.from_dir(str(tmp_path))
    assert (ref.storage_data.module_name, ref.storage_data.class_name) == ("dagster_postgres", "DagsterPostgresStorage")
    assert ref.run_coordinator_data.class_name == "QueuedRunCoordinator"
    assert ref.run_launcher_data.class_name == "DefaultRunLauncher"
    assert config["telemetry"] == {"enabled": False}
    assert config["nux"] == {"enabled": False}


def test_deploy_instance_reads_its_postgres_connection_only_from_the_environment() -> None:
    postgres_db = load(DEPLOY_INSTANCE)["storage"]["postgres"]["postgres_db"]

    # The driver is named, not read: SQLAlchemy 2.1 takes a bare postgresql:// for psycopg 3, which is not installed.
    assert postgres_db.pop("scheme") == "postgresql+psycopg2"
    assert set(postgres_db) == {"username", "password", "hostname", "db_name", "port"}
    for field, value in postgres_db.items():
        assert set(value) == {"env"}, f"postgres_db.{field} must be read from an environment variable"
    assert postgres_db["password"] == {"env": "DAGSTER_PG_PASSWORD"}


def test_deploy_instance_has_the_repositorys_run_and_pool_limits() -> None:
    repo = load(REPO_INSTANCE)["concurrency"]
    deploy = load(DEPLOY_INSTANCE)["concurrency"]

    assert deploy == repo
    limits = {limit["key"]: limit["limit"] for limit in deploy["runs"]["tag_concurrency_limits"]}
    assert limits == {"roster/provider": 2, "roster/district": 1}


def test_deploy_run_monitoring_frees_what_a_lost_worker_holds(tmp_path: Path) -> None:
    monitoring = validated_instance(DEPLOY_INSTANCE, tmp_path)["run_monitoring"]

    assert monitoring["enabled"] is True
    assert monitoring["start_timeout_seconds"] > 0
    assert monitoring["cancel_timeout_seconds"] > 0
    assert 0 < monitoring["free_slots_after_run_end_seconds"] <= 300
    # The DefaultRunLauncher cannot report a dead run process: a runtime bound is what fails such a run.
    assert monitoring["max_runtime_seconds"] >= 3600
    assert monitoring["max_resume_run_attempts"] == 0


# --- docker compose -------------------------------------------------------------------------------------------


def compose_services() -> dict[str, dict[str, Any]]:
    return load(COMPOSE)["services"]


def click_parses(command: click.Command, args: list[str]) -> dict[str, Any]:
    """The options `command` would run with: Dagster's own command-line definition parses `args` (nothing runs)."""
    with command.make_context(command.name or "command", list(args)) as context:
        return dict(context.params)


def test_compose_has_postgres_user_code_webserver_and_daemon_each_with_command_and_environment() -> None:
    services = compose_services()

    assert set(services) == {"postgres", "user_code", "webserver", "daemon"}
    assert services["postgres"]["image"].startswith("postgres:")  # the official image's own entrypoint
    for name in ("user_code", "webserver", "daemon"):
        assert services[name]["command"], f"{name} names no command"
        assert services[name]["image"] == services["user_code"]["image"]
    for name, service in services.items():
        assert service["environment"], f"{name} has no environment"


def in_host_files(service: dict[str, Any], args: list[str]) -> list[str]:
    """`args` with each container path that the service bind-mounts from deploy/ replaced by that file, so a command's
    file arguments can be checked here."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = str(DEPLOY / source)
    return [mounts.get(arg, arg) for arg in args]


def test_compose_commands_are_ones_the_installed_dagster_accepts() -> None:
    services = compose_services()

    code_server = services["user_code"]["command"]
    assert code_server[:3] == ["dagster", "code-server", "start"]
    params = click_parses(start_command, code_server[3:])
    assert (params["host"], params["port"], params["module_name"]) == ("0.0.0.0", 3030, CODE_LOCATION_MODULE)

    webserver = services["webserver"]["command"]
    assert webserver[0] == "dagster-webserver"
    params = click_parses(webserver_cli, in_host_files(services["webserver"], webserver[1:]))
    assert (params["host"], params["port"]) == ("0.0.0.0", 3000)
    assert params["workspace"] == (str(WORKSPACE),)  # the mounted deploy/workspace.yaml

    daemon = services["daemon"]["command"]
    assert daemon[:2] == ["dagster-daemon", "run"]
    params = click_parses(daemon_run_command, in_host_files(services["daemon"], daemon[2:]))
    assert params["workspace"] == (str(WORKSPACE),)


def test_compose_webserver_and_daemon_load_the_code_location_from_the_user_code_server() -> None:
    services = compose_services()
    server = load(WORKSPACE)["load_from"][0]["grpc_server"]

    assert (server["host"], server["port"]) == ("user_code", 3030)
    # The same name as `dagster dev` gives the location (pyproject's [tool.dagster]), so run history lines up.
    assert (
        server["location_name"]
        == tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["code_location_name"]
    )
    for name in ("webserver", "daemon"):
        assert "./workspace.yaml:/opt/dagster/workspace.yaml:ro" in services[name]["volumes"]
        assert services[name]["depends_on"]["user_code"]["condition"] == "service_healthy"


def test_compose_mounts_the_deploy_instance_as_dagster_home_in_every_dagster_process() -> None:
    for name in ("user_code", "webserver", "daemon"):
        service = compose_services()[name]
        home = service["environment"]["DAGSTER_HOME"]
        assert f"./dagster.yaml:{home}/dagster.yaml:ro" in service["volumes"], name
        # Runs write step logs in user_code; the webserver shows them: both mount the instance's log folder.
        assert "dagster_logs:/opt/dagster/logs" in service["volumes"], name
    assert load(DEPLOY_INSTANCE)["compute_logs"]["config"]["base_dir"] == "/opt/dagster/logs"


def test_compose_user_code_has_the_roster_store_environment_and_a_data_volume() -> None:
    user_code = compose_services()["user_code"]
    environment = user_code["environment"]

    for name in ("ROSTER_CATALOG_URL", "ROSTER_FILES_URL", "ROSTER_LAKE_URL", "PGPASSWORD", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL"):  # fmt: skip
        assert REFERENCE.match(environment[name]), f"{name} must come from the environment: {environment[name]!r}"
    assert "host=postgres" in environment["ROSTER_CATALOG_URL"]
    assert "password" not in environment["ROSTER_CATALOG_URL"].lower()
    assert f"roster_data:{environment['ROSTER_DATA_DIR']}" in user_code["volumes"]


def test_compose_holds_no_literal_secret() -> None:
    for name, service in compose_services().items():
        for key, value in service["environment"].items():
            if SECRET_NAME.search(key):
                assert REFERENCE.match(str(value)), f"{name}: {key} is written literally; reference ${{{key}}}"
    for secret in ("POSTGRES_PASSWORD", "ROSTER_CATALOG_PASSWORD"):
        # Required (`:?`): compose refuses to start without them rather than run with an empty password.
        assert f"${{{secret}:?" in COMPOSE.read_text(encoding="utf-8")


# --- the Helm chart's values -----------------------------------------------------------------------------------


def helm_values() -> dict[str, Any]:
    return load(HELM_VALUES)


def test_helm_values_launch_runs_as_kubernetes_jobs_with_secrets_by_name() -> None:
    launcher = helm_values()["runLauncher"]

    assert launcher["type"] == "K8sRunLauncher"
    secrets = [secret["name"] for secret in launcher["config"]["k8sRunLauncher"]["envSecrets"]]
    assert secrets == ["roster-store-credentials", "roster-district-credentials"]


def test_helm_values_use_an_external_postgresql_whose_password_is_an_existing_secret() -> None:
    values = helm_values()

    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlHost"]
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    assert values["postgresql"]["postgresqlPassword"] == ""


def test_helm_concurrency_equals_the_repositorys_dagster_yaml() -> None:
    concurrency = helm_values()["concurrency"]
    repo = load(REPO_INSTANCE)["concurrency"]

    assert concurrency["enabled"] is True
    assert concurrency["pools"] == {"defaultLimit": repo["pools"]["default_limit"]}
    assert concurrency["runs"]["maxConcurrentRuns"] == repo["runs"]["max_concurrent_runs"]
    assert concurrency["runs"]["tagConcurrencyLimits"] == repo["runs"]["tag_concurrency_limits"]


def test_helm_run_coordinator_sets_no_limit_and_dequeues_as_the_repositorys_dagster_yaml() -> None:
    coordinator = helm_values()["dagsterDaemon"]["runCoordinator"]
    queued = coordinator["config"]["queuedRunCoordinator"]
    repo = load(REPO_INSTANCE)["run_coordinator"]["config"]

    assert (coordinator["enabled"], coordinator["type"]) == (True, "QueuedRunCoordinator")
    assert queued["maxConcurrentRuns"] is None and queued["tagConcurrencyLimits"] == []
    assert queued["blockOpConcurrencyLimitedRuns"] is None  # drops the chart's default, whatever it is
    dequeue = {
        "dequeue_interval_seconds": queued["dequeueIntervalSeconds"],
        "dequeue_use_threads": queued["dequeueUseThreads"],
        "dequeue_num_workers": queued["dequeueNumWorkers"],
    }
    assert dequeue == repo


def test_helm_run_monitoring_is_enabled_and_frees_slots() -> None:
    monitoring = helm_values()["dagsterDaemon"]["runMonitoring"]

    assert monitoring["enabled"] is True
    assert monitoring["startTimeoutSeconds"] > 0
    assert monitoring["freeSlotsAfterRunEndSeconds"] > 0


def test_helm_user_deployment_serves_our_code_location_from_our_image() -> None:
    deployment = helm_values()["dagster-user-deployments"]["deployments"][0]

    assert deployment["codeServerArgs"] == ["-m", CODE_LOCATION_MODULE]
    assert deployment["port"] == 3030
    assert {"repository", "tag", "pullPolicy"} <= set(deployment["image"])
    assert [secret["name"] for secret in deployment["envSecrets"]] == [
        "roster-store-credentials",
        "roster-district-credentials",
    ]
    assert {"ROSTER_CATALOG_URL", "ROSTER_FILES_URL", "ROSTER_DATA_DIR"} <= set(deployment["env"])


def test_helm_run_pods_share_no_volume_the_lake_and_the_roster_are_on_object_storage() -> None:
    deployment = helm_values()["dagster-user-deployments"]["deployments"][0]
    environment = deployment["env"]

    for name in ("ROSTER_LAKE_URL", "ROSTER_FILES_URL"):
        assert environment[name].startswith("s3://"), name
    assert environment["ROSTER_CATALOG_URL"].startswith("postgres:")
    assert [v for v in deployment["volumes"] if "persistentVolumeClaim" in v] == []
    [data] = [v for v in deployment["volumes"] if v["name"] == "roster-data"]
    assert data == {"name": "roster-data", "emptyDir": {}}


def strings_under(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings_under(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings_under(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def is_secret_key(key: str) -> bool:
    """A key whose value would be a secret (`postgresqlPassword`), not one that names where a secret is kept
    (`postgresqlSecretName`)."""
    return bool(SECRET_NAME.search(key)) and not key.lower().endswith("secretname")


def test_helm_values_hold_no_literal_secret() -> None:
    found = [path for path, value in strings_under(helm_values()) if is_secret_key(path.rsplit(".", 1)[-1]) and value]
    assert found == []
    for path, value in strings_under(helm_values()):
        assert "password=" not in value.lower(), path


def schema_node(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`node` with its local `$ref` followed, and the non-null branch of an optional `anyOf`."""
    while True:
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in node and "properties" not in node and "items" not in node:
            branches = [branch for branch in node["anyOf"] if branch.get("type") != "null"]
            refs = [branch for branch in branches if "$ref" in branch]
            node = refs[0] if refs else branches[0]
        else:
            return node


def unknown_keys(schema: dict[str, Any], node: dict[str, Any], value: Any, path: str) -> Iterator[str]:
    """Every key of `value` the chart's schema does not declare, where it declares the object's properties."""
    node = schema_node(schema, node)
    if isinstance(value, dict) and node.get("properties"):
        for key, item in value.items():
            if key not in node["properties"]:
                yield f"{path}.{key}"
            else:
                yield from unknown_keys(schema, node["properties"][key], item, f"{path}.{key}")
    elif isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            yield from unknown_keys(schema, node["items"], item, f"{path}[{index}]")


def test_every_helm_value_we_set_is_one_the_charts_schema_declares() -> None:
    schema = json.loads(HELM_SCHEMA.read_text(encoding="utf-8"))
    values = helm_values()

    assert set(values) <= set(schema["properties"])
    assert list(unknown_keys(schema, schema, values, "values")) == []


def test_schema_check_catches_a_misspelt_helm_key() -> None:
    schema = json.loads(HELM_SCHEMA.read_text(encoding="utf-8"))
    values = helm_values()
    values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimit"] = []

    assert list(unknown_keys(schema, schema, values, "values")) == [
        "values.dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimit"
    ]


class ChartRefuses(Exception):
    """The chart's `fail`: `helm template` stops with this message."""


def chart_instance_config(values: dict[str, Any]) -> dict[str, Any]:
    """The parts of dagster.yaml the chart (1.13) renders from these values: templates/configmap-instance.yaml and
    helpers/instance/_run-coordinator.tpl and _concurrency.tpl, transcribed. A null value is absent (Helm drops a
    key set to null from the chart's defaults)."""
    daemon = values["dagsterDaemon"]
    monitoring = daemon["runMonitoring"]
    config: dict[str, Any] = {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": chart_queued_coordinator(values),
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    if values.get("concurrency", {}).get("enabled"):
        config["concurrency"] = chart_concurrency(values)
    return config


def chart_queued_coordinator(values: dict[str, Any]) -> dict[str, Any]:
    """_run-coordinator.tpl: with `concurrency.enabled`, a limit left unset is not rendered (dagster#33274)."""
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    enabled = values.get("concurrency", {}).get("enabled", False)
    config: dict[str, Any] = {}
    if not enabled or queued.get("maxConcurrentRuns") is not None:
        config["max_concurrent_runs"] = -1 if queued.get("maxConcurrentRuns") is None else queued["maxConcurrentRuns"]
    if queued.get("tagConcurrencyLimits"):
        config["tag_concurrency_limits"] = queued["tagConcurrencyLimits"]
    for key, field in (
        ("dequeueIntervalSeconds", "dequeue_interval_seconds"),
        ("dequeueUseThreads", "dequeue_use_threads"),
        ("dequeueNumWorkers", "dequeue_num_workers"),
    ):
        if queued.get(key):
            config[field] = queued[key]
    if block := queued.get("blockOpConcurrencyLimitedRuns"):
        config["block_op_concurrency_limited_runs"] = {
            "enabled": block["enabled"],
            "op_concurrency_slot_buffer": block["opConcurrencySlotBuffer"],
        }
    return config


def chart_concurrency(values: dict[str, Any]) -> dict[str, Any]:
    """_concurrency.tpl: the `concurrency` block, refused where the run coordinator sets the same limit."""
    pools, runs = values["concurrency"].get("pools", {}), values["concurrency"].get("runs", {})
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    if runs.get("maxConcurrentRuns") is not None and queued.get("maxConcurrentRuns") is not None:
        raise ChartRefuses("Cannot set both concurrency.runs.maxConcurrentRuns and ...queued.maxConcurrentRuns")
    if runs.get("tagConcurrencyLimits") and queued.get("tagConcurrencyLimits"):
        raise ChartRefuses("Cannot set both concurrency.runs.tagConcurrencyLimits and ...tagConcurrencyLimits")
    rendered: dict[str, Any] = {}
    if pools.get("defaultLimit") is not None:
        rendered["pools"] = {"default_limit": pools["defaultLimit"]}
    if runs.get("maxConcurrentRuns") is not None or runs.get("tagConcurrencyLimits"):
        rendered["runs"] = {
            "max_concurrent_runs": runs["maxConcurrentRuns"],
            "tag_concurrency_limits": runs["tagConcurrencyLimits"],
        }
    return rendered


def test_instance_config_the_chart_renders_from_our_values_validates(tmp_path: Path) -> None:
    config = validated_instance(chart_instance_config(helm_values()), tmp_path)
    repo = validated_instance(REPO_INSTANCE, tmp_path)

    assert config["concurrency"] == repo["concurrency"]  # the runs' limits and the `roster_duckdb` pool's
    assert config["run_coordinator"]["config"] == repo["run_coordinator"]["config"]
    assert config["run_monitoring"]["enabled"] is True


def test_the_pool_limit_reaches_the_instance_the_chart_configures(tmp_path: Path) -> None:
    validated_instance(chart_instance_config(helm_values()), tmp_path)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 4
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 6
    finally:
        instance.dispose()


def test_a_limit_left_on_the_run_coordinator_is_refused_by_the_chart_or_by_dagster(tmp_path: Path) -> None:
    """Why the coordinator's limits and its op-blocking section are null in our values."""
    values = helm_values()
    values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] = 6
    with pytest.raises(ChartRefuses, match="maxConcurrentRuns"):
        chart_instance_config(values)

    values = helm_values()
    block = {"enabled": False, "opConcurrencySlotBuffer": 0}
    values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["blockOpConcurrencyLimitedRuns"] = block
    with pytest.raises(DagsterInvalidConfigError, match="incompatible with the `concurrency > runs` config"):
        validated_instance(chart_instance_config(values), tmp_path)


# --- the image -------------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) for each instruction, continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def test_dockerfile_installs_the_project_with_pip_non_editable_without_dev_extras_into_opt_venv() -> None:
    instructions = dockerfile_instructions()
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    installs = [shlex.split(command) for run in runs for command in run.split("&&") if "pip install" in command]
    project_installs = [words for words in installs if any(word.startswith(".") for word in words)]

    assert next(arguments for keyword, arguments in instructions if keyword == "FROM").startswith("python:3.11-slim")
    assert "python -m venv /opt/venv" in runs
    assert len(project_installs) == 1
    words = project_installs[0]
    assert "-e" not in words and "--editable" not in words
    assert not any("[dev]" in word or "[test]" in word for word in words)
    # The instance's PostgreSQL storage (deploy/dagster.yaml) needs dagster-postgres in the same environment: the
    # project's `deploy` extra, which must name it.
    assert ".[deploy]" in words
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(need.startswith("dagster-postgres") for need in extras["deploy"])
    assert any(need.startswith("dagster-k8s") for need in extras["deploy"])
    assert ("ENV", "PATH=/opt/venv/bin:$PATH") in instructions


def test_dockerfile_serves_the_code_location_on_3030_with_dagster_home_set() -> None:
    instructions = dockerfile_instructions()
    command = json.loads(next(arguments for keyword, arguments in instructions if keyword == "CMD"))

    assert ("EXPOSE", "3030") in instructions
    assert any(keyword == "ENV" and "DAGSTER_HOME=/opt/dagster/dagster_home" in arguments
               for keyword, arguments in instructions)  # fmt: skip
    assert command[:3] == ["dagster", "code-server", "start"]
    params = click_parses(start_command, command[3:])
    assert (params["host"], params["port"], params["module_name"]) == ("0.0.0.0", 3030, CODE_LOCATION_MODULE)
    assert command == compose_services()["user_code"]["command"]


def test_dockerfile_copies_no_data_and_holds_no_secret() -> None:
    instructions = dockerfile_instructions()

    assert not [arguments for keyword, arguments in instructions if keyword == "ADD"]
    for keyword, arguments in instructions:
        if keyword == "COPY":
            assert "data" not in arguments.split(), arguments
        if keyword in {"ENV", "ARG"}:
            assert not SECRET_NAME.search(arguments), arguments
    ignored = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    assert {".git", ".venv", "data/", "bench/results/"} <= set(ignored)
