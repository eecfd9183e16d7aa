"""The task runner a run's config asks for: where one-task-per-shard work executes."""

from __future__ import annotations

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from flows.recipe import RunConfig


def task_runner_for(run: RunConfig) -> TaskRunner:
    """Return a fresh task runner for ``run.runner`` (Dask and Ray import only when asked for: they are extras)."""
    if run.runner == "threads":
        return ThreadPoolTaskRunner(max_workers=run.max_workers)
    if run.runner == "processes":
        return ProcessPoolTaskRunner(max_workers=run.max_workers)
    if run.runner == "ray":
        return ray_task_runner(run)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as e:
        raise RuntimeError("run.runner=dask needs the dask extra: pip install -e '.[dask]'") from e
    if run.dask_address:
        return DaskTaskRunner(address=run.dask_address)
    # one thread per worker process: steps hold the GIL (jieba, bs4), so processes are the unit of parallelism
    return DaskTaskRunner(cluster_kwargs={"n_workers": run.max_workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None})


def ray_task_runner(run: RunConfig) -> TaskRunner:
    """Return a RayTaskRunner: on the cluster at ``run.ray_address``, else on a local Ray of ``max_workers`` CPUs."""
    try:
        from prefect_ray import RayTaskRunner
    except ImportError as e:
        raise RuntimeError("run.runner=ray needs the ray extra: pip install -e '.[ray]'") from e
    if run.ray_address:
        return RayTaskRunner(address=run.ray_address)
    # a shard task takes one CPU, so num_cpus caps the tasks in flight as max_workers does for the pools;
    # no dashboard: it would open a port and start its agents for nothing on a laptop run
    return RayTaskRunner(init_kwargs={"num_cpus": run.max_workers, "include_dashboard": False})
