"""The data flow for real: Prefect's test harness, the sample site on a local server, an MLflow SQLite store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient

from flows.recipe import RunConfig
from tasks.crawl.config import CrawlConfig
from tasks.extract.config import ExtractConfig
from flows.cli import main
from tasks.store import StageDir, audit_run, read_records, read_shard, write_shard

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _stats(run_dir: Path, stage: str) -> dict:
    return json.loads((run_dir / stage / "stats.json").read_text(encoding="utf-8"))


def _children(client: MlflowClient, parent) -> dict:
    runs = client.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {r.info.run_name: r for r in runs}


@pytest.fixture
def configs(tmp_path, mlflow_uri, sample_site_url):
    run = RunConfig(name="t1", runs_dir=str(tmp_path / "runs"), experiment="test-data", tracking_uri=mlflow_uri, shard_docs=8)
    crawl = CrawlConfig(seeds=[f"{sample_site_url}/index.html"], per_host_concurrency=4, allowed_networks=["127.0.0.1/32"])
    return run, crawl, ExtractConfig()


def test_data_flow_crawls_extracts_and_tracks(configs, mlflow_uri, capsys):
    from flows.data import build_corpus

    run, crawl, extract = configs
    run_dir = Path(build_corpus(run=run, crawl=crawl, extract=extract))
    assert run_dir == Path(run.runs_dir).resolve() / "t1"

    crawl_stats, extract_stats = _stats(run_dir, "crawl"), _stats(run_dir, "extract")
    for s in (crawl_stats, extract_stats):
        assert s["balanced"] and s["docs_kept"] + s["docs_rejected"] == s["docs_in"]
    assert crawl_stats["rejected_by_reason"].get("robots_disallowed", 0) >= 1
    assert extract_stats["docs_in"] == crawl_stats["docs_kept"]
    assert len(crawl_stats["shards"]) >= 2  # shard_docs=8 cuts the site into several shards → several extract tasks

    pages = read_records(StageDir(run_dir / "extract").shards())
    kinds = {p["meta"]["kind"] for p in pages}
    assert {"html", "pdf", "image"} <= kinds
    html = [p for p in pages if p["meta"]["kind"] == "html"]
    assert all(p["text"] and "<" not in p["text"][:50] for p in html)
    assert not any("/private/" in p["url"] for p in pages)
    sources = {p["source"] for p in pages}
    assert {"news", "forum", "product"} <= sources
    gbk = [p for p in html if p["meta"].get("charset", "").lower() in {"gbk", "gb2312", "gb18030"}]
    assert gbk and all("\ufffd" not in p["text"] for p in gbk)

    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("test-data")
    (parent,) = client.search_runs([exp.experiment_id], filter_string="tags.`liandan.flow` = 'data'")
    assert parent.info.status == "FINISHED"  # closed by the flow's on_completion hook
    assert parent.data.tags["prefect.flow_run_id"]
    assert parent.info.run_name == "data-t1"
    children = _children(client, parent)
    assert set(children) == {"crawl", "extract", "ocr", "clean", "dedup", "deid", "quality-train-C0.1", "quality", "mixture"}
    for stage, stats in (("crawl", crawl_stats), ("extract", extract_stats)):
        metrics = children[stage].data.metrics
        assert metrics["docs_in"] == stats["docs_in"] and metrics["docs_kept"] == stats["docs_kept"]
        for reason, n in stats["rejected_by_reason"].items():
            assert metrics[f"rejected.{reason}"] == n
        assert children[stage].info.status == "FINISHED"
    assert children["extract"].data.params["min_chars"] == str(extract.min_chars)
    (ds,) = children["extract"].inputs.dataset_inputs
    assert ds.dataset.name == "t1/crawl" and ds.dataset.digest == crawl_stats["output_digest"][:36]

    # The sample's three copies of the rail article are removed as duplicates of the original.
    dups = {r["url"].rsplit("/", 1)[-1]: (r["reason"], r["detail"]) for r in read_records(StageDir(run_dir / "dedup").rejected_shards())}
    rail = next(p["id"] for p in pages if p["url"].endswith("news/2026-03-01-rail.html"))
    assert dups["thread-1008.html"] == ("exact_duplicate", rail)
    assert dups["thread-1002.html"] == ("near_duplicate", rail) and dups["thread-1005.html"] == ("near_duplicate", rail)
    assert children["dedup"].data.metrics["counters.cluster.cross_shard"] >= 1

    # The scanned PDF and the PNG come out of OCR as text; no phone or ID number survives de-identification.
    ocr = {p["url"].rsplit("/", 1)[-1]: p for p in read_records(StageDir(run_dir / "ocr").shards())}
    assert ocr["scan.pdf"]["text"] and ocr["scan.pdf"]["meta"]["ocr"]["text_layer"] is False
    assert ocr["notice.png"]["text"] and ocr["report.pdf"]["meta"]["ocr"]["text_layer"] is True
    final = read_records(StageDir(run_dir / "deid").shards())
    assert final and not any(re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)|\d{17}[\dXx]", d["text"]) for d in final)
    assert any("<PHONE>" in d["text"] for d in final)

    # Every document that leaves deid is scored and routed by the classifier trained (and registered) in this run;
    # the mixture keeps each remaining document at least once, with its copies.
    scored = read_records([*StageDir(run_dir / "quality").shards(), *StageDir(run_dir / "quality").rejected_shards()])
    assert len(scored) == len(final) and all(0.0 <= d["quality_score"] <= 1.0 and d["quality_tier"] in {"high", "medium", "low"} for d in scored)
    news = [d for d in scored if d["source"] == "news"]
    assert news and sum(d["quality_tier"] == "high" for d in news) >= len(news) // 2  # written news articles are mostly high
    assert client.get_model_version_by_alias("liandan-quality", "candidate").run_id == children["quality-train-C0.1"].info.run_id
    assert children["quality-train-C0.1"].data.metrics["heldout.macro_f1"] > 0.7
    mixed = read_records(StageDir(run_dir / "mixture").shards())
    assert mixed and all(d["mix_copies"] >= 1 for d in mixed)
    assert children["mixture"].data.metrics["weight.news"] > 0
    artifacts = {a.path for a in client.list_artifacts(children["mixture"].info.run_id)}
    assert {"mixture.png", "mixture_table.json"} <= artifacts

    # The ledger balances on disk and across stages.
    ledger = audit_run(run_dir)
    assert [(r.stage, r.upstream, r.problems) for r in ledger] == [
        ("crawl", None, []), ("extract", "crawl", []), ("ocr", "extract", []), ("clean", "ocr", []), ("dedup", "clean", []),
        ("deid", "dedup", []), ("quality", "deid", []), ("mixture", "quality", []),
    ]
    assert ledger[1].kept_on_disk == extract_stats["docs_kept"]

    # Rerun the same flow: the crawl stage and every extract shard are skipped, outputs unchanged.
    build_corpus(run=run, crawl=crawl, extract=extract)
    again = _stats(run_dir, "extract")
    assert again["counters"]["shards_skipped"] == len(again["shards"])
    assert _stats(run_dir, "crawl")["counters"]["stage_skipped"] == 1
    assert {k: again[k] for k in ("docs_in", "docs_kept", "rejected_by_reason", "output_digest")} == {
        k: extract_stats[k] for k in ("docs_in", "docs_kept", "rejected_by_reason", "output_digest")
    }

    # A lost rejected row is caught by `liandan audit`, which exits non-zero.
    assert main(["audit", str(run_dir)]) == 0
    stage = StageDir(run_dir / "extract")
    victim = next(p for p in stage.rejected_shards() if read_shard(p))
    write_shard(victim, read_shard(victim)[1:])
    assert main(["audit", "t1", "--runs-dir", run.runs_dir]) == 1
    assert "rejected shards hold" in capsys.readouterr().out


def test_pipeline_nests_the_data_run_and_fails_cleanly(configs, mlflow_uri):
    from flows.pipeline import run_pipeline

    run, crawl, extract = configs
    run = run.model_copy(update={"name": "t2"})
    from tasks.train.config import PretrainConfig

    from tasks.train.sft import SFTConfig

    tiny = PretrainConfig(max_steps=4, eval_steps=2, save_steps=4, logging_steps=1, cpu_threads=1)
    sft = SFTConfig(max_steps=3, logging_steps=1, cpu_threads=1, num_samples=1, sample_max_new_tokens=8)
    from tasks.evaluate.config import EvalConfig

    evaluate = EvalConfig(arith_problems=2, self_consistency_k=2, direct_max_new_tokens=4, cot_max_new_tokens=4, eval_sequences=2, mc_paths=[], icl_shots=[0])
    run_pipeline(run=run, crawl=crawl.model_copy(update={"max_pages": 12}), extract=extract, pretrain=tiny, sft=sft, evaluate=evaluate, align_stages=["sft"])
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("test-data")
    (pipeline,) = client.search_runs([exp.experiment_id], filter_string="tags.`liandan.flow` = 'pipeline'")
    (data,) = client.search_runs([exp.experiment_id], filter_string="tags.`liandan.flow` = 'data'")
    (train,) = client.search_runs([exp.experiment_id], filter_string="tags.`liandan.flow` = 'train'")
    (align,) = client.search_runs([exp.experiment_id], filter_string="tags.`liandan.flow` = 'align'")
    assert data.data.tags["mlflow.parentRunId"] == train.data.tags["mlflow.parentRunId"] == align.data.tags["mlflow.parentRunId"] == pipeline.info.run_id
    assert pipeline.info.status == data.info.status == train.info.status == align.info.status == "FINISHED"
    base = client.get_model_version_by_alias("liandan-base", "candidate")  # the base model, pretrained on the mixture
    sft_version = client.get_model_version_by_alias("liandan-sft", "candidate")  # fine-tuned from that base
    assert base.run_id != sft_version.run_id
    assert client.get_model_version_by_alias("liandan-chat", "champion").run_id == sft_version.run_id  # the chain's final chat model, gated
    (pack,) = [r for r in client.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{train.info.run_id}'") if r.info.run_name == "pack"]
    assert pack.inputs.dataset_inputs[0].dataset.name == "t2/mixture"

    # A stage that raises marks its child run, the data run and the pipeline run FAILED.
    bad = crawl.model_copy(update={"seeds": [crawl.seeds[0]], "max_pages": 5})
    broken_dir = Path(run.runs_dir).resolve() / "t3" / "extract"
    broken_dir.parent.mkdir(parents=True)
    broken_dir.write_text("a file where the stage folder should be", encoding="utf-8")
    with pytest.raises(Exception):
        run_pipeline(run=run.model_copy(update={"name": "t3"}), crawl=bad, extract=extract)
    failed = client.search_runs([exp.experiment_id], filter_string="attributes.status = 'FAILED'")
    assert {r.data.tags.get("liandan.flow") or r.info.run_name for r in failed} >= {"pipeline", "data", "extract"}


def _ids(stage: StageDir) -> tuple[list, list]:
    kept = sorted(r["id"] for r in read_records(stage.shards()))
    rejected = sorted((r["id"], r["reason"]) for r in read_records(stage.rejected_shards()))
    return kept, rejected


def test_dask_local_cluster_gives_the_single_process_output(configs, tmp_path):
    pytest.importorskip("prefect_dask", reason="the dask extra is not installed")
    from flows.data import build_corpus
    from flows.runners import task_runner_for

    run, crawl, extract = configs
    threads = run.model_copy(update={"name": "threads", "max_workers": 1})
    dask = run.model_copy(update={"name": "dask", "runner": "dask", "max_workers": 2})
    a = Path(build_corpus.with_options(task_runner=task_runner_for(threads))(run=threads, crawl=crawl, extract=extract))
    b = Path(build_corpus.with_options(task_runner=task_runner_for(dask))(run=dask, crawl=crawl, extract=extract))
    for stage in ("crawl", "extract", "ocr", "clean", "dedup", "deid"):
        assert _ids(StageDir(a / stage)) == _ids(StageDir(b / stage))
        assert _stats(a, stage)["docs_kept"] == _stats(b, stage)["docs_kept"] > 0
