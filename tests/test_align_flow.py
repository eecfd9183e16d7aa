"""The alignment flow for real: SFT → distillation → DPO → GRPO on a tiny base model under Prefect's test
harness, each stage a named MLflow child run whose model is registered; a rerun skips finished stages."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from flows.recipe import RunConfig
from tasks.evaluate.config import EvalConfig
from tasks.train.config import ModelConfig
from tasks.train.distill import DistillConfig
from tasks.train.dpo import DPOConfig
from tasks.train.grpo import GRPOConfig
from tasks.train.sft import SFTConfig

pytestmark = pytest.mark.usefixtures("prefect_harness")

# every metric, on a handful of problems and short answers: seconds per model
TINY_EVAL = EvalConfig(arith_problems=4, self_consistency_k=2, direct_max_new_tokens=4, cot_max_new_tokens=8, eval_sequences=4, samples_logged=2)


def test_align_flow_chains_tracks_registers_and_resumes(tmp_path, mlflow_uri, tiny_base):
    from flows.align import align_model
    from tasks.train.model import load_model_strict, parameter_checksum

    model_dir, _ = tiny_base
    run = RunConfig(name="a1", runs_dir=str(tmp_path / "runs"), experiment="test-align", tracking_uri=mlflow_uri)
    params = dict(
        run=run,
        base_model=str(model_dir),
        sft=SFTConfig(max_steps=6, logging_steps=2, cpu_threads=1, num_samples=1, sample_max_new_tokens=8, eval_fraction=0.1),
        distill=DistillConfig(
            max_steps=4, logging_steps=2, cpu_threads=1, num_samples=1, speed_prompts=1,
            student=ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=96),
        ),
        dpo=DPOConfig(max_steps=3, logging_steps=1, num_prompts=2, samples_per_prompt=2, max_new_tokens=8),
        grpo=GRPOConfig(max_steps=2, num_generations=2, batch_size=4, max_completion_length=8, num_problems=8),
        evaluate=TINY_EVAL,
    )
    models = align_model(**params)
    assert set(models) == {"sft", "distill", "dpo", "grpo"}

    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("test-align")
    (parent,) = client.search_runs([exp.experiment_id], filter_string="tags.`liandan.flow` = 'align'")
    assert parent.info.status == "FINISHED"
    children = {r.info.run_name: r for r in client.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")}
    evaluated = ("base", "sft", "distill", "dpo", "grpo")
    assert set(children) == {"sft-full", "distill-logits-T2-a0.5", "dpo-sigmoid-b0.1", "grpo-g2", *(f"evaluate-{s}" for s in evaluated)}
    for stage in evaluated:
        metrics = children[f"evaluate-{stage}"].data.metrics
        assert metrics["arith.problems"] == 4 and metrics["ppl.heldout"] > 1 and {"icl.sentiment.k3", "mc.accuracy", "gen.format_rate"} <= set(metrics)
    # The stage comparison on the parent run, and the final (GRPO) model as the first liandan-chat champion.
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "evaluation")}
    assert artifacts == {"evaluation/comparison.json", "evaluation/comparison.md", "evaluation/comparison.png"}
    table = client.download_artifacts(parent.info.run_id, "evaluation/comparison.md", str(tmp_path))
    assert open(table, encoding="utf-8").readline().strip() == "| metric | base | sft | distill | dpo | grpo |"
    champion = client.get_model_version_by_alias("liandan-chat", "champion")
    assert champion.run_id == children["grpo-g2"].info.run_id and champion.tags["gate.reason"] == "no champion yet"
    assert children["evaluate-grpo"].data.tags["gate.decision"] == "promoted"
    sft = children["sft-full"]
    assert sft.data.params["sft.max_steps"] == "6" and "loss" in sft.data.metrics  # our config, and the trainer's own curve
    assert children["distill-logits-T2-a0.5"].data.metrics["student.parameters"] < children["distill-logits-T2-a0.5"].data.metrics["teacher.parameters"]
    for name, registered in (("sft-full", "liandan-sft"), ("distill-logits-T2-a0.5", "liandan-student"), ("dpo-sigmoid-b0.1", "liandan-dpo"), ("grpo-g2", "liandan-grpo")):
        assert client.get_model_version_by_alias(registered, "candidate").run_id == children[name].info.run_id
        assert children[name].info.status == "FINISHED"

    # The chain: DPO starts from the SFT model, GRPO from DPO's; each changes its starting weights.
    checksums = {stage: parameter_checksum(load_model_strict(path)) for stage, path in models.items()}
    assert len({checksums["sft"], checksums["dpo"], checksums["grpo"], parameter_checksum(load_model_strict(str(model_dir)))}) == 4

    # A rerun with the same parameters trains nothing again.
    assert align_model(**params) == models
    reruns = client.search_runs([exp.experiment_id], filter_string="tags.`liandan.flow` = 'align'", order_by=["attributes.start_time DESC"])
    latest = client.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{reruns[0].info.run_id}'")
    assert len(latest) == 9 and all(r.data.metrics["stage_skipped"] == 1.0 for r in latest)  # the evaluations too
    assert len(client.search_model_versions("name = 'liandan-chat'")) == 1  # and nothing is registered twice
