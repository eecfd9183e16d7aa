"""The trainer configs: one shared settings model, one name per concept, no torch on import, one mapping each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows.recipe import RecipeError, load_recipe
from tasks.train.config import CheckpointSettings, PretrainConfig, TrainSettings, settings_of, to_training_arguments
from tasks.train.distill import DistillConfig, student_sft_config
from tasks.train.dpo import DPOConfig, to_dpo_config
from tasks.train.grpo import GRPOConfig, to_grpo_config
from tasks.train.sft import SFTConfig, to_sft_config

ROOT = Path(__file__).resolve().parent.parent
TRAINER_CONFIGS = (PretrainConfig, SFTConfig, DistillConfig, DPOConfig, GRPOConfig)
CONFIG_MODULES = ("tasks.train.config", "tasks.train.rewards", "tasks.train.sft", "tasks.train.distill", "tasks.train.dpo", "tasks.train.grpo", "flows.recipe")
HEAVY = ("torch", "trl", "transformers", "peft", "datasets")


@pytest.mark.parametrize("module", CONFIG_MODULES)
def test_config_modules_import_without_torch_or_trl(module):
    code = f"import json, sys, {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("config", TRAINER_CONFIGS)
def test_every_trainer_config_is_the_shared_settings_plus_its_own(config):
    assert issubclass(config, TrainSettings)
    for name, shared in TrainSettings.model_fields.items():
        field = config.model_fields[name]  # a stage may change a default, never the type, bounds or description
        assert (field.annotation, field.metadata, field.description) == (shared.annotation, shared.metadata, shared.description), (config.__name__, name)
    if issubclass(config, CheckpointSettings):
        for name, shared in CheckpointSettings.model_fields.items():
            field = config.model_fields[name]
            assert (field.annotation, field.metadata, field.description, field.default) == (shared.annotation, shared.metadata, shared.description, shared.default)


def test_stage_defaults_are_kept():
    assert (PretrainConfig().learning_rate, PretrainConfig().schedule, PretrainConfig().warmup_steps, PretrainConfig().adam_beta2) == (2e-3, "cosine", 20, 0.95)
    assert (SFTConfig().learning_rate, SFTConfig().epochs, SFTConfig().max_steps, SFTConfig().warmup_ratio) == (1e-3, 3.0, 0, 0.05)
    assert (DPOConfig().learning_rate, DPOConfig().max_steps, DPOConfig().batch_size, DPOConfig().cpu_threads) == (5e-5, 30, 4, 1)
    assert (GRPOConfig().learning_rate, GRPOConfig().max_steps, GRPOConfig().logging_steps, GRPOConfig().cpu_threads) == (5e-5, 20, 1, 1)
    names = [c().registered_model for c in TRAINER_CONFIGS]
    assert names == ["liandan-base", "liandan-sft", "liandan-student", "liandan-dpo", "liandan-grpo"]


@pytest.mark.parametrize("config", TRAINER_CONFIGS)
def test_the_old_accumulation_key_is_refused_with_the_new_name(config):
    with pytest.raises(ValidationError, match="`grad_accum` is now called `grad_accum_steps`"):
        config(grad_accum=2)
    assert config(grad_accum_steps=4 if config is not GRPOConfig else 2).grad_accum_steps in (2, 4)


def test_a_recipe_with_the_old_key_names_the_new_one(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("dpo:\n  grad_accum: 2\ngrpo:\n  grad_accum_steps: 2\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="grad_accum_steps"):
        load_recipe(path)
    path.write_text("dpo:\n  grad_accum_steps: 2\n", encoding="utf-8")
    assert load_recipe(path).dpo.grad_accum_steps == 2


def test_one_warmup_at_a_time():
    with pytest.raises(ValidationError, match="warmup_steps .* or warmup_ratio .*, not both"):
        SFTConfig(warmup_steps=10)  # SFT warms up by a ratio by default
    assert SFTConfig(warmup_steps=10, warmup_ratio=0).warmup_steps == 10


def test_distillation_trains_the_student_with_its_own_shared_settings():
    cfg = DistillConfig(learning_rate=3e-3, max_steps=11, batch_size=5, grad_accum_steps=2, warmup_ratio=0.2, seed=9, bf16=False, save_steps=4, resume=False, max_length=200)
    sft = student_sft_config(cfg, ["teacher_data.jsonl"], "messages")
    assert settings_of(sft, TrainSettings, CheckpointSettings) == settings_of(cfg, TrainSettings, CheckpointSettings)
    assert (sft.method, sft.max_length, sft.eval_fraction, sft.num_samples, sft.data_paths, sft.data_format) == ("full", 200, 0.0, 0, ["teacher_data.jsonl"], "messages")
    assert sft.registered_model == "liandan-student"


def test_the_shared_settings_map_alike_in_every_trainer(tmp_path):
    shared = dict(learning_rate=3e-4, schedule="cosine", min_lr_ratio=0.2, warmup_steps=3, weight_decay=0.05, adam_beta2=0.98, max_grad_norm=0.5, max_steps=6, seed=4, logging_steps=2)
    for args in (
        to_training_arguments(PretrainConfig(**shared), str(tmp_path / "p")),
        to_sft_config(SFTConfig(**shared, warmup_ratio=0), str(tmp_path / "s")),
        to_dpo_config(DPOConfig(**shared), str(tmp_path / "d")),
        to_grpo_config(GRPOConfig(**shared), str(tmp_path / "g")),
    ):
        assert (args.learning_rate, args.lr_scheduler_type, args.lr_scheduler_kwargs, args.warmup_steps) == (3e-4, "cosine_with_min_lr", {"min_lr_rate": 0.2}, 3), type(args)
        assert (args.weight_decay, args.adam_beta2, args.max_grad_norm, args.max_steps, args.seed, args.logging_steps) == (0.05, 0.98, 0.5, 6, 4, 2), type(args)
    # left at their defaults, DPO and GRPO keep TRL's schedule: linear decay, no warm-up
    for args in (to_dpo_config(DPOConfig(), str(tmp_path / "d0")), to_grpo_config(GRPOConfig(), str(tmp_path / "g0"))):
        assert (args.lr_scheduler_type, args.warmup_steps, args.weight_decay, args.adam_beta2, args.max_grad_norm) == ("linear", 0, 0.0, 0.999, 1.0)
