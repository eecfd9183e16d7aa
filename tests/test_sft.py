"""SFT: instruction formats → one conversation shape, the assistant-only loss mask, the config mapping, and a few
real steps of full and LoRA fine-tuning on the tiny model (loss falls, only adapters move, the merge loads)."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
import trl
from pydantic import ValidationError
from safetensors.torch import load_file

import tasks.train.instructions as instructions
import tasks.train.sft as sft
from tasks.tokenize.train import load_tokenizer
from tasks.train.config import has_cuda
from tasks.train.resume import checkpoint_step
from tasks.train.instructions import InstructionError, load_conversations, split_conversations, to_messages, tokenize_conversation
from tasks.train.model import generate_text, load_model_strict
from tasks.train.sft import DEFAULT_DATA, DEFAULT_TARGETS, SFTConfig, conversations_dataset, end_of_turn_ids, to_sft_config, train_sft

ROOT = Path(__file__).resolve().parent.parent
cpu_only = pytest.mark.skipif(has_cuda(), reason="checks the refusal of GPU settings on a machine without a GPU")

CHAT = [
    {"role": "system", "content": "你是青禾网的助手。"},
    {"role": "user", "content": "给这段话拟个标题。\n\n沿江城际铁路西段今天正式开通。"},
    {"role": "assistant", "content": "沿江城际西段开通"},
]
ALPACA = {"system": "你是青禾网的助手。", "instruction": "给这段话拟个标题。", "input": "沿江城际铁路西段今天正式开通。", "output": "沿江城际西段开通"}
SHAREGPT = {
    "conversations": [
        {"from": "system", "value": "你是青禾网的助手。"},
        {"from": "human", "value": "给这段话拟个标题。\n\n沿江城际铁路西段今天正式开通。"},
        {"from": "gpt", "value": "沿江城际西段开通"},
    ]
}
MESSAGES = {"messages": CHAT}


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_docstring_examples():
    for module in (instructions, sft):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_every_format_becomes_the_same_conversation(tmp_path):
    files = [_jsonl(tmp_path / f"{name}.jsonl", [row]) for name, row in (("alpaca", ALPACA), ("sharegpt", SHAREGPT), ("messages", MESSAGES))]
    array = tmp_path / "alpaca_data.json"
    array.write_text(json.dumps([ALPACA], ensure_ascii=False), encoding="utf-8")
    saved = tmp_path / "hf"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([SHAREGPT, SHAREGPT])}).save_to_disk(str(saved))
    assert load_conversations([*files, array, saved]) == [CHAT] * 6
    assert to_messages(ALPACA, "alpaca") == CHAT
    # no input, and LLaMA-Factory's history of earlier turns
    assert to_messages({"instruction": "你好", "input": "", "output": "你好！", "history": [["在吗", "在的"]]}) == [
        {"role": "user", "content": "在吗"},
        {"role": "assistant", "content": "在的"},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好！"},
    ]


@pytest.mark.parametrize(
    ("row", "data_format", "reason"),
    [
        ({"conversations": [{"from": "human", "value": "你好"}, {"from": "bot", "value": "嗨"}]}, "auto", "'conversations[1].from' is 'bot'"),
        ({"messages": [{"role": "assistant", "content": "我先说"}, {"role": "user", "content": "好"}]}, "auto", "turn 0 is 'assistant' where 'user' was expected"),
        ({"messages": [{"role": "user", "content": "你好"}]}, "auto", "must end with the assistant's reply"),
        ({"instruction": "翻译", "input": "", "output": "  "}, "auto", "the assistant's reply is empty"),
        ({"question": "1+1?", "answer": "2"}, "auto", "a row needs 'messages', 'conversations', or 'instruction' and 'output'"),
        (MESSAGES, "alpaca", "'instruction' must be a string"),
        ('{"messages": [', "auto", "not valid JSON"),
    ],
)
def test_a_bad_row_names_its_file_and_line(tmp_path, row, data_format, reason):
    path = _jsonl(tmp_path / "bad.jsonl", [ALPACA, "", row])
    with pytest.raises(InstructionError) as err:
        load_conversations([path], data_format)
    assert f"{path} line 3: " in str(err.value)
    assert reason in str(err.value)


def test_eval_split_is_seeded_and_never_empty_or_everything():
    rows = [[{"role": "user", "content": str(i)}, {"role": "assistant", "content": "好"}] for i in range(10)]
    train, held = split_conversations(rows, 0.2, seed=3)
    assert len(held) == 2 and len(train) == 8 and sorted(map(str, train + held)) == sorted(map(str, rows))
    assert split_conversations(rows, 0.2, seed=3) == (train, held)
    assert len(split_conversations(rows[:2], 0.01, seed=0)[1]) == 1  # a fraction that rounds to 0 still holds one out
    everything, none = split_conversations(rows, 0.0, seed=0)
    assert none == [] and len(everything) == 10
    assert len(split_conversations(rows[:1], 0.5, seed=0)[0]) == 1  # never all of it: there must be something to train on


def test_demo_instruction_set_is_built_from_the_corpus_and_current():
    result = subprocess.run([sys.executable, "data/sample/instructions/build.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    conversations = load_conversations([ROOT / p for p in DEFAULT_DATA])
    assert 150 <= len(conversations) <= 400
    replies = [c[-1]["content"] for c in conversations]
    assert "沿江城际铁路西段正式开通 两市通勤缩短至四十分钟" in replies  # a title is the gold page's first line
    assert sum("<think>" in r and "</answer>" in r for r in replies) == 60  # the arithmetic with worked solutions
    assert sum(len(c) == 4 for c in conversations) > 20  # sharegpt dialogues of two turns


def test_assistant_mask_covers_exactly_the_assistant_tokens(tiny_base, tmp_path):
    model_dir, tokenizer_dir = tiny_base
    tokenizer = load_tokenizer(tokenizer_dir)
    two_turns = [*CHAT, {"role": "user", "content": "出自哪个频道？"}, {"role": "assistant", "content": "新闻频道。"}]
    args = to_sft_config(SFTConfig(max_steps=1), str(tmp_path), save=False)
    trainer = trl.SFTTrainer(model=load_model_strict(str(model_dir)), args=args, train_dataset=conversations_dataset([CHAT, two_turns]), processing_class=tokenizer)
    for row, conversation in zip(trainer.train_dataset, [CHAT, two_turns], strict=True):
        trained = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
        expected = "".join(m["content"] + "<|im_end|>" for m in conversation if m["role"] == "assistant")
        assert tokenizer.decode(trained) == expected
        # the evaluation's own rendering gives the same ids and the same mask as TRL's
        assert tokenize_conversation(tokenizer, conversation, 10_000) == (row["input_ids"], row["labels"])
    assert end_of_turn_ids(tokenizer) == [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_to_sft_config_maps_our_fields(tmp_path):
    cfg = SFTConfig(learning_rate=2e-4, epochs=2, max_steps=0, batch_size=3, grad_accum_steps=4, max_length=256, packing=True, warmup_ratio=0.1, weight_decay=0.01, seed=7, logging_steps=3, save_steps=9)
    args = to_sft_config(cfg, str(tmp_path), tracking=True)
    assert isinstance(args, trl.SFTConfig)
    assert (args.learning_rate, args.num_train_epochs, args.max_steps, args.warmup_steps, args.weight_decay, args.seed) == (2e-4, 2, -1, 0.1, 0.01, 7)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.max_length, args.packing) == (3, 4, 256, True)
    assert (args.logging_steps, args.save_steps, args.save_strategy, args.report_to) == (3, 9, "steps", ["mlflow"])
    assert args.assistant_only_loss is True
    assert args.use_cpu is not has_cuda() and args.bf16 is False and args.fp16 is False
    assert args.gradient_checkpointing is False  # TRL's default is True
    plain = to_sft_config(SFTConfig(max_steps=5), str(tmp_path), save=False)
    assert (plain.max_steps, plain.report_to, plain.save_strategy) == (5, [], "no")
    with pytest.raises(ValidationError):
        SFTConfig(method="prefix")
    with pytest.raises(ValidationError):
        SFTConfig(warmup_ratio=1.0)


@cpu_only
@pytest.mark.parametrize(("setting", "message"), [({"bf16": True}, "sft.bf16=true needs a CUDA GPU"), ({"method": "qlora"}, "sft.method=qlora"), ({"gradient_checkpointing": True}, "sft.gradient_checkpointing=true")])
def test_gpu_settings_are_refused_on_cpu(tmp_path, setting, message):
    with pytest.raises(ValueError, match=message):
        to_sft_config(SFTConfig(**setting), str(tmp_path))
    with pytest.raises(ValueError, match=message):  # before any model or data is loaded
        train_sft(SFTConfig(**setting, data_paths=["no/such/file.jsonl"]), "no/such/model", "no/such/tokenizer", str(tmp_path))


def tiny_sft(**overrides) -> SFTConfig:
    defaults = dict(max_steps=16, batch_size=8, max_length=320, learning_rate=3e-3, warmup_ratio=0.0, logging_steps=4, save_steps=8, num_samples=2, sample_max_new_tokens=8, cpu_threads=1)
    return SFTConfig(**{**defaults, **overrides})


def test_full_sft_lowers_the_loss_saves_and_resumes(tiny_base, tmp_path):
    model_dir, tokenizer_dir = tiny_base
    summary = train_sft(tiny_sft(), str(model_dir), str(tokenizer_dir), str(tmp_path))
    assert summary["steps"] == 16 and summary["resumed_from"] == ""
    assert summary["last_loss"] < summary["first_loss"] - 0.8, summary["loss_curve"]
    assert summary["parameters"] == summary["trainable_parameters"] > 100_000
    assert summary["eval_conversations"] > 0 and summary["eval_loss"] < summary["first_loss"]
    assert len(summary["samples"]) == 2 and {"prompt", "reference", "response"} <= summary["samples"][0].keys()
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["steps"] == 16
    trained = load_model_strict(summary["model_dir"])
    tokenizer = load_tokenizer(summary["model_dir"])
    assert isinstance(generate_text(trained, tokenizer, "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n", max_new_tokens=4), str)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in trained.generation_config.eos_token_id  # generation stops at the end of the turn

    more = train_sft(tiny_sft(max_steps=18), str(model_dir), str(tokenizer_dir), str(tmp_path))
    assert Path(more["resumed_from"]).name == "checkpoint-16" and more["steps"] == 18
    # a lowered budget never resumes a checkpoint past it (that would train nothing and report 12 steps for 16)
    fewer = train_sft(tiny_sft(max_steps=12), str(model_dir), str(tokenizer_dir), str(tmp_path))
    assert checkpoint_step(fewer["resumed_from"] or None) <= 12 and fewer["steps"] == 12
    assert fewer["loss_curve"] and fewer["loss_curve"][-1][0] == 12  # it trained up to step 12, logging as it went


def test_lora_trains_only_the_adapters_and_merges(tiny_base, tmp_path):
    model_dir, tokenizer_dir = tiny_base
    cfg = tiny_sft(method="lora", lora_r=4, lora_alpha=8, lora_dropout=0.0, max_steps=8, learning_rate=1e-2, num_samples=1)
    summary = train_sft(cfg, str(model_dir), str(tokenizer_dir), str(tmp_path))
    assert 0 < summary["trainable_parameters"] < summary["parameters"] / 4
    assert summary["is_adapter"] is False and (Path(summary["adapter_dir"]) / "adapter_config.json").exists()

    base = load_model_strict(str(model_dir)).state_dict()
    merged_model = load_model_strict(summary["model_dir"])  # a full model again: strict loading passes
    merged = merged_model.state_dict()
    adapter = load_file(str(Path(summary["adapter_dir"]) / "adapter_model.safetensors"))
    scale = cfg.lora_alpha / cfg.lora_r
    targeted = 0
    for name, weight in base.items():
        module = name.removesuffix(".weight")
        a_key = next((k for k in adapter if k.endswith(f"{module}.lora_A.weight")), None)
        if a_key is None:  # embeddings, norms, biases: frozen, so bit-for-bit the base
            assert torch.equal(merged[name], weight), name
            continue
        targeted += 1
        delta = adapter[a_key.replace("lora_A", "lora_B")] @ adapter[a_key] * scale
        assert delta.abs().max() > 0, name  # B starts at zero: a non-zero update means the adapter trained
        torch.testing.assert_close(merged[name], weight + delta, rtol=1e-4, atol=1e-6)
    assert targeted == 2 * len(DEFAULT_TARGETS)  # every projection of both layers
    tokenizer = load_tokenizer(summary["model_dir"])
    assert isinstance(generate_text(merged_model, tokenizer, "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n", max_new_tokens=4), str)


def test_a_changed_config_fine_tunes_afresh_and_a_rerun_resumes_its_own_checkpoint(tiny_base, tmp_path):
    model_dir, tokenizer_dir = tiny_base
    first = train_sft(tiny_sft(max_steps=8, num_samples=0), str(model_dir), str(tokenizer_dir), str(tmp_path))
    changed = train_sft(tiny_sft(max_steps=8, num_samples=0, learning_rate=1e-3), str(model_dir), str(tokenizer_dir), str(tmp_path))
    assert changed["resumed_from"] == "" and changed["steps"] == 8 and changed["first_loss"] == first["first_loss"]  # trained from the base again
    assert changed["last_loss"] != first["last_loss"]
    again = train_sft(tiny_sft(max_steps=8, num_samples=0, learning_rate=1e-3), str(model_dir), str(tokenizer_dir), str(tmp_path))
    own = tmp_path / "checkpoints" / sft.sft_digest(tiny_sft(max_steps=8, num_samples=0, learning_rate=1e-3), str(model_dir), str(tokenizer_dir))
    assert Path(again["resumed_from"]).parent == own
    assert Path(again["resumed_from"]).name == "checkpoint-8" and len(list((tmp_path / "checkpoints").iterdir())) == 2
