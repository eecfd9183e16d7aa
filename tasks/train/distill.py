"""Knowledge distillation of a teacher into a smaller student: from the teacher's logits, or from its answers.

Logits (Hinton et al. 2015, arxiv 1503.02531): on every assistant token the student matches the teacher's
softened distribution as well as the reference token,

    loss = α · T² · KL(softmax(t / T) ‖ softmax(s / T)) + (1 − α) · CE(s, y)

T² keeps the soft term's gradients at the scale of the hard one's as T grows. Both models see the same batch;
the teacher runs in eval mode without gradients. Comparing distributions token by token needs one vocabulary,
so a teacher and student whose tokenizers or logit widths differ are refused. Optionally hidden states are
aligned too (a layer map ``student:teacher``, each pair through a learned linear projection, mean squared error).

Sequence level (Kim & Rush 2016, arxiv 1606.07947): the teacher — the local model, or any OpenAI-compatible
endpoint — answers the training prompts, and the student is fine-tuned on those answers with
``tasks.train.sft.train_sft``. No shared vocabulary is needed.

Either way the summary sets teacher and student side by side: parameters, held-out loss and perplexity on the
reference answers, and generation speed. Writes ``<output_dir>/model/`` (the student, loadable strictly) and
``<output_dir>/summary.json``; sequence mode also ``teacher/<digest>/teacher_data.jsonl``, keyed by the teacher, its
generation settings and the prompts (reused on a rerun with the same key: endpoint calls cost).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from tasks.train.config import CheckpointSettings, Epochs, GenerationSettings, ModelConfig, RegisteredModel, TrainSettings, WarmupRatio, settings_of
from tasks.train.instructions import DataFormat
from tasks.train.sft import SFTConfig

if TYPE_CHECKING:  # torch, transformers and trl load in seconds; recipes and the flow import the config without them
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tasks.train.instructions import Conversation

LayerPair = Annotated[str, StringConstraints(pattern=r"^\d+:\d+$")]
TEACHER_DATA = "teacher_data.jsonl"
TEACHER_DIR = "teacher"  # <output_dir>/teacher/<digest>/teacher_data.jsonl
STUDENT_INIT = "student_init"


def default_student() -> ModelConfig:
    """Return the default student: half the demo base model's width and depth (~4× fewer non-embedding weights)."""
    return ModelConfig(hidden_size=96, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256)


class DistillConfig(CheckpointSettings, TrainSettings):
    """Knowledge distillation into a smaller student: from the teacher's softened logits (same vocabulary), or
    from the teacher's answers to the training prompts (local model or an OpenAI-compatible endpoint).

    The training and checkpoint settings are the student's SFT settings (``student_sft_config``); checkpoints are
    written in sequence mode only (logits mode keeps projections outside the model)."""

    epochs: Epochs = 3.0
    warmup_ratio: WarmupRatio = 0.05
    registered_model: RegisteredModel = "liandan-student"

    mode: Literal["logits", "sequence"] = Field(
        "logits", description="logits: match the teacher's token distributions (shared vocabulary); sequence: fine-tune on the teacher's generated answers."
    )
    temperature: float = Field(2.0, ge=1, le=10, description="logits: softmax temperature T of both models in the KL term; higher shares more of the teacher's ranking of wrong tokens.")
    alpha: float = Field(0.5, ge=0, le=1, description="logits: weight of the soft (teacher) term; 1 − alpha weighs the hard cross-entropy on the reference (0.5–0.9 is usual).")
    student: ModelConfig = Field(default_factory=default_student, description="The student built from scratch with the teacher's tokenizer (ignored when student_model is set).")
    student_model: str = Field("", max_length=500, description="Start the student from this HF model path or hub id instead of building it from `student`.")
    hidden_layer_map: list[LayerPair] = Field(
        default_factory=list,
        description="logits: hidden states to align, 'student:teacher' (0 = embeddings, k = output of layer k), e.g. ['1:2', '2:4'].",
    )
    hidden_weight: float = Field(0.0, ge=0, le=100, description="logits: weight of the hidden-state alignment loss (learned linear projection, MSE); 0: off.")
    max_length: int = Field(512, ge=16, le=1_048_576, description="Tokens kept per conversation; longer ones are cut at the end.")
    eval_fraction: float = Field(0.1, gt=0, lt=1, description="Share of conversations held out to compare teacher and student on the reference answers.")
    data_format: DataFormat = Field("auto", description="Row format of the instruction data: alpaca, sharegpt or messages; auto: by each row's keys.")
    num_prompts: int = Field(0, ge=0, le=10_000_000, description="sequence: training prompts the teacher answers; 0: all of them.")
    teacher_max_new_tokens: int = Field(128, ge=1, le=32_768, description="sequence: longest teacher answer, in tokens.")
    teacher_temperature: float = Field(0.0, ge=0, le=5, description="sequence: the teacher's sampling temperature; 0: greedy (the most likely answer, as Kim & Rush's beam).")
    endpoint_base_url: str = Field(
        "",
        max_length=500,
        description="sequence: an OpenAI-compatible endpoint as the teacher, e.g. https://api.deepseek.com/v1 or http://localhost:11434/v1 (Ollama); empty: the local teacher.",
    )
    endpoint_model: str = Field("", max_length=200, description="sequence: the endpoint's model name, e.g. deepseek-chat or qwen2.5:7b.")
    endpoint_api_key_env: str = Field(
        "",
        pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$",
        max_length=100,
        description="sequence: NAME of the environment variable holding the endpoint's API key (e.g. DEEPSEEK_API_KEY); the key itself is never stored or logged.",
    )
    endpoint_timeout: float = Field(60.0, gt=0, le=3600, description="sequence: seconds to wait for one endpoint answer.")
    speed_prompts: int = Field(4, ge=1, le=1000, description="Held-out prompts each model generates for to measure tokens/s.")
    speed_new_tokens: int = Field(32, ge=1, le=8192, description="Tokens generated per prompt when measuring speed (forced, so both models generate as many).")
    num_samples: int = Field(3, ge=0, le=1000, description="Held-out prompts answered by teacher and student, side by side, in the summary.")
    baseline: bool = Field(
        False,
        description="logits: also train an equally sized student without the teacher (alpha 0: cross-entropy on the reference answers only, "
        "same initialisation, data and steps) and report it as a third column, so the teacher's effect is measured, not assumed.",
    )

    @model_validator(mode="after")
    def _one_student(self) -> DistillConfig:
        if self.student.base_model:
            raise ValueError("set distill.student_model to start the student from a model, not distill.student.base_model")
        if bool(self.endpoint_base_url) != bool(self.endpoint_model):
            raise ValueError("distill.endpoint_base_url and distill.endpoint_model go together: set both (endpoint teacher) or neither (local teacher)")
        return self


class VocabularyMismatch(ValueError):
    """Teacher and student do not share a vocabulary, so their token distributions cannot be compared."""


def student_sft_config(cfg: DistillConfig, data_paths: list[str], data_format: DataFormat) -> SFTConfig:
    """Return the SFT config that trains the student: ``cfg``'s training and checkpoint settings, full weights, no held-out split or samples of its own."""
    return SFTConfig(
        **settings_of(cfg, TrainSettings, CheckpointSettings),
        method="full",
        max_length=cfg.max_length,
        eval_fraction=0.0,  # the held-out comparison is distillation's own, the same for teacher and student
        data_paths=data_paths,
        data_format=data_format,
        num_samples=0,
    )


def distill_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
    num_items: int | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Return α·T²·KL(teacher_T ‖ student_T) + (1 − α)·CE over the labelled tokens, and the parts (kl, ce) detached.

    ``labels`` are aligned with the logits as HF passes them (position i's label is token i, -100 where there is
    no loss); the function shifts them so logits at i predict token i + 1. The sums are divided by ``num_items``
    when given (the labelled tokens of a whole accumulated batch), else by this batch's labelled tokens.
    """
    import torch
    import torch.nn.functional as F

    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise VocabularyMismatch(f"student logits have {student_logits.shape[-1]} entries per token, the teacher's {teacher_logits.shape[-1]}")
    targets = labels[:, 1:]
    mask = targets != -100
    s = student_logits[:, :-1][mask].float()  # (tokens, vocab): only labelled positions are ever softmaxed
    t = teacher_logits[:, :-1][mask].float()
    n = torch.as_tensor(num_items if num_items is not None else mask.sum(), device=s.device).clamp(min=1)
    ce = F.cross_entropy(s, targets[mask], reduction="sum") / n
    log_t = F.log_softmax(t / temperature, dim=-1)
    log_s = F.log_softmax(s / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum() / n
    loss = alpha * temperature**2 * kl + (1 - alpha) * ce
    return loss, {"kl": kl.detach(), "ce": ce.detach()}


def parse_layer_map(pairs: list[str], student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """Return the 'student:teacher' pairs as ints; raise when one names a layer a model does not have.

    >>> parse_layer_map(["1:2", "2:4"], 2, 4)
    [(1, 2), (2, 4)]
    """
    out = []
    for pair in pairs:
        s, t = (int(x) for x in pair.split(":"))
        if s > student_layers or t > teacher_layers:
            raise ValueError(f"distill.hidden_layer_map {pair!r}: the student has hidden states 0–{student_layers}, the teacher 0–{teacher_layers}")
        out.append((s, t))
    return out


def hidden_alignment_loss(
    student_hidden: tuple[torch.Tensor, ...],
    teacher_hidden: tuple[torch.Tensor, ...],
    projections: torch.nn.ModuleList,
    pairs: list[tuple[int, int]],
    attention_mask: torch.Tensor | None,
) -> torch.Tensor:
    """Return the mean over ``pairs`` of the mean squared error between projected student and teacher hidden states on real tokens."""
    import torch

    losses = []
    for proj, (s, t) in zip(projections, pairs, strict=True):
        diff = (proj(student_hidden[s].float()) - teacher_hidden[t].float()).pow(2).mean(dim=-1)  # (batch, seq)
        if attention_mask is None:
            losses.append(diff.mean())
        else:
            m = attention_mask.to(diff.dtype)
            losses.append((diff * m).sum() / m.sum().clamp(min=1))
    return torch.stack(losses).mean()


def check_same_vocabulary(teacher: PreTrainedModel, student: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, others: dict[str, PreTrainedTokenizerBase]) -> None:
    """Raise VocabularyMismatch unless both models have the same logit width, the tokenizer fits it, and every tokenizer in ``others`` equals ``tokenizer``."""
    t_rows = teacher.get_output_embeddings().weight.shape[0]
    s_rows = student.get_output_embeddings().weight.shape[0]
    hint = "logit distillation compares distributions over the same token ids: build the student with the teacher's tokenizer and vocabulary size, or use distill.mode=sequence"
    if t_rows != s_rows:
        raise VocabularyMismatch(f"the teacher predicts {t_rows} tokens, the student {s_rows}: {hint}")
    if len(tokenizer) > s_rows:
        raise VocabularyMismatch(f"the tokenizer has {len(tokenizer)} tokens, more than the models' {s_rows} rows: {hint}")
    vocab = tokenizer.get_vocab()
    for where, other in others.items():
        if other.get_vocab() != vocab:
            raise VocabularyMismatch(f"the tokenizer saved with {where} ({len(other)} tokens) differs from the training tokenizer ({len(tokenizer)} tokens): {hint}")


def _trainer_class():
    """Return the logit-distillation trainer class (built on first use: trl loads in seconds)."""
    import torch
    from trl import SFTTrainer

    class LogitDistiller(SFTTrainer):
        """TRL's SFTTrainer (same chat rendering, assistant-only labels, collation) with the distillation loss."""

        loss_is_scaled_for_ga = True  # compute_loss divides by the whole accumulated batch's tokens itself

        def __init__(self, *args, teacher, temperature: float, alpha: float, layer_pairs: list[tuple[int, int]], hidden_weight: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)
            self.temperature, self.alpha = temperature, alpha
            self.layer_pairs = layer_pairs if hidden_weight > 0 else []
            self.hidden_weight = hidden_weight
            s_width = self.model.config.get_text_config().hidden_size
            t_width = teacher.config.get_text_config().hidden_size
            self.projections = torch.nn.ModuleList(torch.nn.Linear(s_width, t_width, bias=False) for _ in self.layer_pairs).to(self.args.device)

        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            if self.layer_pairs and not any(g.get("liandan_projections") for g in optimizer.param_groups):
                # the projections learn with the student but are not part of it (the saved student loads strictly)
                optimizer.add_param_group({"params": list(self.projections.parameters()), "weight_decay": 0.0, "liandan_projections": True})
            return optimizer

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            mode = "train" if model.training else "eval"
            forward = {k: inputs[k] for k in ("input_ids", "attention_mask", "position_ids") if k in inputs}
            hidden = bool(self.layer_pairs)
            student_out = model(**forward, use_cache=False, output_hidden_states=hidden)
            with torch.no_grad():
                teacher_out = self.teacher(**forward, use_cache=False, output_hidden_states=hidden)
            loss, parts = distill_loss(student_out.logits, teacher_out.logits, inputs["labels"], self.temperature, self.alpha, num_items_in_batch)
            # Without num_items the loss is this micro-batch's mean, so accumulation must average it; with it, the
            # token sums already add up to the accumulated batch's mean, and only the per-batch hidden term needs it.
            steps = self.current_gradient_accumulation_steps if model.training else 1
            if num_items_in_batch is None:
                loss = loss / steps
            elif self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients; num_items counted every rank's tokens
            if hidden:
                h = hidden_alignment_loss(student_out.hidden_states, teacher_out.hidden_states, self.projections, self.layer_pairs, inputs.get("attention_mask"))
                loss = loss + self.hidden_weight * h / steps
                parts["hidden"] = h.detach()
            for name, value in parts.items():
                self._metrics[mode][f"kd_{name}"].append(value.item())
            return (loss, student_out) if return_outputs else loss

    return LogitDistiller


def assistant_loss(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, conversations: list[Conversation], max_length: int, batch_size: int = 8) -> float:
    """Return the mean cross-entropy per assistant token of ``conversations`` under ``model`` (the SFT loss, for any model)."""
    import torch
    import torch.nn.functional as F

    from tasks.train.instructions import tokenize_conversation

    encoded = [tokenize_conversation(tokenizer, c, max_length) for c in conversations]
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in chunk], device=model.device)
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk], device=model.device)
            mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk], device=model.device)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
            targets = labels[:, 1:]
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum").item()
            count += int((targets != -100).sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


def generation_speed(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[Conversation], new_tokens: int) -> float:
    """Return generated tokens per second over ``prompts``, one at a time, greedy, exactly ``new_tokens`` each."""
    import torch

    was_training = model.training
    model.eval()
    encoded = [tokenizer.apply_chat_template(p, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"].to(model.device) for p in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    try:
        with torch.no_grad():
            model.generate(encoded[0], max_new_tokens=2, do_sample=False, pad_token_id=pad)  # warm-up: first-call allocations are not speed
            started = time.perf_counter()
            for ids in encoded:
                model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=pad)
            seconds = time.perf_counter() - started
    finally:
        model.train(was_training)
    return new_tokens * len(encoded) / seconds


def model_report(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, held_out: list[Conversation], cfg: DistillConfig) -> dict:
    """Return one column of the side-by-side table: parameters, held-out loss and perplexity, generation tokens/s."""
    from tasks.train.instructions import prompt_of
    from tasks.train.model import count_parameters

    loss = assistant_loss(model, tokenizer, held_out, cfg.max_length, cfg.batch_size)
    return {
        "parameters": count_parameters(model),
        "eval_loss": loss,
        "eval_ppl": math.exp(min(loss, 50.0)),  # exp overflows past ~709; 50 already means "untrained"
        "tokens_per_s": generation_speed(model, tokenizer, [prompt_of(c) for c in held_out[: cfg.speed_prompts]], cfg.speed_new_tokens),
    }


def has_tokenizer(path: str | Path) -> bool:
    """Return whether a local model folder carries its own tokenizer."""
    return (Path(path) / "tokenizer_config.json").is_file()


def build_student(cfg: DistillConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """Return the student: loaded strictly from ``cfg.student_model``, or built from ``cfg.student`` with the tokenizer."""
    from tasks.train.model import build_model, load_model_strict

    return load_model_strict(cfg.student_model) if cfg.student_model else build_model(cfg.student, tokenizer, cfg.seed)


def teacher_generation(cfg: DistillConfig) -> GenerationSettings:
    """Return how the teacher answers in sequence mode: ``teacher_max_new_tokens``, ``teacher_temperature``, seeded by ``seed``."""
    return GenerationSettings(max_new_tokens=cfg.teacher_max_new_tokens, temperature=cfg.teacher_temperature, seed=cfg.seed)


def teacher_data_digest(cfg: DistillConfig, teacher_dir: str, prompts: list[Conversation]) -> str:
    """Return the digest the teacher's answers are kept under: the teacher (model folder or endpoint), how it generates, the prompts.

    Only these decide the answers; the logit-mode settings (``temperature``, ``alpha``) and the student's training do not.
    """
    from tasks.store import stage_digest
    from tasks.train.resume import path_digest

    teacher = f"endpoint {cfg.endpoint_base_url} {cfg.endpoint_model}" if cfg.endpoint_base_url else path_digest(teacher_dir)
    return stage_digest(teacher_generation(cfg), [teacher, json.dumps(prompts, ensure_ascii=False)])


def teacher_answers(cfg: DistillConfig, prompts: list[Conversation], teacher: PreTrainedModel | None, tokenizer: PreTrainedTokenizerBase | None) -> list[str]:
    """Return the teacher's answer to each prompt: from the endpoint when one is configured, else generated locally."""
    if cfg.endpoint_base_url:
        import httpx

        from tasks.train.openai_compat import chat

        with httpx.Client(timeout=cfg.endpoint_timeout) as client:
            return [
                chat(
                    cfg.endpoint_base_url,
                    cfg.endpoint_model,
                    p,
                    cfg.endpoint_api_key_env,
                    cfg.endpoint_timeout,
                    temperature=cfg.teacher_temperature,
                    max_tokens=cfg.teacher_max_new_tokens,
                    client=client,
                )
                for p in prompts
            ]
    from tasks.train.generation import generate_texts

    return [texts[0] for texts in generate_texts(teacher, tokenizer, prompts, teacher_generation(cfg))]


def write_teacher_data(path: Path, prompts: list[Conversation], answers: list[str]) -> dict:
    """Write prompt + teacher answer conversations as messages JSON lines (empty answers left out); return the counts."""
    rows = [{"messages": [*p, {"role": "assistant", "content": a}]} for p, a in zip(prompts, answers, strict=True) if a.strip()]
    if not rows:
        raise ValueError(f"the teacher answered none of the {len(prompts)} prompts (every answer was empty); nothing to distil")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)  # written whole or not at all: a rerun reuses it only when complete
    return {"prompts": len(prompts), "answers": len(rows), "empty_answers": len(prompts) - len(rows)}


def _distil_logits(
    cfg: DistillConfig,
    teacher: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    teacher_tokenizer: PreTrainedTokenizerBase,
    tokenizer_dir: str,
    train_rows: list[Conversation],
    paths: list[str],
    out: Path,
    report_to_mlflow: bool,
) -> dict:
    """Train the student on the logit loss; save it to ``out/model``; return the training figures."""
    from tasks.train.save import save_trained
    from tasks.train.sft import conversations_dataset, loss_curve, run_trainer, to_sft_config
    from tasks.tokenize.train import load_tokenizer

    student = build_student(cfg, tokenizer)
    others = {"the teacher": teacher_tokenizer} if teacher_tokenizer is not tokenizer else {}
    if cfg.student_model and has_tokenizer(cfg.student_model):
        others["the student"] = load_tokenizer(cfg.student_model)
    check_same_vocabulary(teacher, student, tokenizer, others)
    pairs = parse_layer_map(cfg.hidden_layer_map, student.config.get_text_config().num_hidden_layers, teacher.config.get_text_config().num_hidden_layers)
    args = to_sft_config(student_sft_config(cfg, paths, cfg.data_format), str(out / "checkpoints"), tracking=report_to_mlflow, save=False)  # the projections are not in a checkpoint
    trainer = _trainer_class()(
        model=student,
        args=args,
        train_dataset=conversations_dataset(train_rows),
        processing_class=tokenizer,
        teacher=teacher,
        temperature=cfg.temperature,
        alpha=cfg.alpha,
        layer_pairs=pairs,
        hidden_weight=cfg.hidden_weight,
    )
    seconds = run_trainer(trainer, cfg.cpu_threads)
    save_trained(trainer, tokenizer, tokenizer_dir, out / "model")
    history = trainer.state.log_history
    curve = loss_curve(history)
    logged = [e for e in history if "kd_kl" in e]
    parts = {}
    for name in ("kl", "ce", "hidden"):
        if logged and f"kd_{name}" in logged[0]:
            parts[f"first_{name}"], parts[f"last_{name}"] = logged[0][f"kd_{name}"], logged[-1][f"kd_{name}"]
    return {
        "student": student,
        "steps": trainer.state.global_step,
        "first_loss": curve[0][1] if curve else None,
        "last_loss": curve[-1][1] if curve else None,
        "loss_curve": curve,
        **parts,  # first_kl, last_kl, first_ce, last_ce (and first_hidden, last_hidden when aligning hidden states)
        "train_seconds": seconds,
    }


def _distil_sequences(
    cfg: DistillConfig,
    teacher_dir: str,
    teacher: PreTrainedModel | None,
    teacher_tokenizer: PreTrainedTokenizerBase,
    tokenizer: PreTrainedTokenizerBase,
    tokenizer_dir: str,
    train_rows: list[Conversation],
    out: Path,
    report_to_mlflow: bool,
) -> dict:
    """Have the teacher answer the training prompts, fine-tune the student on them with train_sft; return the figures.

    The answers live in ``<out>/teacher/<digest>/teacher_data.jsonl`` (``teacher_data_digest``): a rerun with the
    same teacher, generation settings and prompts reuses the answers it paid for; any change there regenerates them.
    The student's initial weights live under a folder keyed by its config the same way.
    """
    from tasks.store import keyed_dir, read_done, stage_digest, write_done
    from tasks.train.instructions import prompt_of
    from tasks.train.model import load_model_strict
    from tasks.train.resume import tokenizer_input_digest
    from tasks.train.save import copy_tokenizer
    from tasks.train.sft import train_sft

    chosen = train_rows[: cfg.num_prompts] if cfg.num_prompts else train_rows
    prompts = [prompt_of(c) for c in chosen]
    digest = teacher_data_digest(cfg, teacher_dir, prompts)
    folder = keyed_dir(out / TEACHER_DIR, digest)
    data = folder / TEACHER_DATA
    started = time.perf_counter()
    done = read_done(folder, digest)
    if done is not None and data.exists():  # a rerun (or a resumed run) keeps the answers it paid for
        generated = {**done, "reused": True}
    else:
        generated = write_teacher_data(data, prompts, teacher_answers(cfg, prompts, teacher, teacher_tokenizer))
        write_done(folder, digest, generated)
    generated["seconds"] = time.perf_counter() - started
    if cfg.student_model:
        init = cfg.student_model
    else:
        init_digest = stage_digest(cfg.student, [tokenizer_input_digest(tokenizer_dir), str(cfg.seed)])
        init_dir = keyed_dir(out / STUDENT_INIT, init_digest)
        if read_done(init_dir, init_digest) is None:
            build_student(cfg, tokenizer).save_pretrained(str(init_dir))
            copy_tokenizer(tokenizer_dir, init_dir)
            write_done(init_dir, init_digest, {"student": cfg.student.model_dump(mode="json")})
        init = str(init_dir)
    sft = train_sft(student_sft_config(cfg, [str(data)], "messages"), init, tokenizer_dir, str(out), report_to_mlflow)
    return {
        "student": load_model_strict(sft["model_dir"]),
        "teacher_data": {"path": str(data), **generated},
        **{k: sft[k] for k in ("steps", "first_loss", "last_loss", "loss_curve", "train_seconds", "resumed_from")},
    }


def train_distill(cfg: DistillConfig, teacher_dir: str, tokenizer_dir: str, data_path: str | list[str], output_dir: str, report_to_mlflow: bool = False) -> dict:
    """Distil the teacher at ``teacher_dir`` into a new student on the instructions at ``data_path``; return the summary.

    ``teacher_dir`` may be empty in sequence mode with an endpoint teacher (the side-by-side then has no teacher
    column). With ``report_to_mlflow`` the trainer logs into the active MLflow run (the caller opens it on the
    stage's child run): the loss curve and, in logits mode, its ``kd_kl``/``kd_ce`` parts.
    """
    import torch

    from tasks.store import atomic_write_json
    from tasks.tokenize.train import load_tokenizer
    from tasks.train.config import has_cuda
    from tasks.train.instructions import load_conversations, prompt_of, split_conversations
    from tasks.train.model import load_model_strict
    from tasks.train.sft import check_hardware, generate_replies

    paths = [data_path] if isinstance(data_path, str) else list(data_path)
    check_hardware(student_sft_config(cfg, paths, cfg.data_format), has_cuda())  # refuse GPU settings on CPU before loading anything
    if not teacher_dir and not (cfg.mode == "sequence" and cfg.endpoint_base_url):
        raise ValueError("train_distill needs teacher_dir unless distill.mode=sequence with an endpoint teacher")
    out = Path(output_dir)
    tokenizer = load_tokenizer(tokenizer_dir)
    train_rows, held_out = split_conversations(load_conversations(paths, cfg.data_format), cfg.eval_fraction, cfg.seed)
    device = "cuda" if has_cuda() else "cpu"  # generation and the side-by-side evaluation run where training does
    teacher = load_model_strict(teacher_dir).to(device) if teacher_dir else None
    teacher_tokenizer = load_tokenizer(teacher_dir) if teacher_dir and has_tokenizer(teacher_dir) else tokenizer

    threads = torch.get_num_threads()
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        if cfg.mode == "logits":
            result = _distil_logits(cfg, teacher, tokenizer, teacher_tokenizer, tokenizer_dir, train_rows, paths, out, report_to_mlflow)
        else:
            result = _distil_sequences(cfg, teacher_dir, teacher, teacher_tokenizer, tokenizer, tokenizer_dir, train_rows, out, report_to_mlflow)
        student = result.pop("student").to(device)
        side_by_side = {"student": model_report(student, tokenizer, held_out, cfg)}
        if teacher is not None:
            side_by_side["teacher"] = model_report(teacher, teacher_tokenizer, held_out, cfg)
        if cfg.baseline and cfg.mode == "logits":
            side_by_side["baseline"] = train_baseline(cfg, teacher, tokenizer, teacher_tokenizer, tokenizer_dir, train_rows, held_out, paths, out).pop("report")
        chosen = held_out[: cfg.num_samples]
        prompts = [prompt_of(c) for c in chosen]
        student_replies = generate_replies(student, tokenizer, prompts, cfg.teacher_max_new_tokens) if chosen else []
        teacher_replies = generate_replies(teacher, teacher_tokenizer, prompts, cfg.teacher_max_new_tokens) if chosen and teacher is not None else [""] * len(chosen)
    finally:
        torch.set_num_threads(threads)

    samples = [
        {"prompt": c[-2]["content"], "reference": c[-1]["content"], "teacher": t, "student": s}
        for c, t, s in zip(chosen, teacher_replies, student_replies, strict=True)
    ]
    summary = {
        "mode": cfg.mode,
        "model_dir": str(out / "model"),
        "teacher_dir": teacher_dir,
        "teacher_endpoint": cfg.endpoint_model if cfg.mode == "sequence" and cfg.endpoint_base_url else "",
        "temperature": cfg.temperature,
        "alpha": cfg.alpha,
        **result,
        **side_by_side,
        "train_conversations": len(train_rows),
        "eval_conversations": len(held_out),
        "samples": samples,
    }
    if teacher is not None:
        summary["compression"] = side_by_side["teacher"]["parameters"] / side_by_side["student"]["parameters"]
    atomic_write_json(out / "summary.json", summary)
    return summary


def train_baseline(
    cfg: DistillConfig,
    teacher: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    teacher_tokenizer: PreTrainedTokenizerBase,
    tokenizer_dir: str,
    train_rows: list[Conversation],
    held_out: list[Conversation],
    paths: list[str],
    out: Path,
) -> dict:
    """Train the no-teacher baseline into ``out/baseline``: the student's recipe with alpha 0 (and no hidden alignment);
    return its training figures and its ``report`` (the side-by-side column)."""
    from tasks.train.config import has_cuda

    plain = cfg.model_copy(update={"alpha": 0.0, "hidden_weight": 0.0, "hidden_layer_map": []})
    result = _distil_logits(plain, teacher, tokenizer, teacher_tokenizer, tokenizer_dir, train_rows, paths, out / "baseline", False)
    student = result.pop("student").to("cuda" if has_cuda() else "cpu")
    return result | {"report": model_report(student, tokenizer, held_out, cfg)}


def comparison_metrics(summary: dict) -> dict[str, float]:
    """Return the side-by-side figures of a distillation summary as flat MLflow metrics (``teacher.eval_ppl``, …).

    >>> comparison_metrics({"student": {"parameters": 10, "eval_loss": 2.0}, "teacher": {"parameters": 40, "eval_loss": 1.5}, "compression": 4.0})
    {'student.parameters': 10.0, 'student.eval_loss': 2.0, 'teacher.parameters': 40.0, 'teacher.eval_loss': 1.5, 'compression': 4.0}
    """
    metrics = {f"{who}.{k}": float(v) for who in ("student", "teacher", "baseline") for k, v in summary.get(who, {}).items() if isinstance(v, (int, float))}
    if "compression" in summary:
        metrics["compression"] = float(summary["compression"])
    return metrics
