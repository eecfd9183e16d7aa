"""The base model: config → TrainingArguments, strict loading, a few dozen steps that lower the loss,
resuming from a checkpoint, and two gloo processes that end with identical weights."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # an accidental download fails at once (the launched processes inherit it)
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import json
import math
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from pydantic import ValidationError

from tasks.records import make_doc
from tasks.store import StageDir
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.tokenize.stage import build_tokenizer, encode_pack_shard
from tasks.tokenize.train import load_tokenizer
from tasks.train.config import ModelConfig, PretrainConfig, PretrainJob, to_training_arguments
from tasks.train.launch import launch_command
from tasks.train.model import LoadError, build_model, count_parameters, generate_text, load_model_strict, parameter_checksum
from tasks.train.pretrain import pretrain
from tasks.train.task import run_pretrain

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "data" / "sample" / "gold"
CUDA = torch.cuda.is_available()
TINY = ModelConfig(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=176)  # ~160K parameters


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """The sample corpus as a run folder's extract stage, its tokenizer and its packed sequences: (pack dir, tokenizer dir)."""
    root = tmp_path_factory.mktemp("run")
    docs = [make_doc(str(p.relative_to(GOLD)), p.read_text(encoding="utf-8"), source=p.parent.name) for p in sorted(GOLD.rglob("*.txt"))]
    extract = StageDir(root / "extract")
    for i in range(0, len(docs), 16):
        extract.commit_shard(f"part-{i // 16:05d}.parquet", docs[i : i + 16], [], {"stats": {}})
    tokenizer = StageDir(root / "tokenize")
    build_tokenizer(extract.shards(), tokenizer, TokenizerConfig(vocab_size=1024))
    pack = StageDir(root / "pack")
    for shard in extract.shards():
        encode_pack_shard(shard, pack, tokenizer.root, PackConfig(seq_len=64, eval_fraction=0.2))
    return pack.root, tokenizer.root


def job(corpus, out: Path, **pretrain) -> PretrainJob:
    defaults = dict(max_steps=24, warmup_steps=2, learning_rate=3e-3, batch_size=8, eval_steps=12, save_steps=12, logging_steps=2, cpu_threads=1)
    return PretrainJob(data_dir=str(corpus[0]), tokenizer_dir=str(corpus[1]), output_dir=str(out), model=TINY, pretrain=PretrainConfig(**{**defaults, **pretrain}))


def test_to_training_arguments_maps_our_config(tmp_path):
    cfg = PretrainConfig(learning_rate=1e-3, min_lr_ratio=0.2, max_steps=0, epochs=2, eval_steps=0, grad_accum_steps=4, batch_size=3, max_grad_norm=0.5, warmup_steps=7, seed=5)
    args = to_training_arguments(cfg, str(tmp_path), evaluate=True, tracking=True)
    assert (args.learning_rate, args.warmup_steps, args.weight_decay, args.adam_beta2, args.seed) == (1e-3, 7, 0.1, 0.95, 5)
    assert args.lr_scheduler_type == "cosine_with_min_lr" and args.lr_scheduler_kwargs == {"min_lr_rate": 0.2}
    assert (args.max_steps, args.num_train_epochs) == (-1, 2)  # max_steps 0: epochs decide
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.max_grad_norm) == (3, 4, 0.5)
    assert args.eval_strategy == "no"  # eval_steps 0: only the final evaluation
    assert args.report_to == ["mlflow"]
    assert args.use_cpu == (not CUDA) and args.bf16 is False and args.activation_checkpointing is False

    linear = to_training_arguments(cfg.model_copy(update={"schedule": "linear", "eval_steps": 50, "max_steps": 9}), str(tmp_path), evaluate=True)
    assert (linear.lr_scheduler_type, linear.lr_scheduler_kwargs, linear.max_steps) == ("linear", {}, 9)
    assert (linear.eval_strategy, linear.eval_steps) == ("steps", 50)
    assert linear.report_to in ([], ["none"], "none")
    assert to_training_arguments(cfg.model_copy(update={"eval_steps": 50}), str(tmp_path), evaluate=False).eval_strategy == "no"


@pytest.mark.skipif(CUDA, reason="checks the refusal a CPU-only machine gives")
def test_gpu_features_are_refused_on_cpu_with_the_setting_to_change(tmp_path):
    with pytest.raises(ValueError, match=r"pretrain\.bf16=false"):
        to_training_arguments(PretrainConfig(bf16=True), str(tmp_path))
    with pytest.raises(ValueError, match=r"pretrain\.gradient_checkpointing=false"):
        to_training_arguments(PretrainConfig(gradient_checkpointing=True), str(tmp_path))


@pytest.mark.skipif(not CUDA, reason="bf16 and gradient checkpointing need a CUDA GPU")
def test_bf16_and_gradient_checkpointing_train_on_gpu(corpus, tmp_path):
    summary = pretrain(job(corpus, tmp_path, max_steps=4, eval_steps=0, bf16=True, gradient_checkpointing=True))
    assert summary["steps"] == 4 and math.isfinite(summary["last_loss"])


def test_model_configs_validate_heads():
    with pytest.raises(ValidationError, match="even size"):
        ModelConfig(hidden_size=64, num_heads=5)
    with pytest.raises(ValidationError, match="must divide"):
        ModelConfig(hidden_size=64, num_heads=4, num_kv_heads=3)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_built_model_saves_and_loads_strictly(corpus, tmp_path, arch):
    tokenizer = load_tokenizer(corpus[1])
    model = build_model(TINY.model_copy(update={"arch": arch}), tokenizer, seed=0)
    assert model.config.model_type == arch
    assert model.config.vocab_size % 64 == 0 and model.config.vocab_size >= len(tokenizer)
    assert 100_000 < count_parameters(model) < 300_000
    assert parameter_checksum(build_model(TINY.model_copy(update={"arch": arch}), tokenizer, seed=0)) == parameter_checksum(model)
    model.save_pretrained(tmp_path / "ok")
    loaded = load_model_strict(str(tmp_path / "ok"))
    assert parameter_checksum(loaded) == parameter_checksum(model)
    assert parameter_checksum(build_model(TINY.model_copy(update={"base_model": str(tmp_path / "ok")}), tokenizer, seed=1)) == parameter_checksum(model)

    from safetensors.torch import load_file, save_file

    weights = load_file(tmp_path / "ok" / "model.safetensors")
    weights.pop("model.layers.1.mlp.up_proj.weight")
    weights["model.layers.9.extra.weight"] = torch.zeros(3)
    (tmp_path / "bad").mkdir()
    for f in (tmp_path / "ok").iterdir():
        if f.name != "model.safetensors":
            (tmp_path / "bad" / f.name).write_bytes(f.read_bytes())
    save_file(weights, tmp_path / "bad" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(LoadError, match="up_proj"):
        load_model_strict(str(tmp_path / "bad"))


def test_pretraining_lowers_the_loss_and_resumes_from_its_checkpoint(corpus, tmp_path):
    tokenizer = load_tokenizer(corpus[1])
    initial = parameter_checksum(build_model(TINY, tokenizer, seed=42))
    summary = pretrain(job(corpus, tmp_path))
    assert summary["steps"] == 24 and summary["resumed_from"] == ""
    assert summary["last_loss"] < summary["first_loss"] - 0.3, summary["loss_curve"]
    assert abs(summary["first_loss"] - math.log(len(tokenizer))) < 0.5  # starts near uniform over the vocabulary
    assert set(summary["eval"]) and all(math.isfinite(e["ppl"]) and e["ppl"] < len(tokenizer) * 1.5 for e in summary["eval"].values())
    assert summary["parameter_checksums"] != [initial]
    assert summary["tokens_per_s"] > 0

    model_dir = Path(summary["model_dir"])
    model = load_model_strict(str(model_dir))
    assert parameter_checksum(model) == summary["parameter_checksums"][0]
    saved_tokenizer = load_tokenizer(model_dir)  # the final folder carries the tokenizer
    assert saved_tokenizer.encode("你好", add_special_tokens=False) == tokenizer.encode("你好", add_special_tokens=False)
    text = generate_text(model, saved_tokenizer, "今天", max_new_tokens=8)
    assert isinstance(text, str)

    resumed = pretrain(job(corpus, tmp_path, max_steps=30))
    assert resumed["resumed_from"].endswith("checkpoint-24") and resumed["steps"] == 30
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["steps"] == 30


def test_two_processes_agree(corpus, tmp_path, mlflow_uri):
    """The entry point under torchrun with 2 gloo processes: rank 0 reports to MLflow, both end with the same weights."""
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.create_run(client.create_experiment("ddp"))
    summary = run_pretrain(job(corpus, tmp_path, max_steps=4, eval_steps=0, save_steps=100, logging_steps=1, num_processes=2), mlflow_uri, run.info.run_id)
    assert summary["world_size"] == 2
    first, second = summary["parameter_checksums"]
    assert first == second
    assert first != parameter_checksum(build_model(TINY, load_tokenizer(corpus[1]), seed=42))
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in losses) == [1, 2, 3, 4]  # logged once, by rank 0
    assert (tmp_path / "job.yaml").exists() and (tmp_path / "model" / "model.safetensors").exists()


def test_accelerate_configs_parse_and_launch_the_entry_point():
    from accelerate.commands.config.config_args import load_config_from_file

    configs = {p.stem: load_config_from_file(str(p)) for p in sorted((ROOT / "recipes" / "accelerate").glob("*.yaml"))}
    assert {k: c.distributed_type.value for k, c in configs.items()} == {
        "ddp": "MULTI_GPU",
        "fsdp": "FSDP",
        "zero2": "DEEPSPEED",
        "zero3": "DEEPSPEED",
    }
    for name, stage in (("zero2", 2), ("zero3", 3)):
        ds = json.loads((ROOT / configs[name].deepspeed_config["deepspeed_config_file"]).read_text(encoding="utf-8"))
        assert ds["zero_optimization"]["stage"] == stage and ds["gradient_accumulation_steps"] == "auto"
    cmd = launch_command("job.yaml", 8, "recipes/accelerate/zero3.yaml", cuda=True)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"] and cmd[cmd.index("--config_file") + 1] == "recipes/accelerate/zero3.yaml"
    assert cmd[-4:] == ["-m", "tasks.train.pretrain", "--config", "job.yaml"]
    assert launch_command("job.yaml", 2, cuda=False)[1:3] == ["-m", "torch.distributed.run"]


def test_a_changed_learning_rate_trains_afresh_instead_of_resuming_the_old_checkpoint(corpus, tmp_path):
    first = pretrain(job(corpus, tmp_path, max_steps=12, eval_steps=0))
    changed = pretrain(job(corpus, tmp_path, max_steps=12, eval_steps=0, learning_rate=5e-4))
    assert changed["resumed_from"] == "" and changed["steps"] == 12 and len(changed["loss_curve"]) >= 6  # 12 steps trained, every one logged
    assert changed["parameter_checksums"] != first["parameter_checksums"]
    folders = sorted(p.parent for p in (tmp_path / "checkpoints").glob("*/checkpoint-12"))
    assert len(folders) == 2  # one checkpoint folder per config: neither run can pick up the other's


def test_a_killed_pretraining_resumes_from_its_own_checkpoint(corpus, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tasks.train.pretrain import job_digest
    from tasks.train.task import write_job

    other = pretrain(job(corpus, tmp_path, max_steps=16, save_steps=16, eval_steps=0, learning_rate=1e-3))  # another config, a later checkpoint
    killed = job(corpus, tmp_path, max_steps=40, save_steps=4, eval_steps=0)
    own = tmp_path / "checkpoints" / job_digest(killed)
    proc = subprocess.Popen([sys.executable, "-m", "tasks.train.pretrain", "--config", str(write_job(killed))], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (own / "checkpoint-4" / "trainer_state.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the training process ended before its first checkpoint"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "summary.json").exists() or json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["steps"] == 16

    resumed = pretrain(killed)
    assert Path(resumed["resumed_from"]).parent == own and other["resumed_from"] == ""  # its own folder, not the other config's checkpoint-16
    step = int(Path(resumed["resumed_from"]).name.removeprefix("checkpoint-"))
    assert step >= 4 and step % 4 == 0 and resumed["steps"] == 40
    steps = [s for s, _ in resumed["loss_curve"]]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # the curve goes on from the checkpoint's history, no step twice
