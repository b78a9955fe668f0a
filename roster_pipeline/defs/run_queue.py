"""Queue a night's `district_sync` runs for the daemon, as the schedules would, without starting any of them.

Dagster has no public Python API that submits a run of a job in a code location, so this does what `dagster job
launch` does: load the workspace, create each run from the remote job and submit it to the instance's run
coordinator. The fleet bench and the deployment test use it to fill the queue before the daemon starts.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from roster_pipeline.config.registry import Registry
from roster_pipeline.defs.partitions import DISTRICT_PARTITIONS
from roster_pipeline.defs.roster_assets import ROSTER_POOL
from roster_pipeline.defs.run_tags import sync_run_tags
from roster_pipeline.defs.slot_wait import initialize_pool

JOB = "district_sync"


def queue_district_syncs(
    instance: dg.DagsterInstance, workspace_file: Path, registry: Registry, district_ids: list[str]
) -> list[str]:
    """One queued delta run of `district_sync` per district partition, tagged as the schedules tag theirs; returns
    the run ids in the order of `district_ids`."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    instance.add_dynamic_partitions(DISTRICT_PARTITIONS, district_ids)
    initialize_pool(instance, ROSTER_POOL)  # before the runs, which would otherwise race to (see initialize_pool)
    target = WorkspaceFileTarget([str(workspace_file)])
    with WorkspaceProcessContext(instance, target, code_server_log_level="warning") as context:
        workspace = context.create_request_context()
        [location_name] = workspace.code_location_names
        location = workspace.get_code_location(location_name)
        [repository] = location.get_repositories().values()
        remote_job = repository.get_full_job(JOB)
        plan = location.get_execution_plan(
            remote_job, {}, step_keys_to_execute=None, known_state=None, instance=instance
        ).execution_plan_snapshot
        run_ids = []
        for district_id in district_ids:
            tags = {
                **remote_job.tags,
                **sync_run_tags(registry.district(district_id), full=False),
                "dagster/partition": district_id,
            }
            run = instance.create_run(
                job_name=JOB,
                run_id=None,
                run_config={},
                resolved_op_selection=None,
                step_keys_to_execute=plan.step_keys_to_execute,
                op_selection=None,
                status=None,
                root_run_id=None,
                parent_run_id=None,
                tags=tags,
                job_snapshot=remote_job.job_snapshot,
                execution_plan_snapshot=plan,
                parent_job_snapshot=remote_job.parent_job_snapshot,
                remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(),
                asset_selection=None,
                asset_check_selection=None,
                asset_graph=repository.asset_graph,
            )
            instance.submit_run(run.run_id, workspace)
            run_ids.append(run.run_id)
    return run_ids
