"""The task runner a run's config asks for: where one-task-per-shard work executes."""

from __future__ import annotations

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from flows.recipe import RunConfig


def task_runner_for(run: RunConfig) -> TaskRunner:
    """Return a fresh task runner for ``run.runner`` (Dask imports only when asked for: it is an extra)."""
    if run.runner == "threads":
        return ThreadPoolTaskRunner(max_workers=run.max_workers)
    if run.runner == "processes":
        return ProcessPoolTaskRunner(max_workers=run.max_workers)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as e:
        raise RuntimeError("run.runner=dask needs the dask extra: pip install -e '.[dask]'") from e
    if run.dask_address:
        return DaskTaskRunner(address=run.dask_address)
    # one thread per worker process: steps hold the GIL (jieba, bs4), so processes are the unit of parallelism
    return DaskTaskRunner(cluster_kwargs={"n_workers": run.max_workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None})
