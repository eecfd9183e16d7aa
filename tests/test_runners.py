"""The task runner a recipe chooses: thread and process pools always, Dask and Ray when their extras are installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from flows.recipe import RunConfig
from flows.runners import task_runner_for
from tasks.store import StageDir, read_records

HAS_RAY = importlib.util.find_spec("prefect_ray") is not None


def test_pools():
    threads = task_runner_for(RunConfig(runner="threads", max_workers=3))
    processes = task_runner_for(RunConfig(runner="processes", max_workers=2))
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3
    assert isinstance(processes, ProcessPoolTaskRunner) and processes._max_workers == 2


@pytest.mark.skipif(HAS_RAY, reason="the ray extra is installed: there is no missing extra to name")
def test_ray_without_its_extra_names_the_install_command():
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[ray\]'"):
        task_runner_for(RunConfig(runner="ray"))


@pytest.mark.skipif(not HAS_RAY, reason="the ray extra is not installed (pip install -e '.[ray]')")
def test_ray_runner_settings():
    from prefect_ray import RayTaskRunner

    local = task_runner_for(RunConfig(runner="ray", max_workers=2))
    remote = task_runner_for(RunConfig(runner="ray", ray_address="ray://10.0.0.5:10001"))
    assert isinstance(local, RayTaskRunner) and local.address is None
    assert local.init_kwargs["num_cpus"] == 2 and local.init_kwargs["include_dashboard"] is False
    assert remote.address == "ray://10.0.0.5:10001"


def _ids(stage: StageDir) -> tuple[list[str], list[tuple[str, str]]]:
    kept = sorted(r["id"] for r in read_records(stage.shards()))
    rejected = sorted((r["id"], r["reason"]) for r in read_records(stage.rejected_shards()))
    return kept, rejected


@pytest.mark.skipif(not HAS_RAY, reason="the ray extra is not installed (pip install -e '.[ray]')")
@pytest.mark.usefixtures("prefect_harness")
def test_ray_gives_the_single_process_output(tmp_path, mlflow_uri, sample_site_url):
    from flows.data import build_corpus
    from tasks.crawl.config import CrawlConfig

    crawl = CrawlConfig(seeds=[f"{sample_site_url}/index.html"], per_host_concurrency=4, allowed_networks=["127.0.0.1/32"])
    base = RunConfig(runs_dir=str(tmp_path / "runs"), experiment="test-ray", tracking_uri=mlflow_uri, shard_docs=8)
    threads = base.model_copy(update={"name": "threads", "max_workers": 1})
    ray = base.model_copy(update={"name": "ray", "runner": "ray", "max_workers": 2})
    a = Path(build_corpus.with_options(task_runner=task_runner_for(threads))(run=threads, crawl=crawl))
    b = Path(build_corpus.with_options(task_runner=task_runner_for(ray))(run=ray, crawl=crawl))
    for stage in ("crawl", "extract", "ocr", "clean", "dedup", "deid"):
        kept, rejected = _ids(StageDir(a / stage))
        assert (kept, rejected) == _ids(StageDir(b / stage)), stage
        assert kept, stage


# --- steps built once per worker ------------------------------------------------------------------


def test_cached_steps_builds_once_per_thread_and_key():
    import threading

    from tasks.steps import cached_steps, clear_cached_steps, per_doc

    built = []

    def build(tag):
        built.append((threading.get_ident(), tag))
        return [per_doc(tag, lambda doc: doc)]

    clear_cached_steps()
    first = cached_steps("stage:a", lambda: build("a"))
    assert cached_steps("stage:a", lambda: build("a")) is first
    assert cached_steps("stage:b", lambda: build("b")) is not first  # another config digest: built afresh
    other = []
    worker = threading.Thread(target=lambda: other.append(cached_steps("stage:a", lambda: build("a"))))
    worker.start()
    worker.join()
    assert other[0] is not first  # a thread of its own: steps are never shared between threads
    assert [tag for _, tag in built] == ["a", "b", "a"]
    assert clear_cached_steps() == 3
    assert cached_steps("stage:a", lambda: build("a")) is not first


def test_deid_task_reuses_its_name_tagger(tmp_path):
    from tasks.deid.config import DeidConfig
    from tasks.deid.task import STAGE, deid_shard
    from tasks.records import make_doc
    from tasks.steps import cached_steps, clear_cached_steps
    from tasks.store import config_digest, write_shard

    clear_cached_steps()
    cfg = DeidConfig()
    texts = ["记者王建国报道，联系电话13800138000。", "患者李秀英今天出院。"]
    for i, text in enumerate(texts):
        write_shard(tmp_path / "in" / f"part-{i:05d}.parquet", [make_doc(f"u{i}", text)])
        deid_shard.fn(str(tmp_path / "in" / f"part-{i:05d}.parquet"), str(tmp_path / "out"), cfg)
    steps = cached_steps(f"{STAGE}:{config_digest(cfg)}", lambda: pytest.fail("the deid steps were built again"))
    assert [step.name for step in steps] == ["mask_pii"]
    masked = [row["text"] for p in sorted((tmp_path / "out").glob("part-*.parquet")) for row in read_records([p])]
    # contextual names: a reporter's byline stays, a patient is a private person (numbered per document)
    assert masked == ["记者王建国报道，联系电话<PHONE>。", "患者<PERSON_1>今天出院。"]
