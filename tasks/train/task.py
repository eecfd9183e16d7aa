"""The pretrain stage as a Prefect task: train in this process, or launch several, and return the summary."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from prefect import task

from tasks.results import TrainResult
from tasks.tracking import active_mlflow_run
from tasks.train.config import PretrainJob, has_cuda
from tasks.train.launch import launch_command

if TYPE_CHECKING:  # the configs' modules import TRL; the wrappers import them only when a stage runs
    from tasks.train.distill import DistillConfig
    from tasks.train.dpo import DPOConfig
    from tasks.train.grpo import GRPOConfig
    from tasks.train.sft import SFTConfig

JOB_FILE = "job.yaml"


def write_job(job: PretrainJob) -> Path:
    """Write the job file into its output folder (the file ``accelerate launch`` and a rerun by hand read); return it."""
    path = Path(job.output_dir) / JOB_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job.model_dump(mode="json"), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_pretrain(job: PretrainJob, tracking_uri: str = "", run_id: str = "") -> dict:
    """Return the summary of pretraining ``job``, in this process or in ``job.pretrain.num_processes`` launched ones.

    With ``run_id``, the Trainer reports into that MLflow run (rank 0 only, when launched).
    """
    job_path = write_job(job)
    if job.pretrain.num_processes == 1:
        from tasks.train.pretrain import pretrain

        return run_tracked(lambda report: pretrain(job, report_to_mlflow=report), tracking_uri, run_id)
    cmd = launch_command(job_path, job.pretrain.num_processes, job.pretrain.accelerate_config, cuda=has_cuda(), mlflow=bool(run_id))
    env = {**os.environ, **({"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_RUN_ID": run_id} if run_id else {})}
    log = Path(job.output_dir) / "launch.log"
    with open(log, "w", encoding="utf-8") as f:
        code = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if code:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {code}; the end of {log}:\n{log.read_text(encoding='utf-8')[-4000:]}")
    return json.loads((Path(job.output_dir) / "summary.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class PretrainSummary:
    """The figures of a pretraining summary that the flow reports (the summary holds more: curves, checksums)."""

    steps: int
    world_size: int
    parameters: int
    first_loss: float | None  # None when no step was logged
    last_loss: float | None
    tokens_per_s: float
    train_seconds: float
    train_sequences: int
    eval_ppl: dict[str, float]  # held-out perplexity per split (source); empty without a held-out split

    @classmethod
    def of(cls, summary: dict) -> PretrainSummary:
        """Return the figures of a summary written by ``tasks.train.pretrain`` (summary.json)."""
        return cls(
            steps=int(summary["steps"]),
            world_size=int(summary["world_size"]),
            parameters=int(summary["parameters"]),
            first_loss=summary.get("first_loss"),
            last_loss=summary.get("last_loss"),
            tokens_per_s=float(summary.get("tokens_per_s") or 0.0),
            train_seconds=float(summary.get("train_seconds") or 0.0),
            train_sequences=int(summary.get("train_sequences") or 0),
            eval_ppl={split: float(e["ppl"]) for split, e in summary.get("eval", {}).items()},
        )


@task(name="pretrain_model")
def pretrain_model(job: PretrainJob, tracking_uri: str = "", run_id: str = "") -> TrainResult:
    """Return the model and summary of pretraining ``job`` (reporting into MLflow run ``run_id`` when given)."""
    return TrainResult.from_summary(run_pretrain(job, tracking_uri, run_id))


def run_tracked(train: Callable[[bool], dict], tracking_uri: str, run_id: str) -> dict:
    """Return ``train(report_to_mlflow)``: with ``run_id``, inside that MLflow run so the trainer's curves land in it."""
    if not run_id:
        return train(False)
    with active_mlflow_run(tracking_uri, run_id):
        return train(True)


@task(name="sft_model")
def sft_model(cfg: SFTConfig, base_model: str, tokenizer: str, out_dir: str, tracking_uri: str = "", run_id: str = "") -> TrainResult:
    """Return the model and summary of fine-tuning ``base_model`` on the instruction set."""
    from tasks.train.sft import train_sft

    return TrainResult.from_summary(run_tracked(lambda report: train_sft(cfg, base_model, tokenizer, out_dir, report_to_mlflow=report), tracking_uri, run_id))


@task(name="distill_model")
def distill_model(cfg: DistillConfig, teacher: str, tokenizer: str, data_path: str, out_dir: str, tracking_uri: str = "", run_id: str = "") -> TrainResult:
    """Return the student and summary of distilling ``teacher`` into a smaller student on the prompts of ``data_path``."""
    from tasks.train.distill import train_distill

    return TrainResult.from_summary(run_tracked(lambda report: train_distill(cfg, teacher, tokenizer, data_path, out_dir, report_to_mlflow=report), tracking_uri, run_id))


@task(name="dpo_model")
def dpo_model(cfg: DPOConfig, policy: str, tokenizer: str, out_dir: str, tracking_uri: str = "", run_id: str = "") -> TrainResult:
    """Return the model and summary of aligning ``policy`` on preference pairs with DPO."""
    from tasks.train.dpo import train_dpo

    return TrainResult.from_summary(run_tracked(lambda report: train_dpo(cfg, policy, tokenizer, out_dir, report_to_mlflow=report), tracking_uri, run_id))


@task(name="grpo_model")
def grpo_model(cfg: GRPOConfig, policy: str, tokenizer: str, out_dir: str, tracking_uri: str = "", run_id: str = "") -> TrainResult:
    """Return the model and summary of training ``policy`` with GRPO on verifiable arithmetic rewards."""
    from tasks.train.grpo import train_grpo

    return TrainResult.from_summary(run_tracked(lambda report: train_grpo(cfg, policy, tokenizer, out_dir, report_to_mlflow=report), tracking_uri, run_id))
