"""The training flow for real: Prefect's test harness, an MLflow SQLite store, the sample corpus as a run's
extract stage → tokenizer, packed shards, a tiny pretrained model registered with the alias candidate."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # an accidental download fails at once
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from flows.recipe import RunConfig
from tasks.evaluate.config import EvalConfig
from tasks.records import make_doc
from tasks.store import StageDir, audit_run
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.train.config import ModelConfig, PretrainConfig

pytestmark = pytest.mark.usefixtures("prefect_harness")

GOLD = Path(__file__).resolve().parent.parent / "data" / "sample" / "gold"


def write_extract_stage(run_dir: Path, shard_docs: int = 10) -> list[dict]:
    """Write the sample corpus (plus one blank page) as the run's extract stage, with its ledger."""
    docs = [make_doc(str(p.relative_to(GOLD)), p.read_text(encoding="utf-8"), source=p.parent.name) for p in sorted(GOLD.rglob("*.txt"))]
    docs.insert(5, make_doc("http://example.test/blank", " ", source="news"))
    stage = StageDir(run_dir / "extract")
    names = []
    for i in range(0, len(docs), shard_docs):
        names.append(f"part-{i // shard_docs:05d}.parquet")
        stage.commit_shard(names[-1], docs[i : i + shard_docs], [], {"stats": {}})
    stage.write_stats({"stage": "extract", "upstream": None, "docs_in": len(docs), "docs_kept": len(docs), "docs_rejected": 0, "rejected_by_reason": {}, "shards": names})
    return docs


def _children(client: MlflowClient, parent) -> dict:
    runs = client.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {r.info.run_name: r for r in runs}


def test_train_flow_tokenizes_packs_pretrains_and_registers(tmp_path, mlflow_uri):
    from flows.train import train_base_model
    from tasks.tokenize.train import load_tokenizer
    from tasks.train.model import generate_text, load_model_strict

    run = RunConfig(name="t1", runs_dir=str(tmp_path / "runs"), experiment="test-train", tracking_uri=mlflow_uri)
    run_dir = Path(run.runs_dir).resolve() / "t1"
    docs = write_extract_stage(run_dir)
    params = dict(
        run=run,
        data_stage="extract",  # the sample corpus stands in for a de-identified one: it holds no personal data
        allow_undeidentified=True,
        tokenizer=TokenizerConfig(vocab_size=1024),
        pack=PackConfig(seq_len=64, eval_fraction=0.2),
        model=ModelConfig(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=176),
        pretrain=PretrainConfig(max_steps=30, warmup_steps=3, learning_rate=3e-3, eval_steps=15, save_steps=15, logging_steps=2, cpu_threads=1),
        evaluate=EvalConfig(arith_problems=4, self_consistency_k=2, direct_max_new_tokens=4, cot_max_new_tokens=8, eval_sequences=4),
    )
    model_dir = Path(train_base_model(**params))
    assert model_dir == run_dir / "pretrain" / "model"

    # The pack stage's ledger balances against the data stage: every document packed or rejected.
    ledger = {row.stage: row for row in audit_run(run_dir)}
    assert ledger["pack"].problems == [] and ledger["pack"].docs_in == len(docs)
    pack_stats = json.loads((run_dir / "pack" / "stats.json").read_text(encoding="utf-8"))
    assert pack_stats["rejected_by_reason"] == {"empty_text": 1} and pack_stats["upstream"] == "extract"
    assert pack_stats["counters"]["tokens_packed"] == pack_stats["counters"]["tokens"]  # packing lost no token
    summary = json.loads((run_dir / "pretrain" / "summary.json").read_text(encoding="utf-8"))
    assert summary["last_loss"] < summary["first_loss"] - 0.3

    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("test-train")
    (parent,) = client.search_runs([exp.experiment_id], filter_string="tags.`liandan.flow` = 'train'")
    assert parent.info.status == "FINISHED" and parent.info.run_name == "train-t1"
    children = _children(client, parent)
    assert set(children) == {"tokenize", "pack", "pretrain", "evaluate-pretrain"}
    evaluated = children["evaluate-pretrain"].data.metrics  # perplexity per source on the pack's own held-out split, and the rest
    assert {f"ppl.{s}" for s in {d["source"] for d in docs if d["text"].strip()}} & set(evaluated) and evaluated["ppl.heldout"] > 1
    assert evaluated["arith.problems"] == 4 and "mc.accuracy" in evaluated
    assert all(c.info.status == "FINISHED" for c in children.values())

    tokenize = children["tokenize"]
    assert "tokenizer/tokenizer.json" in {a.path for a in client.list_artifacts(tokenize.info.run_id, "tokenizer")}
    assert tokenize.data.metrics["han_chars_per_token.all"] > 0 and tokenize.data.params["vocab_size"] == "1024"

    pack = children["pack"].data.metrics
    assert pack["rejected.empty_text"] == 1
    for source in {d["source"] for d in docs if d["text"].strip()}:
        assert pack[f"counters.tokens.{source}"] > 0
    assert 0 <= pack["packing_waste_pct"] < 50

    pretrain = children["pretrain"]
    curve = client.get_metric_history(pretrain.info.run_id, "loss")
    assert len(curve) >= 10 and curve[-1].value < curve[0].value  # the loss curve, logged by the Trainer
    assert any(k.startswith("eval_") and k.endswith("_ppl") for k in pretrain.data.metrics)
    assert pretrain.data.params["pretrain.max_steps"] == "30" and pretrain.data.params["learning_rate"] == "0.003"

    version = client.get_model_version_by_alias("liandan-base", "candidate")
    assert version.run_id == pretrain.info.run_id
    local = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="model", dst_path=str(tmp_path / "dl"), tracking_uri=mlflow_uri)
    model = load_model_strict(local)  # the registered model loads strictly, offline, with its tokenizer beside it
    tokenizer = load_tokenizer(local)
    assert isinstance(generate_text(model, tokenizer, "今天", max_new_tokens=6), str)

    # A rerun skips every finished stage: the same shards, no retraining, no second model version.
    train_base_model(**params)
    again = json.loads((run_dir / "pack" / "stats.json").read_text(encoding="utf-8"))
    assert again["counters"]["shards_skipped"] == len(again["shards"])
    (_, latest) = sorted(client.search_runs([exp.experiment_id], filter_string="tags.`liandan.flow` = 'train'"), key=lambda r: r.info.start_time)
    assert _children(client, latest)["pretrain"].data.metrics["stage_skipped"] == 1
    assert _children(client, latest)["evaluate-pretrain"].data.metrics["stage_skipped"] == 1
    assert len(client.search_model_versions("name = 'liandan-base'")) == 1


def test_train_flow_refuses_a_missing_data_stage(tmp_path, mlflow_uri):
    from flows.train import train_base_model

    run = RunConfig(name="empty", runs_dir=str(tmp_path / "runs"), experiment="test-train", tracking_uri=mlflow_uri)
    with pytest.raises(ValueError, match="run the data flow"):
        train_base_model(run=run, data_stage="deid")
