"""Distillation: the loss on hand-made tensors, logit KD and sequence-level KD from the tiny model, the refusal of
mismatched vocabularies, and the OpenAI-compatible client against a real local HTTP server."""

from __future__ import annotations

import doctest
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

import tasks.train.distill as distill
from tasks.tokenize.train import load_tokenizer
from tasks.train.config import ModelConfig
from tasks.train.distill import TEACHER_DATA, DistillConfig, VocabularyMismatch, comparison_metrics, distill_loss, parse_layer_map, train_distill
from tasks.train.instructions import load_conversations, prompt_of, split_conversations
from tasks.train.model import build_model, generate_text, load_model_strict
from tasks.train.openai_compat import EndpointError, chat
from tasks.train.sft import DEFAULT_DATA, SFTConfig, generate_replies, train_sft

ROOT = Path(__file__).resolve().parent.parent
DATA = [str(ROOT / p) for p in DEFAULT_DATA]
STUDENT = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)  # ~42K parameters, a quarter of tiny_base
KEY = "sk-test-0123456789abcdef"


def tiny_distill(**overrides) -> DistillConfig:
    defaults = dict(
        student=STUDENT,
        max_steps=12,
        batch_size=8,
        max_length=320,
        learning_rate=3e-3,
        warmup_ratio=0.0,
        logging_steps=2,
        cpu_threads=1,
        num_samples=1,
        teacher_max_new_tokens=12,
        speed_prompts=2,
        speed_new_tokens=4,
    )
    return DistillConfig(**{**defaults, **overrides})


def _shifted_ce(logits, labels):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)


def test_distill_loss_on_hand_made_tensors():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    labels = torch.tensor([[-100, 3, 1, -100, 6], [-100, -100, 2, 0, 4]])
    # alpha 0: plain cross-entropy on the labelled (shifted) tokens
    loss, parts = distill_loss(student, teacher, labels, temperature=2.0, alpha=0.0)
    torch.testing.assert_close(loss, _shifted_ce(student, labels))
    torch.testing.assert_close(parts["ce"], _shifted_ce(student, labels))
    # identical logits: nothing to learn from the teacher
    loss, parts = distill_loss(student, student.clone(), labels, temperature=3.0, alpha=1.0)
    assert abs(parts["kl"].item()) < 1e-6 and abs(loss.item()) < 1e-5
    # alpha 1: T² · KL(teacher_T ‖ student_T), averaged over the labelled tokens, here computed by hand
    T = 2.0
    loss, parts = distill_loss(student, teacher, labels, temperature=T, alpha=1.0)
    mask = labels[:, 1:] != -100
    p_t = torch.softmax(teacher[:, :-1][mask] / T, -1)
    kl = (p_t * (p_t.log() - torch.log_softmax(student[:, :-1][mask] / T, -1))).sum(-1).mean()
    torch.testing.assert_close(parts["kl"], kl)
    torch.testing.assert_close(loss, T**2 * kl)
    # the mix, and positions without a label never count
    mixed, _ = distill_loss(student, teacher, labels, temperature=T, alpha=0.7)
    torch.testing.assert_close(mixed, 0.7 * T**2 * kl + 0.3 * _shifted_ce(student, labels))
    noisy = student.clone()
    noisy[0, 2] += 100.0  # logits at position 2 predict token 3, which has no label
    torch.testing.assert_close(distill_loss(noisy, teacher, labels, T, 0.7)[0], mixed)
    # num_items: the sums are divided by the whole accumulated batch's token count
    torch.testing.assert_close(distill_loss(student, teacher, labels, T, 0.7, num_items=12)[0], mixed * int(mask.sum()) / 12)
    with pytest.raises(VocabularyMismatch):
        distill_loss(student, torch.randn(2, 5, 8), labels, T, 0.5)


def test_docstring_examples():
    assert doctest.testmod(distill).failed == 0


def test_config_bounds_and_layer_map():
    with pytest.raises(ValidationError):
        DistillConfig(temperature=0.5)
    with pytest.raises(ValidationError):
        DistillConfig(alpha=1.5)
    with pytest.raises(ValidationError):
        DistillConfig(hidden_layer_map=["1-2"])
    with pytest.raises(ValidationError, match="go together"):
        DistillConfig(endpoint_base_url="http://localhost:11434/v1")
    with pytest.raises(ValidationError):
        DistillConfig(endpoint_api_key_env="sk-not-a-variable-name")
    assert parse_layer_map(["0:0", "1:2"], 1, 2) == [(0, 0), (1, 2)]
    with pytest.raises(ValueError, match="the student has hidden states 0–1"):
        parse_layer_map(["2:2"], 1, 2)


@pytest.fixture(scope="module")
def teacher(tiny_base, tmp_path_factory) -> Path:
    """tiny_base after 16 steps of SFT on the demo instructions: a teacher with something to teach (an untrained one is near uniform)."""
    model_dir, tokenizer_dir = tiny_base
    cfg = SFTConfig(max_steps=16, batch_size=8, max_length=320, learning_rate=3e-3, warmup_ratio=0.0, eval_fraction=0.0, num_samples=0, cpu_threads=1)
    return Path(train_sft(cfg, str(model_dir), str(tokenizer_dir), str(tmp_path_factory.mktemp("teacher")))["model_dir"])


def test_logit_distillation_lowers_the_student_loss(teacher, tiny_base, tmp_path):
    _, tokenizer_dir = tiny_base
    summary = train_distill(tiny_distill(hidden_layer_map=["1:2"], hidden_weight=1.0), str(teacher), str(tokenizer_dir), DATA, str(tmp_path))
    assert summary["mode"] == "logits" and summary["steps"] == 12
    assert summary["last_loss"] < summary["first_loss"] - 0.5, summary["loss_curve"]
    assert summary["last_kl"] < summary["first_kl"] * 0.8  # the student's distribution moves towards the teacher's
    assert summary["last_ce"] < summary["first_ce"]
    assert summary["last_hidden"] < summary["first_hidden"] * 0.6
    assert summary["student"]["eval_loss"] < math.log(1024) - 0.1  # below the uniform guess on held-out replies
    assert summary["teacher"]["parameters"] > 3 * summary["student"]["parameters"]
    for who in ("teacher", "student"):
        assert summary[who]["eval_ppl"] == pytest.approx(math.exp(summary[who]["eval_loss"]))
        assert summary[who]["tokens_per_s"] > 0
    assert set(comparison_metrics(summary)) >= {"teacher.eval_ppl", "student.eval_ppl", "teacher.tokens_per_s", "student.parameters", "compression"}
    assert {"prompt", "reference", "teacher", "student"} <= summary["samples"][0].keys()
    student = load_model_strict(summary["model_dir"])  # the projections of the hidden alignment are not in it
    assert student.config.hidden_size == 32
    assert isinstance(generate_text(student, load_tokenizer(summary["model_dir"]), "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n", 4), str)


def test_mismatched_vocabularies_are_refused(tiny_base, tmp_path):
    teacher_dir, tokenizer_dir = tiny_base
    tokenizer = load_tokenizer(tokenizer_dir)
    wider = tmp_path / "wider"
    build_model(STUDENT.model_copy(update={"pad_vocab_to_multiple": 100}), tokenizer, seed=0).save_pretrained(wider)  # 1100 rows for 1024 tokens
    with pytest.raises(VocabularyMismatch, match="the teacher predicts 1024 tokens, the student 1100"):
        train_distill(tiny_distill(student_model=str(wider)), str(teacher_dir), str(tokenizer_dir), DATA, str(tmp_path / "a"))
    other = tmp_path / "other-tokenizer"
    build_model(STUDENT, tokenizer, seed=0).save_pretrained(other)
    tokenizer.add_tokens(["青禾网"])  # same model width, one more token: ids no longer mean the same thing
    tokenizer.save_pretrained(other)
    with pytest.raises(VocabularyMismatch, match="the tokenizer saved with the student"):
        train_distill(tiny_distill(student_model=str(other)), str(teacher_dir), str(tokenizer_dir), DATA, str(tmp_path / "b"))
    assert not (tmp_path / "a" / "model").exists() and not (tmp_path / "b" / "model").exists()


def test_sequence_distillation_with_the_local_teacher(tiny_base, tmp_path):
    teacher_dir, tokenizer_dir = tiny_base
    # the untrained teacher's greedy answer is blank lines; sampling makes it say something
    cfg = tiny_distill(mode="sequence", num_prompts=8, teacher_temperature=1.0, max_steps=4)
    summary = train_distill(cfg, str(teacher_dir), str(tokenizer_dir), DATA, str(tmp_path))
    rows = [json.loads(line) for line in Path(summary["teacher_data"]["path"]).read_text(encoding="utf-8").splitlines()]
    assert summary["teacher_data"]["answers"] == len(rows) > 0 and summary["teacher_data"]["prompts"] == 8

    train_rows, _ = split_conversations(load_conversations(DATA), cfg.eval_fraction, cfg.seed)
    prompts = [prompt_of(c) for c in train_rows[:8]]
    teacher, tokenizer = load_model_strict(str(teacher_dir)), load_tokenizer(tokenizer_dir)
    answers = [a for a in generate_replies(teacher, tokenizer, prompts, cfg.teacher_max_new_tokens, 1.0, cfg.seed) if a.strip()]
    assert [r["messages"][-1]["content"] for r in rows] == answers  # the student's data is what the teacher said
    assert [r["messages"][:-1] for r in rows][0] in prompts

    assert summary["steps"] == 4 and summary["student"]["parameters"] < summary["teacher"]["parameters"]
    assert load_model_strict(summary["model_dir"]).config.num_hidden_layers == 1
    again = train_distill(cfg, str(teacher_dir), str(tokenizer_dir), DATA, str(tmp_path))  # a rerun reuses the answers and resumes
    assert again["teacher_data"].get("reused") is True and Path(again["resumed_from"]).name == "checkpoint-4"


class FakeEndpoint(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions that plays a script of answers and records each request."""

    script: list[tuple[int, dict, str]] = []
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeEndpoint.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if FakeEndpoint.script:
            status, headers, text = FakeEndpoint.script.pop(0)
        elif self.headers.get("Authorization") != f"Bearer {KEY}":
            status, headers, text = 401, {}, json.dumps({"error": f"bad key in header {self.headers.get('Authorization')}"})
        else:
            question = body["messages"][-1]["content"]
            status, headers, text = 200, {}, json.dumps({"choices": [{"message": {"role": "assistant", "content": f"老师说：{question[:6]}"}}]}, ensure_ascii=False)
        payload = text.encode("utf-8")
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(payload)), **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def endpoint():
    FakeEndpoint.script, FakeEndpoint.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_endpoint_client_sends_the_key_retries_and_never_leaks_it(endpoint, monkeypatch):
    monkeypatch.setenv("LIANDAN_TEST_KEY", KEY)
    hello = [{"role": "user", "content": "你好，老师"}]
    FakeEndpoint.script = [(429, {"Retry-After": "0"}, "slow down"), (503, {}, "busy")]
    assert chat(endpoint, "teacher-7b", hello, "LIANDAN_TEST_KEY", 5, backoff=0.01) == "老师说：你好，老师"
    assert len(FakeEndpoint.seen) == 3 and {s["path"] for s in FakeEndpoint.seen} == {"/v1/chat/completions"}
    assert FakeEndpoint.seen[-1]["auth"] == f"Bearer {KEY}" and FakeEndpoint.seen[-1]["body"]["model"] == "teacher-7b"

    monkeypatch.setenv("LIANDAN_TEST_KEY", KEY + "-wrong")  # the server echoes the header back in its 401
    with pytest.raises(EndpointError, match="answered 401") as err:
        chat(endpoint, "teacher-7b", hello, "LIANDAN_TEST_KEY", 5, backoff=0.01)
    assert KEY not in str(err.value) and "***" in str(err.value)
    FakeEndpoint.script = [(500, {}, "down")] * 3
    with pytest.raises(EndpointError, match="answered 500"):
        chat(endpoint, "teacher-7b", hello, "LIANDAN_TEST_KEY", 5, retries=2, backoff=0.01)
    with pytest.raises(EndpointError, match="LIANDAN_MISSING_KEY .* is not set"):
        chat(endpoint, "teacher-7b", hello, "LIANDAN_MISSING_KEY", 5)


def test_sequence_distillation_from_an_endpoint_teacher(endpoint, tiny_base, tmp_path, monkeypatch):
    _, tokenizer_dir = tiny_base
    monkeypatch.setenv("LIANDAN_TEST_KEY", KEY)
    cfg = tiny_distill(mode="sequence", num_prompts=6, max_steps=2, endpoint_base_url=endpoint, endpoint_model="teacher-7b", endpoint_api_key_env="LIANDAN_TEST_KEY")
    summary = train_distill(cfg, "", str(tokenizer_dir), DATA, str(tmp_path))
    assert len(FakeEndpoint.seen) == 6 and summary["teacher_data"]["answers"] == 6
    assert summary["teacher_endpoint"] == "teacher-7b" and "teacher" not in summary and summary["steps"] == 2
    rows = Path(summary["teacher_data"]["path"]).read_text(encoding="utf-8")
    assert rows.count("老师说：") == 6
    assert KEY not in (tmp_path / "summary.json").read_text(encoding="utf-8") + rows


def test_teacher_data_is_kept_by_teacher_and_generation_settings(teacher, tiny_base, tmp_path):
    _, tokenizer_dir = tiny_base
    cfg = tiny_distill(mode="sequence", num_prompts=4, teacher_temperature=1.0, max_steps=2, num_samples=0)
    first = train_distill(cfg, str(teacher), str(tokenizer_dir), DATA, str(tmp_path))
    assert "reused" not in first["teacher_data"] and Path(first["teacher_data"]["path"]).parent.parent == tmp_path / distill.TEACHER_DIR

    # the logit temperature plays no part in sequence mode: the teacher's answers are reused
    logit_t = train_distill(cfg.model_copy(update={"temperature": 4.0}), str(teacher), str(tokenizer_dir), DATA, str(tmp_path))
    assert logit_t["teacher_data"]["reused"] is True and logit_t["teacher_data"]["path"] == first["teacher_data"]["path"]
    assert logit_t["teacher_data"]["answers"] == first["teacher_data"]["answers"]

    # the teacher's own sampling temperature decides its answers: they are generated again, beside the first ones
    hotter = train_distill(cfg.model_copy(update={"teacher_temperature": 1.5}), str(teacher), str(tokenizer_dir), DATA, str(tmp_path))
    assert "reused" not in hotter["teacher_data"] and hotter["teacher_data"]["path"] != first["teacher_data"]["path"]
    assert Path(first["teacher_data"]["path"]).exists()  # the first answers stay for a run that goes back to them
    assert hotter["resumed_from"] == ""  # new data: the student is not resumed from the checkpoints trained on the old answers

    # logits mode distils from the teacher's logits and writes no teacher data
    logits = train_distill(tiny_distill(max_steps=2, num_samples=0, temperature=4.0), str(teacher), str(tokenizer_dir), DATA, str(tmp_path / "logits"))
    assert "teacher_data" not in logits and not (tmp_path / "logits" / distill.TEACHER_DIR).exists()


def test_the_no_teacher_baseline_is_the_same_student_trained_on_the_reference_alone(teacher, tiny_base, tmp_path):
    _, tokenizer_dir = tiny_base
    summary = train_distill(tiny_distill(baseline=True, num_samples=0), str(teacher), str(tokenizer_dir), DATA, str(tmp_path))
    student, baseline = summary["student"], summary["baseline"]
    assert baseline["parameters"] == student["parameters"] and baseline["eval_loss"] != student["eval_loss"]
    assert baseline["eval_loss"] < math.log(1024) - 0.1  # it learnt from the references: a real baseline, not an untrained model
    assert baseline["eval_ppl"] == pytest.approx(math.exp(baseline["eval_loss"]))
    assert {"baseline.eval_ppl", "student.eval_ppl", "teacher.eval_ppl"} <= set(comparison_metrics(summary))
    assert load_model_strict(str(tmp_path / "baseline" / "model")).config.hidden_size == 32
    assert "baseline" not in train_distill(tiny_distill(num_samples=0, max_steps=1), str(teacher), str(tokenizer_dir), DATA, str(tmp_path / "plain"))
