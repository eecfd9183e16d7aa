"""Pretrain a causal LM on packed sequences with the HF Trainer: next-token loss, per-source perplexity, resumable.

Runs in the flow process (``pretrain(job)``) or as a script, alone or under ``accelerate launch``::

    python -m tasks.train.pretrain --config runs/demo/pretrain/job.yaml
    accelerate launch --config_file recipes/accelerate/ddp.yaml -m tasks.train.pretrain --config runs/demo/pretrain/job.yaml

Writes ``<output_dir>/checkpoints/<digest>/checkpoint-N/`` (resumable: model, optimizer, scheduler, RNG; the
folder is keyed by the model and training configs and the digests of the packed data and the tokenizer, so a
rerun resumes only its own checkpoints — ``tasks.train.resume``),
``<output_dir>/model/`` (final weights + the tokenizer, loadable strictly) and ``<output_dir>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import torch
import yaml
from transformers import Trainer, default_data_collator

from tasks.store import atomic_write_json
from tasks.tokenize.pack import read_packed
from tasks.tokenize.stage import packed_sequence_shards, tokenizer_digest
from tasks.tokenize.train import load_tokenizer
from tasks.train.config import PretrainJob, to_training_arguments
from tasks.train.model import build_model, count_parameters, parameter_checksum
from tasks.train.resume import checkpoint_dir, checkpoint_step, files_digest, last_checkpoint, training_digest
from tasks.train.save import save_trained

IGNORE_INDEX = -100  # the label value HF's cross-entropy skips
_EVAL_LOSS = re.compile(r"^(eval_(?:.+_)?)loss$")


class PackedSequences(torch.utils.data.Dataset):
    """Packed sequences of an Arrow table as ``input_ids`` and ``labels`` (padding labelled IGNORE_INDEX).

    No attention mask: padding only ever sits after a sequence's real tokens, and causal attention never
    looks forward, so real tokens cannot see it — and without a mask SDPA keeps its fast causal kernel.
    """

    def __init__(self, table: pa.Table) -> None:
        self.ids = table.column("input_ids").combine_chunks()
        self.n_tokens = table.column("n_tokens").to_pylist()

    def __len__(self) -> int:
        return len(self.n_tokens)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(self.ids[i].values.to_numpy(zero_copy_only=False).astype("int64"))
        labels = ids.clone()
        labels[self.n_tokens[i] :] = IGNORE_INDEX
        return {"input_ids": ids, "labels": labels}

    @property
    def real_tokens(self) -> int:
        return sum(self.n_tokens)


def load_packed(data_dir: str | Path, eval_sequences: int) -> tuple[PackedSequences, dict[str, PackedSequences], int]:
    """Return the training sequences, the held-out ones per source (at most ``eval_sequences`` each) and seq_len."""
    table = read_packed(packed_sequence_shards(data_dir))
    if table.num_rows == 0:
        raise ValueError(f"no packed sequences in {data_dir}")
    seq_len = len(table.column("input_ids")[0])
    train = table.filter(pc.equal(table["split"], "train"))
    held_out = table.filter(pc.equal(table["split"], "eval"))
    evals = {}
    for source in sorted(set(held_out.column("source").to_pylist())):
        rows = held_out.filter(pc.equal(held_out["source"], source))
        evals[source] = PackedSequences(rows.slice(0, eval_sequences))
    return PackedSequences(train), evals, seq_len


def perplexities(logs: dict[str, float]) -> dict[str, float]:
    """Return ``eval_<source>_ppl`` = exp(loss) for every evaluation loss in ``logs``.

    >>> perplexities({"eval_news_loss": 0.0, "loss": 2.0})
    {'eval_news_ppl': 1.0}
    """
    out = {}
    for key, value in logs.items():
        m = _EVAL_LOSS.match(key)
        if m:
            out[f"{m.group(1)}ppl"] = math.exp(min(value, 50.0))  # exp overflows past ~709; 50 already means "untrained"
    return out


class PerplexityTrainer(Trainer):
    """The HF Trainer, logging perplexity beside every evaluation loss (so MLflow gets both)."""

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        super().log({**logs, **perplexities(logs)}, *args, **kwargs)


def _all_ranks(value: str) -> list[str]:
    """Return ``value`` from every process (just this one's outside torch.distributed)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [value]
    values: list[str] = [""] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(values, value)
    return values


def _weights_sharded(trainer: Trainer) -> bool:
    """Return whether each rank holds only a shard of the weights (FSDP, ZeRO-3): then ranks have nothing to compare."""
    if trainer.is_fsdp_enabled:
        return True
    plugin = trainer.accelerator.state.deepspeed_plugin if trainer.is_deepspeed_enabled else None
    return plugin is not None and plugin.zero_stage == 3


def _final_evaluation(trainer: Trainer) -> dict[str, float]:
    """Return the evaluation at the last step: the one training just logged, else a new one."""
    logged: dict[str, float] = {}
    for entry in trainer.state.log_history:
        if entry.get("step") == trainer.state.global_step and any(k.startswith("eval_") for k in entry):
            logged.update(entry)
    return logged or trainer.evaluate()


def job_digest(job: PretrainJob) -> str:
    """Return the digest of what ``job`` trains: its model and training configs, its packed shards and its tokenizer."""
    return training_digest([job.model, job.pretrain], [files_digest(packed_sequence_shards(job.data_dir)), tokenizer_digest(job.tokenizer_dir)])


def pretrain(job: PretrainJob, report_to_mlflow: bool = False) -> dict:
    """Train ``job`` to its step budget (resuming from its own newest checkpoint) and return the summary.

    With ``report_to_mlflow`` the Trainer logs params, the loss curve and evaluations into the active
    MLflow run (the caller opens it on the stage's child run; under accelerate, MLFLOW_RUN_ID names it).
    """
    out = Path(job.output_dir)
    cfg = job.pretrain
    tokenizer = load_tokenizer(job.tokenizer_dir)
    train, evals, seq_len = load_packed(job.data_dir, cfg.eval_sequences)
    model = build_model(job.model, tokenizer, cfg.seed)
    if seq_len > model.config.max_position_embeddings:
        raise ValueError(f"pack.seq_len {seq_len} exceeds the model's max_position_embeddings {model.config.max_position_embeddings}")
    checkpoints = checkpoint_dir(out, job_digest(job))
    args = to_training_arguments(cfg, str(checkpoints), evaluate=bool(evals), tracking=report_to_mlflow)
    trainer = PerplexityTrainer(model=model, args=args, train_dataset=train, eval_dataset=evals or None, data_collator=default_data_collator)
    resume_from = last_checkpoint(checkpoints, cfg.max_steps) if cfg.resume else None

    threads = torch.get_num_threads()
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume_from)
        seconds = time.perf_counter() - started
        final_eval = _final_evaluation(trainer) if evals else {}
    finally:
        torch.set_num_threads(threads)  # the flow process goes on with its own setting

    model_dir = save_trained(trainer, tokenizer, job.tokenizer_dir, out / "model")  # weights by the main process only (ZeRO-3 and FSDP gather them first)
    checksums = [] if _weights_sharded(trainer) else _all_ranks(parameter_checksum(model))
    curve = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    world = args.world_size
    steps_run = trainer.state.global_step - checkpoint_step(resume_from)
    summary = {
        "steps": trainer.state.global_step,
        "resumed_from": str(resume_from or ""),
        "first_loss": curve[0][1] if curve else None,
        "last_loss": curve[-1][1] if curve else None,
        "loss_curve": curve,
        "train_loss": result.training_loss,
        "eval": {s: {"loss": final_eval[f"eval_{s}_loss"], "ppl": math.exp(min(final_eval[f"eval_{s}_loss"], 50.0))} for s in evals},
        "parameters": count_parameters(model),
        "parameter_checksums": checksums,
        "world_size": world,
        "rank": args.process_index,
        "seq_len": seq_len,
        "train_sequences": len(train),
        "eval_sequences": {s: len(d) for s, d in evals.items()},
        # sequence slots per second, padding included (pack's waste is reported by the pack stage)
        "tokens_per_s": steps_run * cfg.batch_size * cfg.grad_accum_steps * world * seq_len / seconds if seconds else 0.0,
        "train_seconds": seconds,
        "model_dir": str(model_dir),
    }
    if trainer.is_world_process_zero():
        atomic_write_json(out / "summary.json", summary)
    trainer.accelerator.wait_for_everyone()
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run the job file given by ``--config``; fail when data-parallel ranks end with different weights."""
    parser = argparse.ArgumentParser(description="Pretrain a causal LM on packed shards (alone or under accelerate launch).")
    parser.add_argument("--config", required=True, help="PretrainJob YAML (the flow writes runs/<run>/pretrain/job.yaml)")
    parser.add_argument("--mlflow", action="store_true", help="report to MLflow (MLFLOW_TRACKING_URI and MLFLOW_RUN_ID name the run)")
    args = parser.parse_args(argv)
    job = PretrainJob.model_validate(yaml.safe_load(Path(args.config).read_text(encoding="utf-8")))
    summary = pretrain(job, report_to_mlflow=args.mlflow)
    if len(set(summary["parameter_checksums"])) > 1:
        raise SystemExit(f"ranks ended with different weights: {summary['parameter_checksums']}")
    if summary["rank"] == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "loss_curve"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
