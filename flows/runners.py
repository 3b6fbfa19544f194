"""The task runner of the phases that parallelise, from the config's `runner:` section."""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from gridiron.config import RunnerSettings


def task_runner_for(runner: RunnerSettings) -> TaskRunner:
    """Threads of this process (kind: thread), or a Dask cluster through prefect-dask (kind:
    dask): the scheduler at `address`, else a LocalCluster of `workers` processes (one thread
    each: the transforms are polars, which brings its own threads) made for the phase and closed
    after it. Task inputs are paths and small values, so they travel to any worker."""
    if runner.kind == "thread":
        return ThreadPoolTaskRunner(max_workers=runner.thread_workers)
    from prefect_dask import DaskTaskRunner  # here: a thread run never loads dask (about 45 MB)

    if runner.address:  # its workers are configured where they run (PREFECT_API_URL, storage)
        return DaskTaskRunner(address=runner.address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": runner.workers or 2, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None,
                                          "env": _worker_environment()})


def _worker_environment() -> dict[str, str]:
    """This process's Prefect settings for the LocalCluster's worker processes, with the API this
    run talks to: without it each worker would start a temporary Prefect server of its own."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    env = get_current_settings().to_environment_variables(exclude_unset=True)
    with get_client(sync_client=True) as client:
        env["PREFECT_API_URL"] = str(client.api_url).rstrip("/")
    return env
