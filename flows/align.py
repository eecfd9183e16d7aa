"""The alignment flow: SFT → distillation → DPO → GRPO on a run's base model, each stage a tracked child run.

The base is the run's own pretrained model (``runs/<run>/pretrain/model``, tokenizer beside it), or any
HF model path or hub id given as ``base_model``. The chain of models::

    base ──sft──▶ sft model ──dpo──▶ dpo model ──grpo──▶ grpo model
                      └──distill──▶ student (smaller, same tokenizer)

Each stage trains inside its MLflow child run (the trainer logs its curves there), logs the final model
and registers it (``liandan-sft``, ``liandan-student``, ``liandan-dpo``, ``liandan-grpo``, alias
``candidate``). A finished stage is skipped on a rerun; ``stages`` picks which run at all.

After the base and after each stage an ``evaluate-<stage>`` child run measures the model (flows/evaluate.py);
the parent run gets the comparison of them all, and the final chat model is registered as ``liandan-chat``,
whose ``champion`` alias only the promotion gate moves.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from flows.recipe import Recipe, RunConfig, flow_parameters
from flows.evaluate import CANDIDATE_ALIAS, evaluate_stage, model_source, promote_chat_model, publish_comparison, seen_questions
from flows.runs import TRACKING_HOOKS, ModelResult, ModelStage, RunContext, final_metrics, flow_run_namer, open_run, run_model_stage
from flows.stages import ALIGN_STAGES, AlignStage
from tasks.evaluate.config import EvalConfig
from tasks.evaluate.stage import EvalResult
from tasks.store import config_digest, file_digest, resolve_data_path
from tasks.tracking import flatten_params
from tasks.train.distill import DistillConfig, comparison_metrics
from tasks.train.dpo import DPOConfig
from tasks.train.grpo import GRPOConfig
from tasks.train.sft import SFTConfig
from tasks.train.task import distill_model, dpo_model, grpo_model, sft_model

def model_digest(model_dir: str) -> str:
    """Return a digest of a stage input: a model folder's files (sizes and mtimes: cheap, and changes with every save),
    a data file's bytes, or a hub id's name."""
    path = Path(model_dir)
    if path.is_file():
        return file_digest(path)
    if not path.is_dir():
        return model_dir  # a hub id: its name is all we know without downloading
    files = sorted(p for p in path.rglob("*") if p.is_file())
    listing = json.dumps([(str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files])
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def _spec(stage: str, run_name: str, cfg: BaseModel, inputs: list[str], description: str) -> ModelStage:
    return ModelStage(
        stage=stage,
        run_name=run_name,
        params={f"{stage}.{k}": v for k, v in flatten_params(cfg).items()} | {f"{stage}.input.{i}": v for i, v in enumerate(inputs)},
        digest=f"{config_digest(cfg)}:" + ":".join(model_digest(p) for p in inputs),
        registered_model=getattr(cfg, "registered_model", ""),
        description=description,
    )


def sft_run_name(cfg: SFTConfig) -> str:
    """Return the SFT child run's name: ``sft-full``, ``sft-lora-r16``, ``sft-qlora-r16``."""
    return "sft-full" if cfg.method == "full" else f"sft-{cfg.method}-r{cfg.lora_r}"


def sft_stage(ctx: RunContext, cfg: SFTConfig, base: str, tokenizer: str) -> ModelResult:
    """Fine-tune ``base`` on the instruction set; return the stage's result."""
    out = str(ctx.store.stage("sft").root)
    data = [str(resolve_data_path(p)) for p in cfg.data_paths]
    spec = _spec("sft", sft_run_name(cfg), cfg, [base, tokenizer, *data], "Instruction-tuned models made by liandan's align_model flow (SFT).")
    return run_model_stage(ctx, spec, lambda uri, child: sft_model(cfg, base, tokenizer, out, tracking_uri=uri, run_id=child))


def distill_stage(ctx: RunContext, cfg: DistillConfig, teacher: str, tokenizer: str, data: list[str]) -> ModelResult:
    """Distil the teacher into a smaller student on the instruction set ``data``; return the result (its summary sets teacher and student side by side)."""
    out = str(ctx.store.stage("distill").root)
    name = f"distill-{cfg.mode}-T{cfg.temperature:g}-a{cfg.alpha:g}"
    spec = _spec("distill", name, cfg, [teacher, tokenizer, *(str(resolve_data_path(p)) for p in data)], "Student models distilled by liandan's align_model flow.")
    spec.metrics = lambda summary: final_metrics(summary) | comparison_metrics(summary)
    return run_model_stage(ctx, spec, lambda uri, child: distill_model(cfg, teacher, tokenizer, data, out, tracking_uri=uri, run_id=child))


def dpo_stage(ctx: RunContext, cfg: DPOConfig, policy: str, tokenizer: str) -> ModelResult:
    """Align the policy on preference pairs with DPO; return the stage's result."""
    out = str(ctx.store.stage("dpo").root)
    spec = _spec("dpo", f"dpo-{cfg.loss_type}-b{cfg.beta:g}", cfg, [policy, tokenizer, *([str(resolve_data_path(cfg.pairs_path))] if cfg.pairs_path else [])], "Preference-aligned models made by liandan's align_model flow (DPO).")
    return run_model_stage(ctx, spec, lambda uri, child: dpo_model(cfg, policy, tokenizer, out, tracking_uri=uri, run_id=child))


def grpo_stage(ctx: RunContext, cfg: GRPOConfig, policy: str, tokenizer: str) -> ModelResult:
    """Train the policy with GRPO on verifiable arithmetic rewards; return the stage's result."""
    out = str(ctx.store.stage("grpo").root)
    spec = _spec("grpo", f"grpo-g{cfg.num_generations}", cfg, [policy, tokenizer], "Reasoning models trained by liandan's align_model flow (GRPO).")
    return run_model_stage(ctx, spec, lambda uri, child: grpo_model(cfg, policy, tokenizer, out, tracking_uri=uri, run_id=child))


def _report(ctx: RunContext, results: dict[str, ModelResult]) -> None:
    rows = "\n".join(
        f"| {stage} | `{r.model_dir}` | {r.model_version or '—'} | [run]({ctx.tracker.run_url(r.mlflow_run_id)}) |" for stage, r in results.items()
    )
    create_markdown_artifact(
        key="align-models",
        description=f"Models aligned in run {ctx.name}",
        markdown=f"**align_model** of run `{ctx.name}`\n\n| stage | model | registered version | MLflow |\n|---|---|---|---|\n{rows}",
    )
    for stage, r in results.items():
        get_run_logger().info("%s: %s (version %s)", stage, r.model_dir, r.model_version or "-")


def promote_final_model(ctx: RunContext, cfg: EvalConfig, stage: str, result: ModelResult, registered_model: str, evaluated: tuple[EvalResult, str], **eval_sets: str | frozenset[str]) -> None:
    """Register the chain's final chat model (``stage``'s) as ``cfg.registered_model``; the gate decides ``champion``."""
    source = model_source(ctx.tracker.client, result, registered_model)
    if source is None:
        get_run_logger().info("gate: %s not registered: the %s model was not logged by this run (set %s.registered_model)", cfg.registered_model, stage, stage)
        return
    version, decision = promote_chat_model(ctx, cfg, source[0], source[1], evaluated[0], evaluated[1], **eval_sets)
    label = f"`{cfg.champion_alias}`" if decision.promote else f"`{CANDIDATE_ALIAS}` only"
    create_markdown_artifact(
        key="chat-model-gate",
        description=f"Promotion gate of run {ctx.name}",
        markdown=f"**{cfg.registered_model}** version {version} (the {stage} model): {label}. {decision.summary}. [evaluate-{stage}]({ctx.tracker.run_url(evaluated[1])})",
    )


@flow(name="align_model", flow_run_name=flow_run_namer("align"), **TRACKING_HOOKS)
@flow_parameters("align")
def align_model(run: RunConfig = RunConfig(), *, stages: list[AlignStage] = list(ALIGN_STAGES), base_model: str = "", **sections: BaseModel) -> dict[str, str]:
    """SFT, distil, DPO and GRPO the run's base model (or ``base_model``), evaluating each; return each stage's model folder.

    With ``evaluate.enabled`` the base and every stage's model get an ``evaluate-<stage>`` child run, the parent run
    a comparison of them, and the final chat model (GRPO's, else DPO's, else SFT's) is registered as
    ``evaluate.registered_model``, alias ``champion`` only when the gate lets it through.
    """
    recipe = Recipe(run=run, **sections)
    sft, evaluate = recipe.sft, recipe.evaluate
    ctx = open_run(run, "align")
    if base_model:
        base, tokenizer = base_model, base_model
    else:
        base, tokenizer = str(ctx.store.stage("pretrain").root / "model"), str(ctx.store.stage("tokenize").root)
        if not Path(base).is_dir():
            raise ValueError(f"no base model in {base}: run train_base_model into this run folder first (same run.name), or set base_model")
    pack = ctx.store.stage("pack")
    eval_sets = {
        "pack_dir": str(pack.root) if pack.shards() else "",
        "pack_tokenizer_dir": str(ctx.store.stage("tokenize").root),
        "seen_questions": seen_questions(stages, sft, recipe.dpo, recipe.grpo) if evaluate.enabled else frozenset(),  # read only to evaluate
    }
    evaluations: dict[str, tuple[EvalResult, str]] = {}

    def assess(stage: str, model_dir: str) -> None:
        if evaluate.enabled:
            evaluations[stage] = evaluate_stage(ctx, evaluate, stage, model_dir, **eval_sets)

    assess("base" if base_model else "pretrain", base)
    results: dict[str, ModelResult] = {}
    policy = base
    if "sft" in stages:
        results["sft"] = sft_stage(ctx, sft, policy, tokenizer)
        policy = results["sft"].model_dir
        assess("sft", policy)
    if "distill" in stages:
        results["distill"] = distill_stage(ctx, recipe.distill, policy, tokenizer, list(sft.data_paths))
        assess("distill", results["distill"].model_dir)
    if "dpo" in stages:
        results["dpo"] = dpo_stage(ctx, recipe.dpo, policy, tokenizer)
        policy = results["dpo"].model_dir
        assess("dpo", policy)
    if "grpo" in stages:
        results["grpo"] = grpo_stage(ctx, recipe.grpo, policy, tokenizer)
        assess("grpo", results["grpo"].model_dir)
    _report(ctx, results)
    if evaluations:
        publish_comparison(ctx, {stage: result for stage, (result, _) in evaluations.items()})
    final = next((stage for stage in ("grpo", "dpo", "sft") if stage in results), None)
    if final and evaluate.enabled and evaluate.registered_model:
        registered = recipe.sections_of("align")[final].registered_model
        promote_final_model(ctx, evaluate, final, results[final], registered, evaluations[final], **eval_sets)
    return {stage: r.model_dir for stage, r in results.items()}
